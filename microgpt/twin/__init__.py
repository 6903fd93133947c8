"""The vectorized twin of the scalar model, as a tier: numpy runs it here; jit/ and gpu/
supply faster kernels for the very same model (see model.py)."""
import math
import random

import numpy as np

from ..config import RMS_EPS, param_shapes
from . import model, numpy_kernels
from .model import Acts, AdamStep, Flat, HParams, Layer, LayerActs, Params


def carve(flat, shapes):
    """Consecutive views of the 1-D array `flat`, one per shape, in order."""
    views, offset = [], 0
    for shape in shapes:
        size = math.prod(shape)
        views.append(flat[offset:offset + size].reshape(shape))
        offset += size
    assert offset == flat.shape[0], (offset, flat.shape)
    return views


def params_view(flat, config, vocab_size):
    """Params of views into a flat array laid out in the reference's parameter order."""
    shapes = [shape for _, shape in param_shapes(config, vocab_size)]
    views = carve(flat, shapes)
    layers = tuple(Layer(*views[3 + 6 * i: 9 + 6 * i]) for i in range(config.n_layer))
    return Params(views[0], views[1], views[2], layers)


def acts_shapes(config, vocab_size):
    """Shapes of the activation workspace, in the order of Acts' and LayerActs' fields."""
    T, C, H, V = config.block_size, config.n_embd, config.n_head, vocab_size
    layer = {'ln1': (T, C), 'rstd1': (T,), 'q': (T, C), 'k': (T, C), 'v': (T, C),
             'att': (H, T, T), 'atty': (T, C), 'attn': (T, C), 'res2': (T, C),
             'ln2': (T, C), 'rstd2': (T,), 'fc1': (T, 4 * C), 'fc1_relu': (T, 4 * C),
             'fc2': (T, C), 'out': (T, C)}
    top = {'emb': (T, C), 'x0': (T, C), 'rstd0': (T,),
           'logits': (T, V), 'probs': (T, V), 'losses': (T,), 'loss': (1,)}
    return [top[f] for f in Acts._fields if f != 'layers'], [layer[f] for f in LayerActs._fields]


def acts_view(flat, config, vocab_size):
    top_shapes, layer_shapes = acts_shapes(config, vocab_size)
    n_top, n_layer = len(top_shapes), len(layer_shapes)
    views = carve(flat, top_shapes + layer_shapes * config.n_layer)
    layers = tuple(LayerActs(*views[n_top + i * n_layer: n_top + (i + 1) * n_layer])
                   for i in range(config.n_layer))
    top = dict(zip([f for f in Acts._fields if f != 'layers'], views[:n_top]))
    return Acts(layers=layers, **top)


def acts_size(config, vocab_size):
    top, layer = acts_shapes(config, vocab_size)
    return sum(math.prod(s) for s in top) + config.n_layer * sum(math.prod(s) for s in layer)


class TwinGPT:
    """A twin tier: the matrix-form model on a backend's kernels. Same interface as
    gpt.ScalarGPT: train_step(tokens, step) -> loss, new_cache(), next_probs(...)."""

    kernels = numpy_kernels

    def __init__(self, config, vocab_size):
        self.config, self.vocab_size = config, vocab_size
        self.fn = self.bind_model()
        # The same random.gauss draws, in the same order, as the scalar tier's init.
        n = sum(rows * cols for _, (rows, cols) in param_shapes(config, vocab_size))
        init = np.array([random.gauss(0, config.init_std) for _ in range(n)])
        K, n_acts = self.kernels, acts_size(config, vocab_size)
        self.flat = Flat(params=K.zeros(n), grads=K.zeros(n), m=K.zeros(n), v=K.zeros(n),
                         dacts=K.zeros(n_acts))
        self.flat.params[:] = init
        self.P = params_view(self.flat.params, config, vocab_size)
        self.G = params_view(self.flat.grads, config, vocab_size)
        self.A = acts_view(K.zeros(n_acts), config, vocab_size)
        self.dA = acts_view(self.flat.dacts, config, vocab_size)
        C, hd = config.n_embd, config.head_dim
        self.hp = HParams(n_head=config.n_head, inv_C=C ** -1, rms_eps=RMS_EPS,
                          attn_scale=(hd ** 0.5) ** -1)

    def bind_model(self):
        return model.bind(self.kernels)

    @property
    def num_params(self):
        return self.flat.params.shape[0]

    def state_dict(self):
        """{name: (rows, cols) array}, named as in the scalar tier; views, not copies."""
        names = [name for name, _ in param_shapes(self.config, self.vocab_size)]
        flat_views = [self.P.wte, self.P.wpe, self.P.lm_head]
        for layer in self.P.layers:
            flat_views.extend(layer)
        return dict(zip(names, flat_views))

    def adam_step(self, step):
        """Adam's scalars for this step, each computed as the reference computes it."""
        c = self.config
        return AdamStep(lr=c.learning_rate * (1 - step / c.steps), beta1=c.beta1,
                        beta2=c.beta2, one_minus_beta1=1 - c.beta1, one_minus_beta2=1 - c.beta2,
                        bias1=1 - c.beta1 ** (step + 1), bias2=1 - c.beta2 ** (step + 1),
                        eps=c.eps_adam)

    def train_step(self, tokens, step):
        n = min(self.config.block_size, len(tokens) - 1)
        tokens = np.array(tokens[:n + 1], dtype=np.int64)
        return float(self.fn.train_step(self.P, self.G, self.A, self.dA, self.flat,
                                        tokens, n, self.hp, self.adam_step(step)))

    def new_cache(self):
        """A fresh activation workspace; its k and v rows are the KV cache."""
        return acts_view(self.kernels.zeros(acts_size(self.config, self.vocab_size)),
                         self.config, self.vocab_size)

    def next_probs(self, token_id, pos_id, cache, temperature):
        token = np.array([token_id], dtype=np.int64)
        self.fn.sample_step(self.P, cache, token, pos_id, self.hp, temperature ** -1)
        return cache.probs[pos_id].tolist()


class NumpyGPT(TwinGPT):
    """The numpy tier: the twin's readable reference."""
