#!/usr/bin/env python3
"""How each tier's cost grows with the model's width and the batch.

    python scripts/scaling.py [--tiers T ...] [--widths W ...] [--batches B ...]
                              [--n-layer L] [--block-size T] [--seconds S] [--data PATH]
                              [--plot PATH]

Every point (tier, width, batch) is one `python -m microgpt` run in its own process, on
the names (or --data), 4 heads, num_samples 0; its us per step is the training loop's
wall time over its steps after the first, as the command line's --json reports it
(`after_first_step`): the first step touches the run's memory for the first time, which
takes some 2.5 s more than a step at 512 wide, 4 layers and batch 32. Wider models start
from smaller weights and take smaller steps (init_std and learning_rate below): with the
reference's 0.08 and 0.01 at every width, training diverges from about 512 wide (a nan
loss in step 3 or 4), and the sweep would time arithmetic on nan, whose Adam updates
all take the slow exact path. Printed as a markdown table:
us per step, tokens (positions trained) per second, the achieved GFLOP/s and its
fraction of this machine's roof. FLOPs are counted from the shapes, for the very
documents each step trains on: per position, 2 per multiply-add of the forward pass
(every linear layer, lm_head, and attention's q.k and weights.v over the keys it
sees), times 3 for forward plus backward. The roof is numpy's float64 matmul (BLAS, all
cores) measured in the same run, before the sweep and after it, the faster of the two (a
busy host slows a measurement; nothing makes one faster than the machine). scalar and
lean run only where a step takes under a second (predicted by the FLOPs from their
previous point, or the previous batch's first). --plot PATH draws us per step and
GFLOP/s against width, log-log, one line per tier and batch, with the roof
(needs matplotlib).
"""
import argparse
import os
import random
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..'))

from microgpt import bench, tiers  # noqa: E402
from microgpt.config import GPTConfig  # noqa: E402
from microgpt.data import find_data, load_docs  # noqa: E402


def init_std(width):
    """The reference's 0.08 at its width, 16, and 1/sqrt(width) beyond: the usual scaling,
    which keeps the activations' size the same at every width."""
    return GPTConfig.init_std * (GPTConfig.n_embd / width) ** 0.5


def learning_rate(width):
    """The reference's 0.01 at width 16, and 1/width beyond, as muP scales Adam's rate for
    hidden weights (so each step changes a layer's output about as much at every width).
    Checked at width 512, 1 layer, batch 1 and 32, and 4 layers, block 64, batch 32: the
    losses fall from about 3.3 and stay finite."""
    return GPTConfig.learning_rate * GPTConfig.n_embd / width


SLOW_TIERS = ('scalar', 'lean')   # run only where a step takes under MAX_SLOW_STEP seconds
MAX_SLOW_STEP = 1.0
MIN_STEPS, MAX_STEPS = 2, 200   # timed steps, after the first
N_HEAD = 4


def blas_roof_gflops(n=1024, repeats=5):
    """numpy's float64 matmul (its BLAS, every core) on n x n matrices: the best of a few."""
    import numpy as np
    a, b = np.random.default_rng(0).standard_normal((2, n, n))
    best = float('inf')
    for _ in range(repeats):
        t0 = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - t0)
    return 2 * n ** 3 / best / 1e9


class Workload:
    """The documents each step trains on, as the runs see them (the same seed and
    shuffle), and the FLOPs of a config on them."""

    def __init__(self, data_path, seed=42):
        docs = load_docs(data_path)
        self.vocab_size = len(docs.chars()) + 1
        random.seed(seed)
        docs.shuffle()
        self.lengths = [len(docs[i]) + 1 for i in range(len(docs))]   # positions, uncut

    def positions(self, step, batch, block_size):
        """The positions step `step` trains on (each document cut to block_size)."""
        L = self.lengths
        return [min(block_size, L[(step * batch + b) % len(L)]) for b in range(batch)]

    def flops(self, steps, width, batch, n_layer, block_size):
        """(FLOPs, positions) of training steps 0..steps-1, forward and backward."""
        C, V, L = width, self.vocab_size, n_layer
        per_position = 12 * L * C * C + V * C      # multiply-adds of the linear layers
        macs = positions = 0
        for step in range(steps):
            for n in self.positions(step, batch, block_size):
                positions += n
                # attention: position p's query reads p+1 keys and values, C wide each
                macs += n * per_position + L * 2 * C * n * (n + 1) // 2
        return 6 * macs, positions


def sweep(args, env, workload):
    """{(tier, batch): [point, ...] by width}; a point is a dict (or None if skipped)."""
    results = {}
    for tier in args.tiers:
        try:
            tiers.load(tier)
            reason = tiers.unmeasurable(tier)
        except tiers.TierError as e:
            reason = str(e)
        if reason:
            print(f"{tier}: skipped: {reason}", file=sys.stderr)
            continue
        first_rate = None                  # seconds per FLOP at the first width
        for batch in args.batches:
            points, seconds_per_flop = [], first_rate
            for width in args.widths:
                step_flops, _ = workload.flops(1, width, batch, args.n_layer, args.block_size)
                if seconds_per_flop is None:      # the tier's first point: calibrate
                    trial = run_point(tier, width, batch, 1, args, env, workload)
                    seconds_per_flop = trial['seconds'] / trial['flops']
                predicted = seconds_per_flop * step_flops
                if tier in SLOW_TIERS and predicted > MAX_SLOW_STEP:
                    points.append(None)
                    continue
                steps = max(MIN_STEPS, min(MAX_STEPS, int(args.seconds / predicted)))
                point = run_point(tier, width, batch, steps, args, env, workload)
                print(f"{tier} width {width} batch {batch}: {point['us_per_step']:.0f} us/step, "
                      f"{point['gflops']:.2f} GFLOP/s ({steps} steps)", file=sys.stderr)
                points.append(point)
                seconds_per_flop = point['seconds'] / point['flops']
                first_rate = first_rate if len(points) > 1 else seconds_per_flop
            results[tier, batch] = points
    return results


