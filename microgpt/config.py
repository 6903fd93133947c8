"""The run's configuration: one typed dataclass, each default with its reason.

Standard library only: every tier, the scalar spec included, imports it.
"""
from dataclasses import dataclass, fields


RMS_EPS = 1e-5  # rmsnorm's guard: (mean(x^2) + RMS_EPS) ** -0.5, as in the reference


class ConfigError(ValueError):
    """A configuration no model can be built from; the CLI prints it on one line."""


@dataclass(frozen=True)
class GPTConfig:
    seed: int = 42             # the reference seeds Python's `random` with 42
    steps: int = 1000          # the reference trains for 1000 steps, one document each
    n_layer: int = 1           # depth: one transformer block
    n_embd: int = 16           # width of the residual stream
    n_head: int = 4            # attention heads; head_dim = n_embd // n_head = 4
    block_size: int = 16       # context length; the longest name is 15 characters
    temperature: float = 0.5   # sampling temperature in (0, 1]: lower is more conservative
    num_samples: int = 20      # names sampled after training
    init_std: float = 0.08     # every weight starts as random.gauss(0, 0.08)
    learning_rate: float = 0.01  # Adam's base rate, decayed linearly to 0 over `steps`
    beta1: float = 0.85        # Adam's first-moment decay (the reference's, not 0.9)
    beta2: float = 0.99        # Adam's second-moment decay (the reference's, not 0.999)
    eps_adam: float = 1e-8     # Adam's denominator guard

    def __post_init__(self):
        for f in fields(self):
            value = getattr(self, f.name)
            allowed = (int, float) if f.type is float else int
            if isinstance(value, bool) or not isinstance(value, allowed):
                raise ConfigError(f"{f.name} must be {f.type.__name__}, got {value!r}")
        for name in ('steps', 'n_layer', 'n_embd', 'n_head', 'block_size'):
            if getattr(self, name) <= 0:
                raise ConfigError(f"{name} must be positive, got {getattr(self, name)}")
        if self.num_samples < 0:
            raise ConfigError(f"num_samples must be zero or more, got {self.num_samples}")
        if self.n_embd % self.n_head:
            raise ConfigError(f"n_embd ({self.n_embd}) must be divisible by n_head ({self.n_head})")
        if not self.temperature > 0:
            raise ConfigError(f"temperature must be positive, got {self.temperature}")

    @property
    def head_dim(self):
        return self.n_embd // self.n_head


def param_shapes(config, vocab_size):
    """The parameters as (name, (rows, cols)), in the order the reference creates them.

    This order is the RNG stream (each matrix draws random.gauss row by row) and the
    flat parameter order Adam walks; every tier uses these names and this order.
    """
    C = config.n_embd
    shapes = [('wte', (vocab_size, C)), ('wpe', (config.block_size, C)), ('lm_head', (vocab_size, C))]
    for i in range(config.n_layer):
        shapes += [(f'layer{i}.attn_wq', (C, C)), (f'layer{i}.attn_wk', (C, C)),
                   (f'layer{i}.attn_wv', (C, C)), (f'layer{i}.attn_wo', (C, C)),
                   (f'layer{i}.mlp_fc1', (4 * C, C)), (f'layer{i}.mlp_fc2', (C, 4 * C))]
    return shapes
