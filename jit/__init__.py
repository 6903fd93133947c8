"""The jit tier: the twin model with numba-compiled kernels, one native call a step.

Compiling the model takes numba about 25 s here, once: the result is cached on disk and
a later run loads it in well under a second. So that a first run need not wait, the
command line builds the tier with wait=False: on a cold cache it starts the compile in
a background process and trains on numpy's kernels meanwhile. They compute the same
floats, bit for bit, on the same arrays, so when the compiled model is ready the run
carries on with it, and its output is the same either way.
"""
import contextlib
import functools
import hashlib
import math
import os
import subprocess
import sys
import time
import types

import numba
import numpy as np

from microgpt.data import cannot_write_in
from microgpt.twin import TwinGPT, model, numpy_kernels

from . import tuning

# The files the compiled model is made of (see cache_folder).
SOURCES = (model.__file__,) + tuple(os.path.join(os.path.dirname(__file__), name)
                                    for name in ('kernels.py', 'exact.py', 'tuning.py'))
READY = 'ready'          # in the cache folder: the model compiled and cached whole
COMPILING = 'compiling'  # in the cache folder: the compile lock's file (compile_lock)
CHECK_EVERY = 0.25       # seconds between looks for a finished background compile
SLOW_COMPILE = 60.0      # seconds: a background compile still running then is said to be


def cache_folder():
    """The compiled model's cache folder, named by the sources it is made of.

    numba invalidates a cached function when its own file changes, not when a kernel it
    calls (and compiled into itself) or a tunable it reads does; so the folder is keyed
    by a hash of all the files compiled in, and an edited kernel or tunable gets a
    freshly compiled model, and freshly compiled kernels (they cache there too).
    """
    digest = hashlib.sha256()
    for path in SOURCES:
        with open(path, 'rb') as f:
            digest.update(f.read())
    root = os.environ.get('NUMBA_CACHE_DIR') or os.path.join(
        os.environ.get('XDG_CACHE_HOME') or os.path.join(os.path.expanduser('~'), '.cache'),
        'microgpt', 'numba')
    return os.path.join(root, 'model-' + digest.hexdigest()[:16])


@contextlib.contextmanager
def model_cache_dir():
    """numba caches what is compiled inside this block in cache_folder()."""
    saved = numba.config.CACHE_DIR
    numba.config.CACHE_DIR = cache_folder()
    try:
        yield
    finally:
        numba.config.CACHE_DIR = saved


# numba places a function's cache when the function is decorated: the kernels', in the
# folder of these very sources (else a kernel cached before a change of jit/tuning.py
# would be loaded, compiled with the old value, by the new model).
with model_cache_dir():
    from . import kernels


def is_compiled():
    return os.path.exists(os.path.join(cache_folder(), READY))


def cache_problem():
    """None if the compiled model's cache folder can be written here; else why not."""
    folder = cache_folder()
    try:
        os.makedirs(folder, exist_ok=True)
    except OSError as e:
        return f"{folder}: {e.strerror}"
    problem = cannot_write_in(folder)
    return f"{folder}: {problem}" if problem else None


