"""The command line.

    python -m microgpt [--tier TIER] [--data PATH] [--seed N] ... [--json PATH] [--save PATH]
    python -m microgpt sample --load PATH [--tier TIER] [--seed N] [--num-samples N]
                              [--temperature F] [--prompt TEXT]

stdout carries exactly what the reference prints; everything else (tier, timings,
memory, progress) goes to stderr. Bad input is one line on stderr and exit status 2;
a training run that diverges (a loss that is not a finite number), one line and 1.
"""
import contextlib
import io
import math
import os
import signal
import sys
import time

from . import tiers
from .config import ConfigError, GPTConfig
from .data import DataError, cannot_write_in, find_data, load_docs, write_atomic
from .memory import check_fits, peak_rss_mb

PROG = 'microgpt'


class UsageError(Exception):
    pass


class Diverged(Exception):
    """Training blew up: a loss that is nan or inf, or a float error on the way to one."""


def watch_losses(progress):
    """gpt.run's on_step: raise Diverged at the first loss that is not a finite number,
    else report progress (whose `done` is then the steps checked). Once a loss is nan or
    inf, so is every later one (Adam spreads the nan to every parameter), so there is
    nothing left to train for."""
    def on_step(losses):
        for step in range(progress.done, len(losses)):
            if not math.isfinite(losses[step]):
                raise Diverged(f"training diverged in step {step + 1} of {progress.total}: "
                               f"the loss is {losses[step]}; try a lower --learning-rate or "
                               f"--init-std")
        return progress(len(losses))
    return on_step


def float_blowup(error):
    """Whether an exception from the training loop is Python's float arithmetic giving up
    on a diverged run: log(0.0) of a target's underflowed probability ('math domain
    error'), an overflowing ** or exp, a zero raised to a negative power. The tiers that
    compute with Python floats (scalar, lean, numpy's libm calls) stop there, as the
    reference does; numpy's and numba's own arithmetic carry on with inf and nan."""
    return (isinstance(error, ArithmeticError)
            or (isinstance(error, ValueError) and str(error) == 'math domain error'))


class Option:
    """One --flag: the type its value must have, its default, the values it is limited
    to (if any), and its line in --help."""

    def __init__(self, flag, kind=str, default=None, help='', choices=None, required=False,
                 metavar=None):
        self.flag, self.kind, self.default, self.help = flag, kind, default, help
        self.choices, self.required = choices, required
        self.dest = flag[2:].replace('-', '_')
        self.metavar = metavar or ('N' if kind is int else 'X' if kind is float else 'TEXT')

    def parse(self, text):
        try:
            value = self.kind(text)
        except ValueError:
            raise UsageError(f"argument {self.flag}: invalid {self.kind.__name__} value: "
                             f"{text!r}") from None
        if self.choices and value not in self.choices:
            raise UsageError(f"argument {self.flag}: invalid choice: {text!r} (choose from "
                             f"{', '.join(self.choices)})")
        return value


