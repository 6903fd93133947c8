"""The tier registry: a tier's name -> the model class that implements it.

Each tier is imported only when asked for, so the scalar tier never pays for numpy or
numba, and a tier whose dependencies are missing fails with a clear message.
"""
import importlib
import os

# name: (module, class, what installs its dependencies). Order is fastest first:
# the default tier is the first one that imports.
TIERS = {
    'scalar': ('microgpt.gpt', 'ScalarGPT', None),
    'lean': ('microgpt.lean', 'LeanGPT', None),
    'numpy': ('microgpt.twin', 'NumpyGPT', 'jit'),
    'jit': ('jit', 'JitGPT', 'jit'),
    'cuda': ('gpu.tier', 'CudaGPT', 'jit'),
}
DEFAULT_PREFERENCE = ('jit', 'scalar')


class TierError(Exception):
    """An unknown tier, or one whose dependencies are not installed."""


def load(name):
    """The model class of tier `name`."""
    if name not in TIERS:
        raise TierError(f"unknown tier {name!r}; choose from {', '.join(TIERS)}")
    module, cls, extra = TIERS[name]
    try:
        return getattr(importlib.import_module(module), cls)
    except ModuleNotFoundError as e:      # a dependency is not installed
        hint = f"; install it with: pip install -e '.[{extra}]'" if extra else ''
        raise TierError(f"tier {name!r} is not available ({e}){hint}") from None
    except ImportError as e:              # installed, but cannot run here (no GPU)
        raise TierError(f"tier {name!r} is not available here: {e}") from None


def default():
    """The fastest exact tier that imports here, as (name, model class)."""
    for name in DEFAULT_PREFERENCE:
        try:
            return name, load(name)
        except TierError:
            continue
    raise TierError("no tier is available")


def unmeasurable(name):
    """Why timing tier `name` here would mean nothing (None if it would not)."""
    if name == 'cuda' and os.environ.get('NUMBA_ENABLE_CUDASIM') == '1':
        return "numba's CUDA simulator stands in for a GPU here: nothing to time"
    return None
