#!/usr/bin/env python3
"""The jit tier beside what a user would pick instead: the same model in PyTorch.

    python scripts/peers.py [--configs NAME ...] [--steps N] [--data PATH]

For each config, the same run three ways: the jit tier (`python -m microgpt`, its own
process, as scripts/scaling.py runs it), and a PyTorch model of the same GPT in float64
and in float32 (this process, torch's default threads). All start from the same
weights, drawn by the reference's RNG from the config's seed (the twin's init, loaded
into torch), and train on the same documents, in the same batches, with the same Adam
schedule. Before timing anything, torch float64's first --check-steps losses must agree
with the numpy tier's (which is the reference's, bit for bit) to CHECK_RTOL: else the
script stops, since it would be timing another model.

Time is the seconds of --steps training steps after one untimed step (the first touches
the run's memory), per step. Printed as a markdown table: us a step for each, and each
torch's time over jit's (above 1: jit is faster). Needs torch (not a dependency of the
project: `pip install torch`); configs are scripts/scaling.py's scaling of the
reference (init_std and learning_rate by width).
"""
import argparse
import os
import random
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..'))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import numpy as np  # noqa: E402

import scaling  # noqa: E402
from microgpt import bench  # noqa: E402
from microgpt.config import GPTConfig  # noqa: E402
from microgpt.data import find_data, load_docs  # noqa: E402
from microgpt.gpt import Tokenizer  # noqa: E402
from microgpt.twin import NumpyGPT, encode_steps  # noqa: E402

# name: (n_embd, n_layer, block_size, batch_size); 4 heads, as scripts/scaling.py
CONFIGS = {'default': (16, 1, 16, 1), 'batch16': (16, 1, 16, 16),
           'wide128': (128, 2, 16, 8), 'wide512': (512, 4, 64, 32)}
# torch float64 against the exact tier over the first steps: its BLAS sums in its own
# order, some 1e-16 relative per product, which the steps carry forward
CHECK_RTOL = 1e-10


def config_for(name, steps):
    width, layers, block, batch = CONFIGS[name]
    return GPTConfig(n_embd=width, n_head=4, n_layer=layers, block_size=block,
                     batch_size=batch, steps=steps, num_samples=0,
                     init_std=scaling.init_std(width),
                     learning_rate=scaling.learning_rate(width))


def setup(config, data):
    """gpt.run's start: the shuffled documents, the tokenizer, the twin at its init."""
    random.seed(config.seed)
    docs = load_docs(data)
    docs.shuffle()
    tok = Tokenizer(docs.chars())
    return docs, tok, NumpyGPT(config, tok.vocab_size)


