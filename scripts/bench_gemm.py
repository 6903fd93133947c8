#!/usr/bin/env python3
"""Time every GEMM kernel of gpu/gemm.py on a GPU, beside cuBLAS, and print a table.

    python scripts/bench_gemm.py [--sizes 512 1024 ...] [--repeats 20] [--no-model-shapes]

Each case: fresh random inputs, one warm-up launch, then the median of --repeats launches
timed with CUDA events; every result is checked (against cuBLAS where CuPy or PyTorch is
installed, else against numpy in float64) before its time counts. Sizes are square
(M = N = K) plus the model's own products (n positions x 16 x 64 and the like).
cuBLAS runs the same products: SGEMM for float32, DGEMM for float64, and float16
operands with float32 accumulation (its tensor-core path) for gemm_tc.
Under NUMBA_ENABLE_CUDASIM=1 it runs, slowly, with bogus times: a check of the script.
"""
import argparse
import os
import statistics
import sys

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..'))

from numba import cuda  # noqa: E402

from gpu.gemm import gemm  # noqa: E402

# (kernel, dtype): the precisions each kernel runs in, and the check's tolerance,
# relative to the largest |C| (sums of K products of standard normals: ~sqrt(K)).
CASES = [('naive', np.float32, 1e-4), ('tiled', np.float32, 1e-4), ('tiled', np.float64, 1e-11),
         ('tc', np.float32, 2e-2)]
# The model's products at the default config (n = 16 positions, C = 16, 4C = 64, V = 27),
# as (M, N, K): forward x @ W.T of q/k/v/o, fc1, fc2, lm_head, and a weight gradient.
MODEL_SHAPES = [(16, 16, 16), (16, 64, 16), (16, 16, 64), (16, 27, 16), (64, 16, 16)]
NAIVE_MAX = 4096           # the naive kernel is minutes per launch beyond this


def cublas():
    """(name, gemm(A, B, dtype, tc) -> device C) for the installed cuBLAS binding, or None."""
    try:
        import cupy
    except ImportError:
        cupy = None
    if cupy is not None:
        def run(A, B, dtype, tc):
            a, b = cupy.asarray(A), cupy.asarray(B)
            if tc:   # float16 operands, float32 accumulation: cuBLAS' tensor-core GEMM
                return cupy.matmul(a.astype(cupy.float16), b.astype(cupy.float16),
                                   dtype=cupy.float32)
            return a @ b
        return 'CuPy', run, lambda: cupy.cuda.Device().synchronize()
    try:
        import torch
    except ImportError:
        return None
    if not torch.cuda.is_available():
        return None

    def run(A, B, dtype, tc):
        a = torch.as_tensor(A, device='cuda')
        b = torch.as_tensor(B, device='cuda')
        if tc:
            return (a.half() @ b.half()).float()   # fp16 in, fp32 accumulate, fp16 out
        return a @ b
    return 'PyTorch', run, torch.cuda.synchronize


def time_ms(launch, repeats):
    """Median time of `launch` in ms, with CUDA events, after one warm-up launch."""
    launch()
    times = []
    for _ in range(repeats):
        start, stop = cuda.event(), cuda.event()
        start.record()
        launch()
        stop.record()
        stop.synchronize()
        times.append(start.elapsed_time(stop))
    return statistics.median(times)


def time_ms_host(launch, sync, repeats):
    """The same for cuBLAS, whose calls run on their own library's stream."""
    import time
    launch()
    sync()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        launch()
        sync()
        times.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(times)


def bench(M, N, K, repeats, lib, rng):
    rows = []
    A32, B32 = rng.standard_normal((M, K)), rng.standard_normal((K, N))
    ref64 = A32 @ B32 if max(M, N, K) <= 2048 or lib is None else None
    flops = 2.0 * M * N * K
    for kernel, dtype, tol in CASES:
        if kernel == 'naive' and max(M, N, K) > NAIVE_MAX:
            continue
        A, B = A32.astype(dtype), B32.astype(dtype)
        dA, dB = cuda.to_device(A), cuda.to_device(B)
        dC = cuda.device_array((M, N), dtype=np.float32 if kernel == 'tc' else dtype)
        ms = time_ms(lambda: gemm(dC, dA, dB, kernel=kernel), repeats)
        got = dC.copy_to_host().astype(np.float64)
        lib_ms, expected = None, ref64
        if lib is not None:
            name, run, sync = lib
            tc = kernel == 'tc'
            out = run(A, B, dtype, tc)
            lib_ms = time_ms_host(lambda: run(A, B, dtype, tc), sync, repeats)
            if expected is None:
                expected = np.asarray(out.get() if hasattr(out, 'get') else out.cpu().numpy(),
                                      dtype=np.float64)
        if expected is not None:
            err = np.abs(got - expected).max() / max(np.abs(expected).max(), 1e-30)
            if not err <= tol:
                raise SystemExit(f"gemm_{kernel} {np.dtype(dtype).name} {M}x{N}x{K}: "
                                 f"relative error {err:.2e} > {tol:g}")
        timed = ms > 0          # the simulator's events measure nothing
        rows.append((f'gemm_{kernel}', np.dtype(dtype).name, f'{M}x{N}x{K}', ms,
                     flops / ms / 1e9 if timed else None,
                     lib_ms / ms * 100 if lib_ms and timed else None))
    return rows


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('--sizes', type=int, nargs='+', default=[512, 1024, 2048, 4096, 8192])
    p.add_argument('--repeats', type=int, default=20)
    p.add_argument('--no-model-shapes', action='store_true')
    args = p.parse_args(argv)
    if not cuda.is_available():
        p.error('no CUDA GPU here (NUMBA_ENABLE_CUDASIM=1 runs the simulator, with bogus times)')
    lib = cublas()
    if os.environ.get('NUMBA_ENABLE_CUDASIM') == '1':     # its fake device has no name
        device = 'numba CUDA simulator'
    else:
        device = cuda.get_current_device().name
        device = device.decode() if isinstance(device, bytes) else device
    print(f"device: {device}; cuBLAS via: {lib[0] if lib else 'none installed (CuPy or PyTorch)'}")
    print('| kernel | dtype | M x N x K | ms (median) | TFLOP/s | % of cuBLAS |')
    print('|---|---|---|---:|---:|---:|')
    rng = np.random.default_rng(0)
    shapes = [(s, s, s) for s in args.sizes] + ([] if args.no_model_shapes else MODEL_SHAPES)
    for M, N, K in shapes:
        for name, dtype, shape, ms, tflops, pct in bench(M, N, K, args.repeats, lib, rng):
            tflops = f'{tflops:.2f}' if tflops is not None else 'n/a'
            pct = f'{pct:.0f}%' if pct is not None else 'n/a'
            print(f'| {name} | {dtype} | {shape} | {ms:.3f} | {tflops} | {pct} |', flush=True)
    return 0


if __name__ == '__main__':
    sys.exit(main())