class Command:
    """A command's options, read with getopt: `--flag value` or `--flag=value`, a flag
    shortened to any prefix that is unique, -h or --help for the help. (argparse would
    do the same with 2,600 lines of code that cost ~0.45 MB of RSS in every run: a fifth
    of the lean tier's whole memory budget.)"""

    def __init__(self, prog, description, options):
        self.prog, self.description, self.options = prog, description, options

    def parse(self, argv):
        """A namespace of every option's value (its default where not given); bad input
        raises UsageError, -h prints the help and exits."""
        import getopt
        from types import SimpleNamespace
        by_flag = {o.flag: o for o in self.options}
        try:
            long_flags = ['help'] + [o.flag[2:] + '=' for o in self.options]
            pairs, rest = getopt.getopt(argv, 'h', long_flags)
        except getopt.GetoptError as e:
            raise UsageError(e.msg) from None
        if rest:
            raise UsageError(f"unrecognized arguments: {' '.join(rest)}")
        if ('-h', '') in pairs or ('--help', '') in pairs:
            print(self.help())
            raise SystemExit(0)
        args = SimpleNamespace(**{o.dest: o.default for o in self.options})
        for flag, text in pairs:
            setattr(args, by_flag[flag].dest, by_flag[flag].parse(text))
        missing = [o.flag for o in self.options if o.required and getattr(args, o.dest) is None]
        if missing:
            raise UsageError(f"the following arguments are required: {', '.join(missing)}")
        return args

    def help(self):
        import shutil
        import textwrap
        width = shutil.get_terminal_size().columns - 2
        line, lines = f"usage: {self.prog} [-h]", []
        for o in self.options:                  # the usage, broken between options only
            item = f"{o.flag} {o.metavar}" if o.required else f"[{o.flag} {o.metavar}]"
            if len(line) + 1 + len(item) > width:
                lines.append(line)
                line = ' ' * len(f"usage: {self.prog}")
            line += ' ' + item
        lines += [line, '', *textwrap.wrap(self.description, width), '', 'options:',
                  '  -h, --help            show this help message and exit']
        for o in self.options:
            head = f"  {o.flag} {o.metavar}"
            text = o.help
            if o.default not in (None, '') and '(default' not in text:
                text += f" (default: {o.default})"
            body = textwrap.wrap(text.strip(), max(width - 24, 20))
            if len(head) > 22:
                lines.append(head)
            else:
                lines.append(head.ljust(24) + body.pop(0))
            lines += [' ' * 24 + b for b in body]
        return '\n'.join(lines)


def tier_option():
    return Option('--tier', metavar='TIER',
                  help='implementation to run (default: the fastest installed)')


def precision_option():
    return Option('--precision', default='fp64', metavar='P',
                  help="the arithmetic, where a tier offers more than fp64: the cuda tier's "
                  "fp64 (exact like the other tiers), fp32, or tc (float16 GEMM operands, "
                  "float32 accumulation)")


def train_command():
    d = GPTConfig()
    return Command(PROG, "Train Karpathy's microGPT on a list of names, then sample new ones. "
                   "Tiers: " + ', '.join(tiers.TIERS) + '. '
                   f"'{PROG} sample --load PATH' samples from a saved checkpoint.", [
        tier_option(),
        Option('--data', metavar='PATH', help='UTF-8 text, one document per line (default: '
               './input.txt, $MICROGPT_DATA, the cached or downloaded names.txt)'),
        Option('--seed', int, d.seed),
        Option('--steps', int, d.steps),
        Option('--batch-size', int, d.batch_size,
               help='documents per step (default: 1, as the reference)'),
        Option('--n-layer', int, d.n_layer),
        Option('--n-embd', int, d.n_embd),
        Option('--n-head', int, d.n_head),
        Option('--block-size', int, d.block_size),
        Option('--init-std', float, d.init_std,
               help='every weight starts as gauss(0, this) (default: 0.08, as the reference)'),
        Option('--learning-rate', float, d.learning_rate,
               help="Adam's base rate, decayed linearly to 0 (default: 0.01)"),
        Option('--temperature', float, d.temperature),
        Option('--num-samples', int, d.num_samples),
        Option('--json', metavar='PATH', help='write losses, samples and timings here'),
        Option('--save', metavar='PATH', help='save the trained model here (a checkpoint)'),
        precision_option(),
    ])


def sample_command():
    d = GPTConfig()
    return Command(f'{PROG} sample', 'Sample names from a saved checkpoint.', [
        Option('--load', metavar='PATH', required=True, help='a checkpoint from --save'),
        tier_option(),
        Option('--seed', int, d.seed, help='seeds the draws (default: 42)'),
        Option('--num-samples', int, help='default: as the checkpoint was trained'),
        Option('--temperature', float, help='default: as the checkpoint was trained'),
        Option('--prompt', default='', help='every name starts with this text'),
        precision_option(),
    ])


def check_stdout():
    """Refuse to start when stdout is closed (the run could print nothing)."""
    if sys.stdout is None:
        raise UsageError("stdout is closed; run with stdout open (> /dev/null to discard it)")


def stat_or_none(path):
    """os.stat(path), symlinks followed; None if there is no such file."""
    try:
        return os.stat(path)
    except OSError:
        return None


def same_file(a, b):
    return a is not None and b is not None and (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino)