def run_point(tier, width, batch, steps, args, env, workload):
    """`steps` timed training steps, after a first one that is not timed."""
    report = bench.run_tier(tier, env, '--data', args.data, '--steps', str(steps + 1),
                            '--batch-size', str(batch), '--n-embd', str(width),
                            '--n-head', str(N_HEAD), '--n-layer', str(args.n_layer),
                            '--block-size', str(args.block_size), '--num-samples', '0',
                            '--init-std', repr(init_std(width)),
                            '--learning-rate', repr(learning_rate(width)))
    timed = report['after_first_step']
    assert timed['steps'] == steps, timed
    flops, positions = (a - b for a, b in zip(
        workload.flops(steps + 1, width, batch, args.n_layer, args.block_size),
        workload.flops(1, width, batch, args.n_layer, args.block_size)))
    seconds = timed['seconds']
    return {'width': width, 'steps': steps, 'seconds': seconds, 'flops': flops,
            'us_per_step': 1e6 * seconds / steps, 'tokens_per_s': positions / seconds,
            'gflops': flops / seconds / 1e9}


def table(results, roof, args):
    lines = [f"n_layer {args.n_layer}, block_size {args.block_size}, {N_HEAD} heads; "
             f"roof: numpy float64 matmul {roof:.1f} GFLOP/s", '',
             '| tier | batch | width | us per step | tokens/s | GFLOP/s | of roof |',
             '|---|---:|---:|---:|---:|---:|---:|']
    for (tier, batch), points in results.items():
        for width, p in zip(args.widths, points):
            if p is None:
                lines.append(f"| {tier} | {batch} | {width} | skipped: a step would take "
                             f"over {MAX_SLOW_STEP:.0f} s | | | |")
                continue
            lines.append(f"| {tier} | {batch} | {width} | {p['us_per_step']:.0f} | "
                         f"{p['tokens_per_s']:.0f} | {p['gflops']:.3f} | "
                         f"{100 * p['gflops'] / roof:.2f}% |")
    return '\n'.join(lines)


def plot(results, roof, args, path):
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    fig, (ax_time, ax_rate) = plt.subplots(1, 2, figsize=(13, 5))
    colors = {'scalar': 'tab:gray', 'lean': 'tab:green', 'numpy': 'tab:blue',
              'jit': 'tab:red', 'cuda': 'tab:purple'}
    styles = ['-', '--', ':', '-.']
    batches = sorted({batch for _, batch in results})
    for (tier, batch), points in results.items():
        xs = [w for w, p in zip(args.widths, points) if p]
        style = dict(color=colors.get(tier), linestyle=styles[batches.index(batch) % len(styles)],
                     marker='o', markersize=3, label=f'{tier}, batch {batch}')
        ax_time.plot(xs, [p['us_per_step'] for p in points if p], **style)
        ax_rate.plot(xs, [p['gflops'] for p in points if p], **style)
    ax_rate.axhline(roof, color='black', linewidth=1)
    ax_rate.annotate(f'roof: numpy float64 matmul, {roof:.0f} GFLOP/s', (args.widths[0], roof),
                     textcoords='offset points', xytext=(0, 4), fontsize=8)
    for ax, label in ((ax_time, 'us per training step'), (ax_rate, 'achieved GFLOP/s')):
        ax.set_xscale('log', base=2)
        ax.set_yscale('log')
        ax.set_xlabel('n_embd (width)')
        ax.set_ylabel(label)
        ax.grid(True, which='major', alpha=0.3)
    ax_time.set_title('time per step')
    ax_rate.set_title('FLOPs per second (forward + backward)')
    ax_rate.legend(fontsize=7, ncol=2, loc='lower right')
    fig.suptitle(f'How cost grows: n_layer {args.n_layer}, block_size {args.block_size}, '
                 f'{N_HEAD} heads, names')
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main():
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('--tiers', nargs='+', default=['scalar', 'lean', 'numpy', 'jit'],
                   choices=list(tiers.TIERS))
    p.add_argument('--widths', nargs='+', type=int, default=[16, 32, 64, 128, 256, 512])
    p.add_argument('--batches', nargs='+', type=int, default=[1, 8, 32])
    p.add_argument('--n-layer', type=int, default=1)
    p.add_argument('--block-size', type=int, default=16)
    p.add_argument('--data', help='names.txt or any UTF-8 text (default: as the command line)')
    p.add_argument('--seconds', type=float, default=2.0,
                   help="about how long each point trains (default 2; at least 3 steps)")
    p.add_argument('--plot', metavar='PATH', help='draw the curves into this PNG')
    args = p.parse_args()
    bad = [w for w in args.widths if w <= 0 or w % N_HEAD]
    if bad or min(args.batches) <= 0:
        p.error(f"widths must be positive multiples of {N_HEAD}, batches positive")
    args.data = find_data(args.data)
    env = bench.environment()
    roof = blas_roof_gflops()
    results = sweep(args, env, Workload(args.data))
    roof = max(roof, blas_roof_gflops())
    print(table(results, roof, args))
    if args.plot:
        plot(results, roof, args, args.plot)
        print(f"\nwrote {args.plot}")


if __name__ == '__main__':
    main()