class TorchGPT:
    """The twin's model in PyTorch: a step's documents packed row after row, attention
    kept to each row's own document and earlier positions by a mask; autograd for the
    backward; Adam by hand, with the twin's per-step scalars."""

    def __init__(self, twin, dtype):
        import torch
        self.torch, self.dtype, self.twin, self.hp = torch, dtype, twin, twin.hp
        self.p = {k: torch.tensor(np.array(v), dtype=dtype, requires_grad=True)
                  for k, v in twin.state_dict().items()}
        self.m = {k: torch.zeros_like(v) for k, v in self.p.items()}
        self.v = {k: torch.zeros_like(v) for k, v in self.p.items()}

    def rmsnorm(self, x):
        return x * (x.pow(2).mean(dim=1, keepdim=True) + self.hp.rms_eps) ** -0.5

    def loss(self, tokens, lengths):
        torch, hp, p = self.torch, self.hp, self.p
        B = tokens.shape[0]
        ids = np.concatenate([tokens[b, :lengths[b]] for b in range(B)])
        targets = np.concatenate([tokens[b, 1:lengths[b] + 1] for b in range(B)])
        pos = np.concatenate([np.arange(lengths[b]) for b in range(B)])
        doc = np.repeat(np.arange(B), lengths)
        mask = torch.tensor((doc[:, None] == doc[None, :]) & (pos[:, None] >= pos[None, :]))
        n, C, H = len(ids), hp.n_embd, hp.n_head
        x = self.rmsnorm(p['wte'][torch.tensor(ids)] + p['wpe'][torch.tensor(pos)])
        for l in range(hp.n_layer):
            h = self.rmsnorm(x)
            q, k, v = ((h @ p[f'layer{l}.attn_w{c}'].T).view(n, H, C // H).transpose(0, 1)
                       for c in 'qkv')
            att = (q @ k.transpose(1, 2)) * hp.attn_scale
            att = torch.softmax(att.masked_fill(~mask, float('-inf')), dim=-1)
            y = (att @ v).transpose(0, 1).reshape(n, C)
            x = y @ p[f'layer{l}.attn_wo'].T + x
            h = torch.relu(self.rmsnorm(x) @ p[f'layer{l}.mlp_fc1'].T)
            x = h @ p[f'layer{l}.mlp_fc2'].T + x
        logp = torch.log_softmax(x @ p['lm_head'].T, dim=-1)
        losses = -logp[torch.arange(n), torch.tensor(targets)]
        per_doc = torch.zeros(B, dtype=self.dtype).index_add(0, torch.tensor(doc), losses)
        return (per_doc / torch.tensor(lengths, dtype=self.dtype)).mean()

    def train_step(self, tokens, lengths, step):
        torch, c = self.torch, self.twin.config
        loss = self.loss(tokens, lengths)
        for g in self.p.values():
            g.grad = None
        loss.backward()
        lr, bias1, bias2 = self.twin.adam_schedule(step, 1)[0].tolist()
        with torch.no_grad():
            for k, w in self.p.items():
                g = w.grad
                self.m[k].mul_(c.beta1).add_((1 - c.beta1) * g)
                self.v[k].mul_(c.beta2).add_((1 - c.beta2) * g * g)
                w -= lr * (self.m[k] / bias1) / ((self.v[k] / bias2).sqrt() + c.eps_adam)
        return loss.item()


def check(config, data, steps):
    """torch float64's first losses against the numpy tier's: the worst relative error."""
    docs, tok, twin = setup(config, data)
    tokens, lengths = encode_steps(docs, tok, 0, steps, config.batch_size, config.block_size)
    model = TorchGPT(twin, __import__('torch').float64)
    got = [model.train_step(tokens[s], lengths[s], s) for s in range(steps)]
    expected = twin.train_steps(tokens, lengths, 0)
    return bench.worst_rel_error(got, expected)


def time_torch(config, data, dtype, steps):
    """us a step of `steps` steps after one."""
    import torch
    docs, tok, twin = setup(config, data)
    tokens, lengths = encode_steps(docs, tok, 0, steps + 1, config.batch_size,
                                   config.block_size)
    model = TorchGPT(twin, getattr(torch, dtype))
    model.train_step(tokens[0], lengths[0], 0)
    t0 = time.perf_counter()
    for s in range(1, steps + 1):
        model.train_step(tokens[s], lengths[s], s)
    return 1e6 * (time.perf_counter() - t0) / steps


def time_jit(config, data, steps, env):
    report = bench.run_tier(
        'jit', env, '--data', data, '--steps', str(steps + 1), '--batch-size',
        str(config.batch_size), '--n-embd', str(config.n_embd), '--n-head', str(config.n_head),
        '--n-layer', str(config.n_layer), '--block-size', str(config.block_size),
        '--num-samples', '0', '--init-std', repr(config.init_std),
        '--learning-rate', repr(config.learning_rate))
    timed = report['after_first_step']
    return 1e6 * timed['seconds'] / timed['steps']


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[1])
    parser.add_argument('--configs', nargs='+', choices=list(CONFIGS), default=list(CONFIGS))
    parser.add_argument('--steps', type=int, default=20, help='timed steps a run (after one)')
    parser.add_argument('--check-steps', type=int, default=3)
    parser.add_argument('--data')
    parser.add_argument('--write-docs', action='store_true',
                        help="rewrite docs/performance.md's peers table")
    args = parser.parse_args(argv)
    try:
        import torch
    except ImportError:
        parser.error('needs PyTorch: pip install torch')
    data = args.data or find_data()
    env = bench.environment()
    lines = [f"torch {torch.__version__}, {torch.get_num_threads()} threads; jit at its "
             f"default threads; {args.steps} steps after one.", '',
             '| config | torch f64 vs exact, first steps | jit us | torch f64 us | '
             'torch f32 us | torch f64 / jit | torch f32 / jit |',
             '| --- | ---: | ---: | ---: | ---: | ---: | ---: |']
    print('\n'.join(lines), flush=True)
    for name in args.configs:
        config = config_for(name, args.steps + 1)
        err = check(config, data, args.check_steps)
        if err > CHECK_RTOL:
            raise SystemExit(f"peers: {name}: torch float64 is not the same model: its "
                             f"losses differ by {err:.1e} relative (> {CHECK_RTOL})")
        jit = time_jit(config, data, args.steps, env)
        f64 = time_torch(config, data, 'float64', args.steps)
        f32 = time_torch(config, data, 'float32', args.steps)
        width, layers, block, batch = CONFIGS[name]
        lines.append(f'| {name} ({width} wide, {layers} layer, block {block}, batch {batch}) | '
                     f'{err:.0e} | {jit:.0f} | {f64:.0f} | {f32:.0f} | {f64 / jit:.2f} | '
                     f'{f32 / jit:.2f} |')
        print(lines[-1], flush=True)
    if args.write_docs:
        import report
        report.rewrite(os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'docs',
                                    'performance.md'), 'peers',
                       f"Measured {report.stamp()}:\n\n" + '\n'.join(lines))
    return 0


if __name__ == '__main__':
    sys.exit(main())