def check_outputs(outputs, inputs):
    """Fail before training, not after, when an output cannot or must not be written.
    outputs: (flag, path) pairs; inputs: (what, path) pairs, the files the run reads.

    An output must not be an input (by any name: a symlink, a hard link, another
    spelling), another output, or this run's stdout or stderr when that is a file; a
    folder in its place, a missing parent, or a folder this process cannot create files
    in is refused. An existing file that is not a regular file must be a character
    device or a FIFO, which write_atomic writes in place."""
    import stat
    input_stats = [(what, path, stat_or_none(path)) for what, path in inputs]
    stream_stats = []                            # stdout and stderr, where they are files
    for fd, name in ((1, 'stdout'), (2, 'stderr')):
        try:
            st = os.fstat(fd)
        except OSError:
            continue
        if stat.S_ISREG(st.st_mode):
            stream_stats.append((name, st))
    seen = []
    for flag, path in outputs:
        if not path:
            continue
        real = os.path.realpath(path)
        if os.path.isdir(real):
            raise UsageError(f"{flag}: {path} is a folder; name a file in it")
        st = stat_or_none(real)
        for other, other_real, other_st in seen:
            if real == other_real or same_file(st, other_st):
                raise UsageError(f"{other} and {flag} name the same file")
        seen.append((flag, real, st))
        for what, input_path, input_st in input_stats:
            if same_file(st, input_st):
                raise UsageError(f"{flag}: {path} is {what} ({input_path}); an output "
                                 f"never replaces an input")
        for name, stream_st in stream_stats:
            if same_file(st, stream_st):
                raise UsageError(f"{flag}: {path} is this run's {name}")
        if st is not None and not (stat.S_ISREG(st.st_mode) or stat.S_ISCHR(st.st_mode)
                                   or stat.S_ISFIFO(st.st_mode)):
            raise UsageError(f"{flag}: {path} is not a regular file, a character device "
                             f"or a FIFO")
        folder = os.path.dirname(real)
        if not os.path.isdir(folder):
            raise UsageError(f"{flag}: folder does not exist: {folder}")
        problem = cannot_write_in(folder)
        if problem:
            raise UsageError(f"{flag}: cannot write in {folder}: {problem}")


def write_output(flag, path, payload):
    """Write an output file. If that fails (a full disk, say), write it to a fallback
    file in the temp folder instead, say so, and return False: the trained model is
    never lost to a failed write."""
    try:
        write_atomic(path, payload)
        return True
    except OSError as e:
        import tempfile
        fallback = os.path.join(tempfile.gettempdir(), f'microgpt-{flag[2:]}-{os.getpid()}.json')
        try:
            write_atomic(fallback, payload)
        except OSError as e2:
            raise UsageError(f"{flag}: could not write {path} ({e.strerror}) nor the fallback "
                             f"{fallback} ({e2.strerror})") from None
        print(f"{PROG}: error: {flag}: could not write {path} ({e.strerror}); "
              f"written to {fallback} instead", file=sys.stderr)
        return False


def pick_tier(name, precision):
    """(tiers.Tier, the model class as the command line builds it)."""
    tier = tiers.get(name)
    if precision not in tier.precisions:
        raise UsageError(f"--precision {precision}: tier {tier.name} offers "
                         f"{', '.join(tier.precisions)}")
    return tier, tier.for_command_line(precision)


def check_memory(tier, config, vocab_size):
    """Refuse, before any work, a config that does not fit in this machine's memory."""
    problem = check_fits(tier.name, config, vocab_size)
    if problem:
        raise UsageError(problem)


