"""The run's configuration: one typed class, each default with its reason.

Standard library only: every tier, the scalar spec included, imports it.
"""

import math

from .gpt import RMS_EPS, param_shapes  # noqa: F401  (the spec's; every tier imports them here)


class ConfigError(ValueError):
    """A configuration no model can be built from; the CLI prints it on one line."""


# The temperatures sampling is defined for. Sampling divides the logits by the
# temperature (times its reciprocal, as the reference): below 1e-6, the reciprocal
# overflows at 5e-309 and the logits times it long before; at 1e-6 the draw is already
# the most likely token unless two logits are within about 1e-4. Above 1e6 every draw is
# uniform to within 1e-5 (logits of a trained model are a few units), so nothing
# changes above it.
TEMPERATURES = (1e-6, 1e6)


def finite(x):
    """Whether a number is a finite float (an int too large for a float is not)."""
    try:
        return math.isfinite(x)
    except OverflowError:
        return False


def shown(value, width=40):
    """repr(value), cut to `width` characters: an error message stays one short line."""
    text = repr(value)
    return text if len(text) <= width else text[:width - 3] + '...'


class GPTConfig:
    """The configuration of a run: typed fields, each default with its reason.

    Written out rather than made with @dataclass: the dataclasses module imports
    inspect, ~1.5 MB of RSS, over a third of the lean tier's whole memory budget.
    Immutable; GPTConfig(n_layer=2) overrides a default; asdict() for reports.
    """
    seed: int = 42             # the reference seeds Python's `random` with 42
    steps: int = 1000          # the reference trains for 1000 steps
    batch_size: int = 1        # documents per step: the reference trains on one at a time
    n_layer: int = 1           # depth: one transformer block
    n_embd: int = 16           # width of the residual stream
    n_head: int = 4            # attention heads; head_dim = n_embd // n_head = 4
    block_size: int = 16       # context length; the longest name is 15 characters
    temperature: float = 0.5   # sampling temperature: lower is more conservative (TEMPERATURES)
    num_samples: int = 20      # names sampled after training
    init_std: float = 0.08     # every weight starts as random.gauss(0, 0.08)
    learning_rate: float = 0.01  # Adam's base rate, decayed linearly to 0 over `steps`
    beta1: float = 0.85        # Adam's first-moment decay (the reference's, not 0.9)
    beta2: float = 0.99        # Adam's second-moment decay (the reference's, not 0.999)
    eps_adam: float = 1e-8     # Adam's denominator guard

    def __init__(self, **overrides):
        for name, value in overrides.items():
            if name not in self.__annotations__:
                raise ConfigError(f"unknown config field {name!r}")
            object.__setattr__(self, name, value)
        for name, kind in self.__annotations__.items():
            value = getattr(self, name)
            allowed = (int, float) if kind is float else int
            if isinstance(value, bool) or not isinstance(value, allowed):
                raise ConfigError(f"{name} must be {kind.__name__}, got {shown(value)}")
            if kind is float and not finite(value):
                raise ConfigError(f"{name} must be a finite number, got {shown(value)}")
            if kind is int and not -2 ** 63 <= value < 2 ** 63:    # the twins' int64
                raise ConfigError(f"{name} is too large: {shown(value)}")
        for name in ('steps', 'batch_size', 'n_layer', 'n_embd', 'n_head', 'block_size'):
            if getattr(self, name) <= 0:
                raise ConfigError(f"{name} must be positive, got {getattr(self, name)}")
        if self.num_samples < 0:
            raise ConfigError(f"num_samples must be zero or more, got {self.num_samples}")
        if self.n_embd % self.n_head:
            raise ConfigError(f"n_embd ({self.n_embd}) must be divisible by n_head ({self.n_head})")
        for name in ('temperature', 'init_std', 'learning_rate'):
            if not getattr(self, name) > 0:
                raise ConfigError(f"{name} must be positive, got {getattr(self, name)}")
        low, high = TEMPERATURES
        if not low <= self.temperature <= high:
            raise ConfigError(f"temperature must be from {low:g} to {high:g}, got "
                              f"{self.temperature!r}")

    def __setattr__(self, name, value):
        raise AttributeError("GPTConfig is immutable; make a new one")

    def asdict(self):
        return {name: getattr(self, name) for name in self.__annotations__}

    def __eq__(self, other):
        return type(other) is GPTConfig and self.asdict() == other.asdict()

    def __hash__(self):
        return hash(tuple(self.asdict().items()))

    def __repr__(self):
        return f"GPTConfig({', '.join(f'{k}={v!r}' for k, v in self.asdict().items())})"

    @property
    def head_dim(self):
        return self.n_embd // self.n_head
