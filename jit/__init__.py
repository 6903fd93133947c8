"""The jit tier: the twin model with numba-compiled kernels, one native call a step."""
import contextlib
import hashlib
import os
import sys
import time

import numba
import numpy as np

from microgpt.twin import TwinGPT, model

from . import exact, kernels


@contextlib.contextmanager
def model_cache_dir():
    """Cache the compiled model under a folder named by the sources it is made of.

    numba invalidates a cached function when its own file changes, not when a kernel it
    calls (and compiled into itself) does; so the cache folder is keyed by a hash of
    all three files, and an edited kernel gets a freshly compiled model.
    """
    digest = hashlib.sha256()
    for path in (model.__file__, kernels.__file__, exact.__file__):
        with open(path, 'rb') as f:
            digest.update(f.read())
    root = os.environ.get('NUMBA_CACHE_DIR') or os.path.join(
        os.environ.get('XDG_CACHE_HOME') or os.path.join(os.path.expanduser('~'), '.cache'),
        'microgpt', 'numba')
    saved = numba.config.CACHE_DIR
    numba.config.CACHE_DIR = os.path.join(root, 'model-' + digest.hexdigest()[:16])
    try:
        yield
    finally:
        numba.config.CACHE_DIR = saved


class JitGPT(TwinGPT):
    kernels = kernels

    def bind_model(self):
        with model_cache_dir():
            return model.bind(kernels, kernels.kernel)

    def __init__(self, config, vocab_size):
        super().__init__(config, vocab_size)
        t0 = time.perf_counter()
        self.compile()
        stats = self.fn.train_step.stats
        hit = sum(stats.cache_hits.values()) and not sum(stats.cache_misses.values())
        print(f"microgpt: jit compile {time.perf_counter() - t0:.2f} s "
              f"({'loaded from the numba cache' if hit else 'cold'})", file=sys.stderr)

    def compile(self):
        """Compile (or load from numba's cache) train_step and sample_step for these types."""
        typeof = numba.typeof
        tokens, hp = typeof(np.zeros(1, dtype=np.int64)), typeof(self.hp)
        flat = typeof(self.flat.params)
        self.fn.train_step.compile((typeof(self.flat), tokens, typeof(0), hp,
                                    typeof(self.adam_step(0)), typeof(self.orders)))
        self.fn.sample_step.compile((flat, flat, tokens, typeof(0), hp, typeof(1.0)))