class Progress:
    """Training progress on stderr (steps done, steps/s, ETA), once training has run for
    two seconds, at most once a second: in place on a terminal, a line each otherwise.
    The clock starts at the first step's end, so the time to build the model (a first
    compile, say) never counts as training; after_first_step() reads that clock. Also
    the stop switch: after a first Ctrl-C (or SIGTERM, SIGHUP, or a failed stdout),
    training ends after the current step."""

    def __init__(self, total, delay=2.0, every=1.0):
        self.total, self.delay, self.every = total, delay, every
        self.start = self.last = None
        self.done = 0
        self.shown, self.stop_requested, self.stopped_by = False, False, None
        self.tty = sys.stderr.isatty()

    def request_stop(self, signum, frame=None):
        if self.stop_requested and signum is not None:   # a second signal: stop now,
            raise KeyboardInterrupt                      # mid-step, nothing saved
        self.stop_requested = True
        if self.stopped_by is None:
            self.stopped_by = signum

    def __call__(self, done):
        now = time.perf_counter()
        self.latest, self.done = now, done
        if self.start is None:
            self.start = self.last = now
            self.first = done
        elif now - self.start >= self.delay and now - self.last >= self.every:
            self.last, self.shown = now, True
            rate = (done - self.first) / (now - self.start)
            eta = (self.total - done) / rate
            end = '' if self.tty else '\n'
            print(f"\r{PROG}: step {done} / {self.total} | {rate:.1f} steps/s | "
                  f"ETA {eta:.0f} s", end=end, file=sys.stderr, flush=True)
        return self.stop_requested

    def after_first_step(self):
        """{'steps', 'seconds'}: the training after the first call, which every training
        loop makes after step 1 (the twin tiers' first chunk is one step). Step 1 alone
        pays for first touches of fresh memory (2.5 s at 512 wide, 4 layers, batch 32),
        so per-step costs are read off the steps after it."""
        return {'steps': self.done - self.first, 'seconds': self.latest - self.start}

    def close(self):
        if self.shown and self.tty:
            print(file=sys.stderr)


class Stopped(Exception):
    """A stop signal while sampling: the run reports the samples it has and exits."""

    def __init__(self, signum):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


STOP_SIGNALS = tuple(getattr(signal, name) for name in ('SIGINT', 'SIGTERM', 'SIGHUP')
                     if hasattr(signal, name))


def on_stop_signals(handler):
    """Handle SIGINT, SIGTERM and SIGHUP with `handler`; returns the previous handlers."""
    return {signum: signal.signal(signum, handler) for signum in STOP_SIGNALS}


def raise_stopped(signum, frame):
    raise Stopped(signum)


class GuardedStdout:
    """The run's stdout: a write or flush that fails (a reader that went away, EPIPE; a
    full disk, ENOSPC) is kept in `error` rather than raised, on_error() is called once
    (the run stops after its step, and writes its outputs), and what is written after
    goes nowhere: fd 1 is pointed at /dev/null, so that nothing fails at exit either."""

    def __init__(self, stream, on_error):
        self.stream, self.on_error, self.error = stream, on_error, None

    def write(self, text):
        if self.error is None:
            try:
                return self.stream.write(text)
            except OSError as e:
                self.fail(e)
        return len(text)

    def flush(self):
        if self.error is None:
            try:
                self.stream.flush()
            except OSError as e:
                self.fail(e)

    def fail(self, error):
        self.error = error
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, self.stream.fileno())
            os.close(devnull)
        except (OSError, ValueError, io.UnsupportedOperation):
            pass
        self.on_error(error)

    def __getattr__(self, name):
        return getattr(self.stream, name)


@contextlib.contextmanager
def run_stdout(on_error):
    """stdout for a run, as a GuardedStdout; buffered as Python set it up (block-buffered
    into a pipe or a file, unbuffered under -u or PYTHONUNBUFFERED, as the user asked).
    Characters it cannot encode are written as backslash escapes, not an error. Yields
    the guard: its `error` says whether stdout failed."""
    original = sys.stdout
    if getattr(original, 'errors', None) == 'strict' and hasattr(original, 'reconfigure'):
        original.reconfigure(errors='backslashreplace')
    sys.stdout = guard = GuardedStdout(original, on_error)
    try:
        yield guard
    finally:
        guard.flush()
        sys.stdout = original


class StdoutFailed(Exception):
    """stdout failed while sampling from a checkpoint (nothing else to keep)."""


def stdout_failed(error):
    raise StdoutFailed(error)


