"""Checkpoints: a trained model's config, vocabulary and parameters, as JSON.

JSON because every tier can read it with the standard library, and Python writes each
float as the shortest text that reads back to the very same float, so a checkpoint
round-trips bit for bit. Parameters are stored by name (wte, wpe, lm_head,
layer{i}.attn_wq, ...), so any tier loads what any tier saved. Written atomically.
"""
import json

from .config import ConfigError, GPTConfig, finite, param_shapes
from .data import read_regular, write_atomic

FORMAT, VERSION = 'microgpt-checkpoint', 1


class CheckpointError(Exception):
    """A checkpoint that cannot be read or does not fit; the CLI prints it on one line."""


def dumps(config, uchars, params, steps_trained=None):
    """A checkpoint's bytes: config, vocabulary (the characters, in token-id order),
    {name: rows}, and the steps trained (config.steps unless training was stopped
    early; the learning rate's schedule is config.steps' either way)."""
    payload = {'format': FORMAT, 'version': VERSION, 'config': config.asdict(),
               'steps_trained': config.steps if steps_trained is None else steps_trained,
               'uchars': list(uchars), 'params': params}
    return json.dumps(payload, separators=(',', ':')).encode()


def save(path, config, uchars, params, steps_trained=None):
    write_atomic(path, dumps(config, uchars, params, steps_trained))


def finite_number(x):
    """A JSON number that is a finite float (an integer too large for one is not)."""
    return isinstance(x, (int, float)) and not isinstance(x, bool) and finite(x)


def load(path):
    """(config, uchars, params) from a checkpoint, each checked; else CheckpointError."""
    payload = read_regular(path, 'checkpoint', CheckpointError)
    try:
        payload = json.loads(payload.decode('utf-8'))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise CheckpointError(f"{path} is not a readable checkpoint (truncated or corrupt: "
                              f"{e})") from None
    except RecursionError:
        raise CheckpointError(f"{path} is not a checkpoint (nested too deep)") from None
    if not isinstance(payload, dict) or payload.get('format') != FORMAT:
        raise CheckpointError(f"{path} is not a microgpt checkpoint")
    if payload.get('version') != VERSION:
        raise CheckpointError(f"{path}: checkpoint version {payload.get('version')!r}, "
                              f"this microgpt reads version {VERSION}")
    try:
        config = GPTConfig(**payload['config'])
        uchars, params = payload['uchars'], payload['params']
    except (KeyError, TypeError) as e:
        raise CheckpointError(f"{path}: checkpoint is missing {e}") from None
    except ConfigError as e:
        raise CheckpointError(f"{path}: bad config in checkpoint: {e}") from None
    if (not isinstance(uchars, list) or not all(isinstance(c, str) and len(c) == 1 for c in uchars)
            or len(set(uchars)) != len(uchars) or uchars != sorted(uchars)):
        raise CheckpointError(f"{path}: the vocabulary must be distinct single characters, "
                              f"in order")
    expected = param_shapes(config, len(uchars) + 1)
    if not isinstance(params, dict) or sorted(params) != sorted(name for name, _ in expected):
        raise CheckpointError(f"{path}: parameters do not match the config: expected "
                              f"{', '.join(name for name, _ in expected)}")
    for name, (rows, cols) in expected:
        w = params[name]
        if (not isinstance(w, list) or len(w) != rows
                or not all(isinstance(r, list) and len(r) == cols for r in w)):
            raise CheckpointError(f"{path}: {name} should be {rows}x{cols} for this config "
                                  f"and vocabulary")
        if not all(finite_number(x) for r in w for x in r):
            raise CheckpointError(f"{path}: {name} holds values that are not finite numbers")
        params[name] = [[float(x) for x in r] for r in w]
    return config, uchars, params
