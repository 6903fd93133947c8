#!/usr/bin/env python3
"""Time the jit tier's products (jit/kernels.py) beside numpy's BLAS, and print a table.

    python scripts/bench_products.py [--sizes 64 256 512] [--rows R] [--repeats 5]

Each size S is a product of S rows (or --rows R: a batch's rows, 224 for 32 names) x S
inputs x S outputs: the forward product (out = inp @ w.T) and the backward pair (dinp
and dw), on fresh random inputs, on numba's threads (NUMBA_NUM_THREADS, default: every
core). Every result is first checked against the numpy tier's kernels, bit for bit;
then each is timed, the best of --repeats calls. BLAS runs the same forward product (numpy's `@`, in its own order of
summation: the roof the exact products are measured against).
"""
import argparse
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..'))

import numba  # noqa: E402

from jit import kernels  # noqa: E402
from microgpt.twin import numpy_kernels  # noqa: E402


def best_seconds(call, repeats):
    call()                                     # compiled (or loaded) and warm
    best = float('inf')
    for _ in range(repeats):
        t0 = time.perf_counter()
        call()
        best = min(best, time.perf_counter() - t0)
    return best


def bench(S, R, repeats, rng):
    inp, w, dout = rng.standard_normal((R, S)), rng.standard_normal((S, S)), rng.standard_normal((R, S))
    order = np.arange(S - 1, -1, -1)[None, :].copy()       # every row: outputs last first
    which = np.zeros(R, dtype=np.int64)
    out, dinp, dw = np.empty((R, S)), np.zeros((R, S)), np.zeros((S, S))

    def forward(K, out):
        K.matmul_forward(out, inp, w)

    def backward(K, dinp, dw):
        K.matmul_backward_input(dinp, dout, w, order, which)
        K.matmul_backward_weight(dw, dout, inp, 0, dw.shape[0])

    expected = np.empty((R, S)), np.zeros((R, S)), np.zeros((S, S))
    forward(numpy_kernels, expected[0])
    backward(numpy_kernels, expected[1], expected[2])
    forward(kernels, out)
    backward(kernels, dinp, dw)
    for name, got, want in zip(('out', 'dinp', 'dw'), (out, dinp, dw), expected):
        if not np.array_equal(got, want):
            raise SystemExit(f"bench_products: size {S}: jit's {name} differs from numpy's")
    flops = 2 * R * S * S
    return (flops / best_seconds(lambda: forward(kernels, out), repeats),
            2 * flops / best_seconds(lambda: backward(kernels, dinp, dw), repeats),
            flops / best_seconds(lambda: inp @ w.T, repeats))


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('--sizes', type=int, nargs='+', default=[64, 256, 512])
    p.add_argument('--rows', type=int, help='rows of every product (default: its size)')
    p.add_argument('--repeats', type=int, default=5)
    args = p.parse_args(argv)
    if min(args.sizes) < 1 or args.repeats < 1 or (args.rows is not None and args.rows < 1):
        p.error("sizes, rows and repeats must be positive")
    rng = np.random.default_rng()
    print(f"jit products on {numba.get_num_threads()} thread(s), checked bit for bit "
          f"against the numpy tier's; GFLOP/s, best of {args.repeats}\n")
    print("| size | rows | forward | backward (dinp and dw) | BLAS forward (numpy @) | "
          "forward / BLAS |")
    print("|---:|---:|---:|---:|---:|---:|")
    for S in args.sizes:
        R = args.rows or S
        fwd, bwd, blas = (x / 1e9 for x in bench(S, R, args.repeats, rng))
        print(f"| {S} | {R} | {fwd:.2f} | {bwd:.2f} | {blas:.2f} | {fwd / blas:.1%} |",
              flush=True)


if __name__ == '__main__':
    main()