def stdout_exit(error):
    """The exit status for a run whose stdout failed: a reader that went away (`| head`)
    ends it quietly, as SIGPIPE ends a Unix filter (128 + 13); anything else is an
    error, said in one line."""
    import errno
    if getattr(error, 'errno', None) == errno.EPIPE:
        return 141
    print(f"{PROG}: error: cannot write to stdout: {error.strerror or error}", file=sys.stderr)
    return 1


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    try:
        if argv[:1] == ['sample']:
            return sample_main(argv[1:])
        return train_main(argv)
    except (UsageError, ConfigError, DataError, tiers.TierError) as e:
        print(f"{PROG}: error: {e}", file=sys.stderr)
        return 2
    except StdoutFailed as e:
        return stdout_exit(e.args[0])
    except MemoryError:
        print(f"\n{PROG}: error: out of memory; make the run smaller (--n-embd, --n-layer, "
              f"--block-size, --batch-size)", file=sys.stderr)
        return 1
    except Diverged as e:
        print(f"\n{PROG}: error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"\n{PROG}: interrupted", file=sys.stderr)
        return 130


def announce_setup(config, vocab_size):
    """Say so on stderr before drawing a model's weights one random.gauss at a time
    takes long (about a second a million parameters)."""
    from .gpt import param_count
    n = param_count(config, vocab_size)
    if n >= SETUP_NOTICE_PARAMS:
        print(f"{PROG}: drawing {n:,} parameters (about {n / 1e6:.0f} s)", file=sys.stderr)


SETUP_NOTICE_PARAMS = 5_000_000   # parameters: a set-up of five seconds or more is announced


def train_main(argv):
    args = train_command().parse(argv)
    config = GPTConfig(seed=args.seed, steps=args.steps, batch_size=args.batch_size,
                       n_layer=args.n_layer, n_embd=args.n_embd, n_head=args.n_head,
                       block_size=args.block_size, init_std=args.init_std,
                       learning_rate=args.learning_rate,
                       temperature=args.temperature, num_samples=args.num_samples)
    tier, Model = pick_tier(args.tier, args.precision)
    check_stdout()
    path = find_data(args.data)
    check_outputs([('--json', args.json), ('--save', args.save)], [('the data', path)])
    docs = load_docs(path, reads=config.steps * config.batch_size)
    vocab_size = len(docs.chars()) + 1
    check_memory(tier, config, vocab_size)
    label = tier.name if len(tier.precisions) == 1 else f"{tier.name} ({args.precision})"
    print(f"{PROG}: tier {label}, data {path}", file=sys.stderr)
    announce_setup(config, vocab_size)

    from . import gpt
    progress = Progress(config.steps)
    on_step = watch_losses(progress)
    trained = {}                  # gpt.run's result, from the end of training on

    def on_trained(result):
        """Training is over: save the model before anything else can fail; from then on
        a stop signal ends sampling at once."""
        trained.update(result=result, written=True)
        if args.save:
            from . import checkpoint
            payload = checkpoint.dumps(config, result['tokenizer'].uchars,
                                       result['model'].export_params(), len(result['losses']))
            try:
                trained['written'] = write_output('--save', args.save, payload)
            except UsageError as e:            # nor its fallback: say so, sample anyway
                print(f"{PROG}: error: {e}", file=sys.stderr)
                trained['written'] = False
        on_stop_signals(raise_stopped)
        if result['finished'] and progress.stopped_by is not None:   # came while saving
            raise Stopped(progress.stopped_by)

    previous = on_stop_signals(progress.request_stop)
    failure = None
    try:
        with run_stdout(lambda error: progress.request_stop(None)) as out:
            try:
                gpt.run(config, docs, Model, on_step=on_step, train=tier.training_loop,
                        on_trained=on_trained)
            except Exception as e:
                if 'result' in trained:       # sampling failed, or a signal stopped it
                    failure = e
                elif float_blowup(e):
                    done = progress.done     # the first chunk is one step: `in step 1` is exact
                    where = f"after step {done}" if done else "in step 1"
                    raise Diverged(f"training diverged {where} of {config.steps} "
                                   f"({type(e).__name__}: {e}); try a lower --learning-rate "
                                   f"or --init-std") from None
                else:
                    raise
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        progress.close()
    return finish_training(args, config, tier, trained, progress, failure, out.error,
                           (path, len(docs)))


def finish_training(args, config, tier, trained, progress, failure, stdout_error, data):
    """After gpt.run: --json with whatever the run has, the summary or what stopped the
    run, and the exit status. The checkpoint is written already (on_trained)."""
    result = trained['result']
    steps_done, samples = len(result['losses']), result['samples']
    written = trained['written']
    stopped_by = progress.stopped_by if not result['finished'] else None
    if isinstance(failure, Stopped):
        stopped_by = failure.signum
    rss = peak_rss_mb()
    if args.json:
        import json
        report = {
            'tier': tier.name,
            'precision': args.precision,
            'config': dict(config.asdict(), vocab_size=result['tokenizer'].vocab_size,
                           num_params=result['model'].num_params, num_docs=data[1],
                           data=data[0]),
            'steps_trained': steps_done,
            'finished': result['finished'] and failure is None and stdout_error is None,
            'stopped_by': (signal.Signals(stopped_by).name if stopped_by is not None
                           else 'stdout' if stdout_error is not None else None),
            'error': str(failure) if failure is not None and not isinstance(failure, Stopped)
                     else None,
            'losses': result['losses'],
            'samples': samples,
            'train_seconds': result['train_seconds'],
            'after_first_step': progress.after_first_step(),
            'sample_seconds': result.get('sample_seconds'),
            'peak_rss_mb': rss,
        }
        written &= write_output('--json', args.json, (json.dumps(report, indent=1) + '\n').encode())
    saved = f"; saved to {args.save}" if args.save and trained['written'] else ''
    if stdout_error is not None:
        return stdout_exit(stdout_error)
    if stopped_by is not None:
        what = (f"after {steps_done} of {config.steps} steps" if not result['finished'] else
                f"while sampling, after {len(samples)} of {config.num_samples} samples")
        print(f"\n{PROG}: interrupted {what} ({signal.Signals(stopped_by).name}){saved}",
              file=sys.stderr)
        return 128 + stopped_by
    if failure is not None:
        print(f"\n{PROG}: error: sampling failed after {len(samples)} samples "
              f"({type(failure).__name__}: {failure}){saved}", file=sys.stderr)
        return 1
    steps_per_s = steps_done / result['train_seconds']
    print(f"{PROG}: tier {tier_label(tier.name, result['model'])} | train "
          f"{result['train_seconds']:.2f} s, {steps_per_s:.1f} steps/s, "
          f"{1e6 / steps_per_s:.0f} us/step | sample {result['sample_seconds']:.2f} s | "
          f"peak RSS {rss:.1f} MB", file=sys.stderr)
    return 0 if written else 1


def tier_label(tier, model):
    """The tier's name for the summary, with what actually ran where that differs (the
    jit tier on numpy's kernels while it compiled: model.kernels_note())."""
    note = getattr(model, 'kernels_note', lambda: None)()
    return f"{tier} ({note})" if note else tier


def sample_main(argv):
    import random

    from . import checkpoint
    from .gpt import Tokenizer, sample
    args = sample_command().parse(argv)
    check_stdout()
    try:
        trained, uchars, params = checkpoint.load(args.load)
    except checkpoint.CheckpointError as e:
        raise UsageError(str(e)) from None
    overrides = {k: getattr(args, k) for k in ('num_samples', 'temperature')
                 if getattr(args, k) is not None}
    config = GPTConfig(**dict(trained.asdict(), seed=args.seed, **overrides))
    tok = Tokenizer(uchars)
    unknown = sorted(set(args.prompt) - set(uchars))
    if unknown:
        raise UsageError(f"--prompt has characters not in the checkpoint's vocabulary: "
                         f"{''.join(unknown)!r}")
    if len(args.prompt) >= config.block_size:
        raise UsageError(f"--prompt must be shorter than block_size ({config.block_size})")
    tier, Model = pick_tier(args.tier, args.precision)
    check_memory(tier, config, tok.vocab_size)
    print(f"{PROG}: tier {tier.name}, checkpoint {args.load}", file=sys.stderr)
    model = Model(config, tok.vocab_size)
    model.load_params(params)
    random.seed(config.seed)
    with run_stdout(stdout_failed):
        sample(model, tok, config, prompt=args.prompt)
    return 0
