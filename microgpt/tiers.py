"""The tier registry: a tier's name -> the model class that implements it.

Each tier is imported only when asked for, so the scalar tier never pays for numpy or
numba, and a tier whose dependencies are missing fails with a clear message. All else
about a tier lives with its model class (gpt.ScalarGPT's interface, and what `Tier`
reads), so that the command line and the memory check never branch on a tier's name.
"""
import importlib

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


class Tier:
    """A tier as the command line and the scripts use it: what its model class declares,
    each with its default.

    - needed_bytes(config, vocab_size): about how much memory a run takes, in bytes,
      checked before any work; None where this machine's memory does not bound it.
    - precisions: the --precision values it offers; ('fp64',).
    - for_command_line(precision): the model class as the command line builds it, say
      with a background compile; the class itself.
    - training_loop(model, docs, tok, config, on_step): gpt.train's interface, the loop
      that trains it; gpt.train, a step a call.
    - cannot_time: why timing it here would mean nothing; None.
    """

    def __init__(self, name, Model):
        from . import gpt
        self.name, self.Model = name, Model
        self.needed_bytes = Model.needed_bytes
        self.precisions = getattr(Model, 'precisions', ('fp64',))
        self.for_command_line = getattr(Model, 'for_command_line', lambda precision: Model)
        self.training_loop = getattr(Model, 'training_loop', gpt.train)
        self.cannot_time = getattr(Model, 'cannot_time', None)


def get(name=None):
    """The Tier of that name; the default (the fastest exact one installed) if None."""
    return Tier(*default()) if name is None else Tier(name, load(name))


def unmeasurable(name):
    """Why timing tier `name` here would mean nothing (None if it would not)."""
    return get(name).cannot_time