@contextlib.contextmanager
def compile_lock(wait):
    """Hold the compile lock: an flock on a file in the cache folder, which the system
    releases when its holder exits, however it exits, so that no lock outlives its
    compile (a pid in a file could name another process later). Yields True if held,
    False if another process holds it and wait is False."""
    import fcntl
    fd = os.open(os.path.join(cache_folder(), COMPILING), os.O_CREAT | os.O_RDWR, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            yield False
            return
        yield True
    finally:
        os.close(fd)


def compile_in_background():
    """Start `python -m jit.warm`, detached, unless a compile holds the lock."""
    with compile_lock(wait=False) as free:
        if not free:
            return                             # a compile is under way already
    subprocess.Popen([sys.executable, '-m', 'jit.warm'], stdin=subprocess.DEVNULL,
                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                     start_new_session=True)


class JitGPT(TwinGPT):
    kernels = kernels

    @classmethod
    def for_command_line(cls, precision):
        """On a cold cache, compile in the background (wait=False)."""
        return functools.partial(cls, wait=False)

    @staticmethod
    def transient_floats(config, vocab_size):
        """A transposed weight per product."""
        return 4 * config.n_embd * config.n_embd

    def bind_model(self):
        with model_cache_dir():
            return model.bind(kernels, kernels.kernel, kernels.parallel_kernel)

    def __init__(self, config, vocab_size, wait=True):
        """wait=False: on a cold cache, compile in the background and run on numpy's
        kernels until the compiled model is ready (see the module's docstring); where
        the cache cannot be written, run on numpy's kernels throughout, and say why."""
        super().__init__(config, vocab_size)
        self.threads = ThreadChoice()
        self.numpy_steps = self.steps = 0     # steps trained on numpy's kernels, and in all
        if wait or is_compiled():
            self.load()
            return
        self.compiled, self.fn = self.fn, model.bind(numpy_kernels)
        self.waiting_since = self.next_check = time.perf_counter()
        self.said_slow = False
        problem = self.cache_problem = cache_problem()
        if problem:
            self.next_check = math.inf
            print(f"microgpt: the jit tier cannot compile into its cache ({problem}); "
                  f"running numpy's kernels instead, the same floats at numpy's speed "
                  f"(NUMBA_CACHE_DIR names another folder)", file=sys.stderr)
            return
        compile_in_background()
        print("microgpt: compiling the jit tier in the background (first run only); "
              "running numpy's kernels meanwhile: the same floats, bit for bit", file=sys.stderr)

    def kernels_note(self):
        """What ran, where the compiled model did not run every step (for the summary)."""
        if not self.numpy_steps:
            return None
        if self.numpy_steps == self.steps:
            why = 'its cache cannot be written' if self.cache_problem else \
                'the jit compile did not finish'
            return f"all steps on numpy's kernels: {why}"
        return f"the first {self.numpy_steps} steps on numpy's kernels, while compiling"

    def load(self):
        """Compile the model's entry points for these types, or load them from the cache."""
        t0 = time.perf_counter()
        # The model links in the products' parallel drivers; loaded from the cache, they
        # need numba's threading layer already running (else LLVM cannot resolve its
        # scheduler, allocate_sched, and aborts). Asking for the thread count starts it.
        numba.get_num_threads()
        typeof = numba.typeof
        ints, floats = typeof(np.zeros(1, dtype=np.int64)), typeof(self.flat.params)
        flat, hp, adam, orders = (typeof(x) for x in (self.flat, self.hp, self.adam_step(0),
                                                       self.orders))
        sample_step = self.fn.sample_step.compile((floats, floats, ints, ints, hp, typeof(1.0)))
        tokens, lengths = np.zeros((1, 1, 1), dtype=np.int64), np.zeros((1, 1), dtype=np.int64)
        train_steps = self.fn.train_steps.compile(
            (flat, typeof(self.batch), typeof(tokens), typeof(lengths), typeof(np.zeros((1, 1))),
             hp, adam, orders, floats))
        stats = self.fn.train_steps.stats
        hit = sum(stats.cache_hits.values()) and not sum(stats.cache_misses.values())
        # From here on, the model is called through the entry points just compiled (or
        # loaded), not through numba's dispatchers, which type every argument again at
        # each call: the first call of a default run took 0.65 ms through the dispatcher,
        # 0.15 ms direct. The arguments' types are these, call after call.
        self.fn = types.SimpleNamespace(**dict(vars(self.fn), sample_step=sample_step,
                                               train_steps=train_steps))
        try:
            os.makedirs(cache_folder(), exist_ok=True)
            with open(os.path.join(cache_folder(), READY), 'w'):
                pass
        except OSError:            # a cache that cannot be written: compiled, not cached
            pass
        print(f"microgpt: jit compile {time.perf_counter() - t0:.2f} s "
              f"({'loaded from the numba cache' if hit else 'cold'})", file=sys.stderr)

    def use_compiled_when_ready(self, step):
        now = time.perf_counter()
        if getattr(self, 'compiled', None) is None or now < self.next_check:
            return
        self.next_check = now + CHECK_EVERY
        if is_compiled():
            self.fn, self.compiled = self.compiled, None
            print(f"microgpt: the jit tier is compiled ({now - self.waiting_since:.1f} s); "
                  f"it takes over at step {step + 1}", file=sys.stderr)
            self.load()
        elif now - self.waiting_since > SLOW_COMPILE and not self.said_slow:
            self.said_slow = True
            print(f"\nmicrogpt: the jit compile is still running after {SLOW_COMPILE:.0f} s "
                  f"(a busy machine?); numpy's kernels carry on, at numpy's speed",
                  file=sys.stderr)

    def train_steps(self, tokens, lengths, first_step):
        self.use_compiled_when_ready(first_step)
        self.steps += len(tokens)
        if getattr(self, 'compiled', None) is not None:
            self.numpy_steps += len(tokens)
        numba.set_num_threads(self.threads.next())
        return super().train_steps(tokens, lengths, first_step)


class ThreadChoice:
    """How many of numba's threads a run trains on: as many as there are cores that
    other processes leave free. On an idle machine that is all of them; on a busy one, a
    parallel region waits for its slowest thread, which shares a core with another
    process, and threads that spin while they wait take the cores from it: steps ran up
    to 40 times slower than on one thread. So before each chunk of steps the run reads
    how busy the machine was since the last look (at least tuning.THREAD_WINDOW
    seconds): all CPU time spent, less this process's own (/proc/stat and os.times; a
    VM's stolen time counts as spent), and trains on the cores left, one at least. No
    float depends on the thread count (tested). Where /proc/stat cannot be read, all of
    numba's threads."""

    def __init__(self, most=None, sample=None):
        self.most = numba.config.NUMBA_NUM_THREADS if most is None else most
        self.sample = cpu_sample if sample is None else sample
        self.current = self.most
        self.mark = self.sample() if self.most > 1 else None

    def next(self):
        """The thread count for the next chunk of steps."""
        now = self.mark and self.sample()
        if now and now[0] - self.mark[0] >= tuning.THREAD_WINDOW:
            wall, spent, own = (b - a for a, b in zip(self.mark, now))
            others = (spent - own) / wall              # cores kept busy by others
            free = (os.cpu_count() or 1) - others
            self.current = max(1, min(self.most, int(free + 0.5)))
            self.mark = now
        return self.current


def cpu_sample():
    """(wall seconds, CPU seconds spent by every process, this process's own), or None
    where /proc/stat cannot be read."""
    try:
        with open('/proc/stat') as f:
            fields = f.readline().split()
    except OSError:
        return None
    # cpu: user nice system idle iowait irq softirq steal (guest time is within user)
    user, nice, system, _, _, irq, softirq, steal = (int(x) for x in fields[1:9])
    own = os.times()
    return (time.monotonic(), (user + nice + system + irq + softirq + steal)
            / os.sysconf('SC_CLK_TCK'), own.user + own.system)
