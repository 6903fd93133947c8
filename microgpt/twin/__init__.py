"""The vectorized twin of the scalar model, as a tier: numpy runs it here; jit/ and gpu/
supply faster kernels for the very same model (see model.py)."""
import random
import sys
import time
import types

import numpy as np

from ..config import RMS_EPS, param_shapes
from ..data import Docs
from . import model, numpy_kernels
from .model import (AdamStep, Batch, Flat, HParams, acts_size, acts_view, backward_orders,
                    params_size, params_view)


class TwinGPT:
    """A twin tier: the matrix-form model on a backend's kernels. Same interface as
    gpt.ScalarGPT: train_step(batch, step) -> loss, new_cache(), next_probs(...)."""

    kernels = numpy_kernels

    @staticmethod
    def training_loop(model, docs, tok, config, on_step=None):
        """gpt.train's interface: many steps a call into the model (train, below)."""
        return train(model, docs, tok, config, on_step)

    @classmethod
    def needed_bytes(cls, config, vocab_size):
        """The memory a run takes: the twin's arrays counted exactly from the shapes
        (parameters, gradients and Adam's moments; activations and their gradients;
        Orders and a Batch, int64), and the backend's transients (transient_floats)."""
        V, T, C, L = vocab_size, config.block_size, config.n_embd, config.n_layer
        hp = types.SimpleNamespace(vocab_size=V, block_size=T, n_embd=C,
                                   n_head=config.n_head, n_layer=L)
        R = config.batch_size * T                # the workspace's rows
        orders = 11 * C + V + R + 5 * R
        floats = 4 * params_size(hp) + 2 * acts_size(hp, R) + orders
        return 8 * (floats + cls.transient_floats(config, vocab_size))

    @staticmethod
    def transient_floats(config, vocab_size):
        """numpy's: the products' terms it sums in order, a block at a time, and
        attention's key windows."""
        R, T, C = config.batch_size * config.block_size, config.block_size, config.n_embd
        return 2 * numpy_kernels.BLOCK + 8 * R * T * C

    def __init__(self, config, vocab_size):
        self.config = config
        C, hd = config.n_embd, config.head_dim
        B = config.batch_size
        self.hp = HParams(vocab_size=vocab_size, block_size=config.block_size, n_embd=C,
                          n_head=config.n_head, n_layer=config.n_layer, batch_size=B,
                          inv_C=C ** -1, rms_eps=RMS_EPS, attn_scale=(hd ** 0.5) ** -1,
                          inv_batch=1 / B)
        self.rows = B * config.block_size          # R: the workspace's rows
        self.fn = self.bind_model()
        K, n, n_acts = self.kernels, params_size(self.hp), acts_size(self.hp, self.rows)
        # The same random.gauss draws, in the same order, as the scalar tier's init.
        init = np.zeros(n)
        views = self.state_dict(init)
        for name, (rows, cols) in param_shapes(config, vocab_size):
            draws = [random.gauss(0, config.init_std) for _ in range(rows * cols)]
            views[name][:] = np.array(draws).reshape(rows, cols)
        self.flat = Flat(params=K.to_device(init), grads=K.zeros(n), m=K.zeros(n),
                         v=K.zeros(n), acts=K.zeros(n_acts), dacts=K.zeros(n_acts))
        self.orders = model.Orders(*(K.to_device(o) for o in backward_orders(self.hp)))
        self.batch = Batch(*(K.to_device(np.zeros(self.rows, dtype=np.int64))
                             for _ in Batch._fields))    # a step's packed rows

    def bind_model(self):
        return model.bind(self.kernels)

    @property
    def num_params(self):
        return self.flat.params.shape[0]

    def state_dict(self, flat=None):
        """{name: (rows, cols) view of the parameters (or of `flat`, laid out like them:
        the gradients, Adam's moments)}, named as in the scalar tier."""
        P = params_view(self.flat.params if flat is None else flat, self.hp)
        C = self.hp.n_embd
        views = {'wte': P.wte, 'wpe': P.wpe, 'lm_head': P.lm_head}
        for l in range(self.hp.n_layer):
            for i, name in enumerate(('attn_wq', 'attn_wk', 'attn_wv')):   # attn_qkv's rows
                views[f'layer{l}.{name}'] = P.attn_qkv[l, i * C:(i + 1) * C]
            for name in ('attn_wo', 'mlp_fc1', 'mlp_fc2'):
                views[f'layer{l}.{name}'] = getattr(P, name)[l]
        return views

    def export_params(self):
        host = self.kernels.to_host(self.flat.params)
        return {name: view.tolist() for name, view in self.state_dict(host).items()}

    def load_params(self, params):
        host = np.zeros(self.num_params)
        for name, view in self.state_dict(host).items():
            view[:] = np.array(params[name], dtype=np.float64)
        self.flat = self.flat._replace(params=self.kernels.to_device(host))

    def adam_schedule(self, first, count):
        """Adam's scalars that change from step to step, for steps first .. first+count-1:
        (count, 3), the learning rate and the two bias corrections, each the float the
        reference computes. numpy divides two integers as Python does (both exact in
        float64, one correctly rounded division), and the powers are Python's own **
        (numpy's power is not libm's). 0.18 us a step, against 0.47 for a loop of Python
        floats (timeit, 999 steps)."""
        c = self.config
        step = np.arange(first, first + count)
        exponent = (step + 1).astype(np.float64)
        return np.stack([c.learning_rate * (1 - step / c.steps),
                         1 - numpy_kernels.power(c.beta1, exponent),
                         1 - numpy_kernels.power(c.beta2, exponent)], axis=1)

    def adam_step(self, step):
        """All of Adam's scalars for this step."""
        c = self.config
        lr, bias1, bias2 = self.adam_schedule(step, 1)[0].tolist()
        return AdamStep(lr=lr, beta1=c.beta1, beta2=c.beta2, one_minus_beta1=1 - c.beta1,
                        one_minus_beta2=1 - c.beta2, bias1=bias1, bias2=bias2, eps=c.eps_adam)

    def train_step(self, batch, step):
        """One step on a batch of token lists (gpt.step_batch's); its loss."""
        T = self.config.block_size
        pad = [0] * (T + 1)
        tokens = np.array([[(ids + pad)[:T + 1] for ids in batch]], dtype=np.int64)
        lengths = np.array([[min(T, len(ids) - 1) for ids in batch]], dtype=np.int64)
        return self.train_steps(tokens, lengths, step)[0]

    def train_steps(self, tokens, lengths, first_step):
        """Training steps first_step, first_step+1, ... in one call into the model: step s
        on the documents tokens[s] (S,B,T+1), [BOS, ids..., BOS] cut to T+1 and padded,
        of which it trains on the first lengths[s] (S,B) positions; their losses."""
        S = tokens.shape[0]
        schedule = self.adam_schedule(first_step, S)
        losses = np.empty(S)
        self.fn.train_steps(self.flat, self.batch, self.kernels.to_device(tokens), lengths,
                            schedule, self.hp, self.adam_step(first_step), self.orders, losses)
        return losses.tolist()

    def new_cache(self):
        """A fresh activation workspace of one document; its k and v rows are the KV
        cache."""
        return self.kernels.zeros(acts_size(self.hp, self.config.block_size))

    def next_probs(self, token_id, pos_id, cache, temperature):
        token = self.kernels.to_device(np.array([token_id], dtype=np.int64))
        pos = self.kernels.to_device(np.array([pos_id], dtype=np.int64))
        self.fn.sample_step(self.flat.params, cache, token, pos, self.hp, temperature ** -1)
        A = acts_view(cache, self.hp, self.config.block_size)
        return self.kernels.to_host(A.probs[pos_id]).tolist()


def joined(docs, start, stop):
    """Documents start..stop-1 in one string, and their lengths: Docs.joined, or the
    same from a list of strings."""
    if isinstance(docs, Docs):
        return docs.joined(start, stop)
    texts = docs[start:stop]
    return ''.join(texts), [len(text) for text in texts]


def encode_steps(docs, tok, first, count, batch_size, block_size):
    """The documents of steps first .. first+count-1 (gpt.step_batch's), encoded for
    TwinGPT.train_steps: tokens (S,B,T+1) and lengths (S,B). A whole chunk of steps at
    once, with numpy: a list of token ids a document, as step_batch makes, costs more
    than a default jit step."""
    B, T, N = batch_size, block_size, count * batch_size
    texts, lens, i, end = [], [], first * B, (first + count) * B   # docs[i % len(docs)]
    while i < end:                                      # in slices, wrapping around
        start = i % len(docs)
        stop = min(len(docs), start + end - i)
        text, lengths = joined(docs, start, stop)
        texts.append(text)
        lens.append(np.asarray(lengths, dtype=np.int64))
        i += stop - start
    lens = np.concatenate(lens)
    codes = np.array([ord(ch) for ch in tok.uchars], dtype=np.int64)
    stoi = np.zeros(codes.max(initial=-1) + 1, dtype=np.int64)    # tok.stoi, by code point
    stoi[codes] = np.arange(len(codes))
    # Their characters' code points: a numpy string's 4-byte characters, read as such
    # (no codec to import; trailing NULs are kept in the array's memory).
    ids = stoi[np.array([''.join(texts)]).view(np.uint32)]
    kept = np.minimum(lens, T)                          # the characters that fit the block
    tokens = np.zeros((N, T + 1), dtype=np.int64)
    tokens[:, 0] = tok.BOS
    # Kept character j of document d, the k-th kept character of all (k = kept_starts[d]
    # + j), goes to tokens[d, 1 + j], flat position d*(T+1) + 1 - kept_starts[d] + k. It
    # is ids[starts[d] + j]: ids[k] itself where every document fits the block.
    kept_starts = np.cumsum(kept) - kept
    k = np.arange(kept_starts[-1] + kept[-1])
    src = ids
    if (kept < lens).any():
        starts = np.cumsum(lens) - lens
        src = ids[np.repeat(starts - kept_starts, kept) + k]
    tokens.reshape(-1)[np.repeat(np.arange(N) * (T + 1) + 1 - kept_starts, kept) + k] = src
    ends = np.flatnonzero(lens < T)                     # the closing BOS, where it fits
    tokens[ends, lens[ends] + 1] = tok.BOS
    lengths = np.minimum(T, lens + 1)
    return tokens.reshape(count, B, T + 1), lengths.reshape(count, B)


def train(model, docs, tok, config, on_step=None, chunk_seconds=0.05):
    """gpt.train for the twin tiers: the same steps, losses and prints, many steps to a
    call into the model, so that the Python around a step is paid once a chunk. The first
    chunk is one step; each next one as many as the one before ran in chunk_seconds
    (steps after the first run no slower than it). on_step(losses) is called after each
    chunk."""
    from ..gpt import step_line
    losses, chunk = [], 1
    while len(losses) < config.steps:
        first = len(losses)
        count = min(chunk, config.steps - first)
        t0 = time.perf_counter()
        tokens, lengths = encode_steps(docs, tok, first, count, config.batch_size,
                                       config.block_size)
        losses += model.train_steps(tokens, lengths, first)
        elapsed = time.perf_counter() - t0
        sys.stdout.write(''.join(step_line(step, config.steps, losses[step]) + '\r'
                                 for step in range(first, first + count)))
        if on_step is not None and on_step(losses):
            break
        chunk = max(1, int(count * chunk_seconds / max(elapsed, 1e-6)))
    return losses


class NumpyGPT(TwinGPT):
    """The numpy tier: the twin's readable reference."""
