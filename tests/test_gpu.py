"""The GPU tier under numba's CUDA simulator (or on a real GPU, where there is one):
every GEMM kernel and product form against numpy, every model kernel against the numpy
twin's, and the cuda tier end to end against the scalar spec."""
import contextlib
import io
import os
import subprocess
import sys

import numpy as np
import pytest
from numba import cuda

import test_kernels
from check import check_tensor, rel_diff
from conftest import HAS_GPU, ROOT
from gpu import gemm as G
from gpu import tuning
from gpu.kernels import CudaKernels
from microgpt import gpt
from microgpt.config import GPTConfig
from microgpt.data import load_docs
from microgpt.twin import numpy_kernels


SMALL = dict(TILE_M=8, TILE_N=8, TILE_K=4, THREAD_M=2, THREAD_N=2, WARPS_M=1, WARPS_N=2,
             THREADS=8, NAIVE_BLOCK=4, FUSED_THREADS=8)
MEDIUM = dict(SMALL, TILE_M=32, TILE_N=32, TILE_K=16, THREAD_M=4, THREAD_N=4, WARPS_M=2)


def launch_with(monkeypatch, tunables):
    for name, value in tunables.items():
        monkeypatch.setattr(tuning, name, value)


@pytest.fixture(autouse=True)
def small_launches(monkeypatch):
    """Tiny tiles and few threads per block, so that small inputs span several blocks
    and every edge-tile path runs (and the simulator stays quick)."""
    launch_with(monkeypatch, SMALL)


# Tolerances, relative to sum_k |a_ik| |b_kj| (the scale of each output's rounding):
# float64 and float32 GEMMs round each of K additions once, ~K * eps at worst (K <= 80
# here); tc rounds both operands to float16 first (2^-11 each), then adds in float32.
GEMM_TOL = {('naive', np.float64): 1e-14, ('tiled', np.float64): 1e-14,
            ('naive', np.float32): 1e-5, ('tiled', np.float32): 1e-5, ('tc', np.float32): 2e-3}
# M, N, K. The larger shape runs with 32x32 tiles (48 and 80 are not multiples of 32):
# with the tiny ones it would take the simulator minutes, one barrier at a time.
SHAPES = [(1, 1, 1), (17, 33, 9), (9, 40, 21), (64, 48, 80)]


@pytest.mark.parametrize('form', list(G.FORMS))
@pytest.mark.parametrize('kernel, dtype', list(GEMM_TOL))
@pytest.mark.parametrize('M, N, K', SHAPES)
def test_gemm_against_numpy(form, kernel, dtype, M, N, K, monkeypatch):
    if (M, N, K) == (64, 48, 80):
        launch_with(monkeypatch, MEDIUM)
    rng = np.random.default_rng(M * 10000 + N * 100 + K)
    ta, tb = G.FORMS[form]
    A = rng.standard_normal((K, M) if ta else (M, K)).astype(dtype)
    B = rng.standard_normal((N, K) if tb else (K, N)).astype(dtype)
    C0 = rng.standard_normal((M, N)).astype(dtype)
    opA = (A.T if ta else A).astype(np.float64)
    opB = (B.T if tb else B).astype(np.float64)
    scale = np.abs(opA) @ np.abs(opB)
    for accumulate in (False, True):
        C = cuda.to_device(C0)
        G.gemm(C, cuda.to_device(A), cuda.to_device(B), form=form, kernel=kernel,
               accumulate=accumulate)
        expected = opA @ opB + (C0.astype(np.float64) if accumulate else 0)
        err = np.abs(C.copy_to_host() - expected) / (scale + (np.abs(C0) if accumulate else 0))
        assert err.max() <= GEMM_TOL[kernel, dtype], (accumulate, err.max())
        if kernel == 'tc' and K > 1:    # really float16 operands: not float32 accuracy
            assert err.max() > 1e-6


@pytest.mark.parametrize('kernel, dtype', list(GEMM_TOL))
def test_gemm_without_accumulate_never_reads_c(kernel, dtype):
    """C = A @ B into memory that holds NaNs (fresh device memory may): the result is
    the product, not NaN (gemm_naive took its zero as C[i, j] * 0)."""
    A, B = np.ones((3, 5), dtype=dtype), np.ones((5, 4), dtype=dtype)
    C = cuda.to_device(np.full((3, 4), np.nan, dtype=dtype))
    G.gemm(C, cuda.to_device(A), cuda.to_device(B), kernel=kernel)
    assert (C.copy_to_host() == 5).all()


def test_gemm_rejects_mismatched_shapes():
    A, B, C = (cuda.to_device(np.ones(s)) for s in [(3, 4), (5, 6), (3, 6)])
    with pytest.raises(ValueError, match=r'op\(A\) 3x4 @ op\(B\) 5x6 does not fit C \(3, 6\)'):
        G.gemm(C, A, B)


class OnDevice:
    """A CudaKernels whose methods take host arrays, as test_kernels' ops pass them:
    copied to the device, the kernel run, and every array copied back."""

    def __init__(self):
        self.K = CudaKernels('fp64')

    def __getattr__(self, name):
        kernel = getattr(self.K, name)

        def call(*args):
            dev = [cuda.to_device(a) if isinstance(a, np.ndarray) else a for a in args]
            kernel(*dev)
            for a, d in zip(args, dev):
                if isinstance(a, np.ndarray):
                    a[...] = d.copy_to_host()
        return call


@pytest.mark.parametrize('op', list(test_kernels.OPS))
def test_cuda_kernels_match_numpy_kernels(op):
    inputs, forward, backward = test_kernels.OPS[op]()
    rng = np.random.default_rng(11 + len(op))
    x = inputs(rng)
    dout = test_kernels.rand(rng, *forward(numpy_kernels, x).shape)
    K = OnDevice()     # fp64 under the simulator: the same floats, bit for bit
    check_tensor(f'{op} forward', forward(K, x), forward(numpy_kernels, x), 0.0)
    got, expected = backward(K, x, dout), backward(numpy_kernels, x, dout)
    for name in x:
        check_tensor(f'{op}: d{name}', got[name], expected[name], 0.0)


def test_cuda_pack_batch():
    from microgpt.twin.model import Batch
    tokens = np.array([[0, 5, 6, 7], [0, 9, 0, 0], [0, 2, 3, 0]], dtype=np.int64)   # (B,T+1)
    lengths = np.array([3, 1, 2], dtype=np.int64)
    expected = Batch(*(np.full(8, -1, dtype=np.int64) for _ in Batch._fields))
    numpy_kernels.pack_batch(expected, tokens, lengths)
    batch = Batch(*(cuda.to_device(np.full(8, -1, dtype=np.int64)) for _ in Batch._fields))
    assert CudaKernels('fp64').pack_batch(batch, cuda.to_device(tokens), lengths) == 6
    for got, want in zip(batch, expected):
        assert got.copy_to_host().tolist() == want.tolist()


def test_cuda_adam_update():
    (p, g, m, v), args, expected = test_kernels.adam_case(size=3000)
    OnDevice().adam_update(p, g, m, v, *args)
    assert (p.tolist(), m.tolist(), v.tolist()) == expected


TINY = GPTConfig(n_embd=8, n_head=2, block_size=8, steps=3, num_samples=3)


def run_quiet(config, data_path, Model):
    with contextlib.redirect_stdout(io.StringIO()):
        return gpt.run(config, load_docs(data_path), Model)


@pytest.fixture(scope='module')
def scalar_tiny(data_path):
    return run_quiet(TINY, data_path, gpt.ScalarGPT)


# fp64 is the twin, bit for bit under the simulator. fp32 and tc round differently from
# step 0 on; over three steps their losses stay within these (docs/gpu.md).
PRECISION_RTOL = {'fp64': 0.0, 'fp32': 1e-5, 'tc': 1e-2}


@pytest.mark.parametrize('precision', list(PRECISION_RTOL))
def test_cuda_tier_end_to_end(precision, data_path, scalar_tiny):
    from functools import partial

    from gpu.tier import CudaGPT
    result = run_quiet(TINY, data_path, partial(CudaGPT, precision=precision))
    worst = rel_diff(result['losses'], scalar_tiny['losses']).max()
    assert worst <= PRECISION_RTOL[precision], worst
    if precision == 'fp64':
        assert result['samples'] == scalar_tiny['samples']
    else:
        assert worst > 0          # really another precision


@pytest.mark.parametrize('fused', [True, False])
def test_cuda_fp64_batches_are_the_scalar_spec(fused, data_path):
    """fp64 trains fused at this size (gpu/fused.py), and op by op for larger models:
    both are the scalar spec at batch 3, every loss and sample."""
    from functools import partial

    from gpu.tier import CudaGPT
    config = GPTConfig(**dict(TINY.asdict(), batch_size=3, steps=2))
    expected = run_quiet(config, data_path, gpt.ScalarGPT)
    result = run_quiet(config, data_path, partial(CudaGPT, fused=fused))
    assert result['model'].fused == fused
    assert result['losses'] == expected['losses']
    assert result['samples'] == expected['samples']


@pytest.mark.parametrize('fused, launches', [(True, 1), (False, 53)])
def test_cuda_launches_per_chunk_of_steps(fused, launches):
    """Three steps in one call into the model: one launch in all when fused; op by op,
    each step launches every kernel again."""
    from gpu.launch import recording
    from gpu.tier import CudaGPT
    config = GPTConfig(**dict(TINY.asdict(), batch_size=2))
    model = CudaGPT(config, 27, fused=fused)
    tokens = np.array([[[26, 4, 12, 26, 0, 0, 0, 0, 0], [26, 0, 13, 13, 26, 0, 0, 0, 0]]] * 3)
    lengths = np.array([[3, 4]] * 3)
    with recording() as launched:
        losses = model.train_steps(tokens, lengths, 0)
    assert len(launched) == (launches if fused else 3 * launches)
    assert len(losses) == 3 and losses[2] < losses[0]


def test_fused_step_is_for_fp64_and_small_models():
    from gpu import tuning
    from gpu.tier import CudaGPT
    assert CudaGPT(TINY, 27).fused
    assert not CudaGPT(TINY, 27, precision='fp32').fused
    wide = GPTConfig(**dict(TINY.asdict(), n_embd=96, n_head=2))      # 12 * 96^2 > 100,000
    assert CudaGPT(wide, 27).num_params > tuning.FUSED_MAX_PARAMS
    assert not CudaGPT(wide, 27).fused
    with pytest.raises(ValueError, match='fp64 only'):
        CudaGPT(TINY, 27, precision='tc', fused=True)


@pytest.mark.skipif(HAS_GPU, reason='this machine has a GPU: there is no error to see')
def test_cuda_tier_without_gpu_or_simulator_is_a_clear_error(data_path):
    env = dict(os.environ, NUMBA_ENABLE_CUDASIM='0', PYTHONPATH=str(ROOT))
    p = subprocess.run([sys.executable, '-m', 'microgpt', '--tier', 'cuda', '--data',
                        str(data_path)], env=env, capture_output=True, text=True)
    assert p.returncode == 2 and p.stdout == '' and 'Traceback' not in p.stderr
    assert p.stderr.strip().splitlines() == [
        "microgpt: error: tier 'cuda' is not available here: no CUDA GPU here "
        "(NUMBA_ENABLE_CUDASIM=1 runs the cuda tier on numba's CPU simulator, slowly)"]


def test_bench_gemm_script_runs_and_checks_every_kernel():
    p = subprocess.run([sys.executable, str(ROOT / 'scripts' / 'bench_gemm.py'), '--sizes', '17',
                        '--repeats', '1', '--no-model-shapes'], capture_output=True, text=True,
                       env=dict(os.environ, PYTHONPATH=str(ROOT)), timeout=600)
    assert p.returncode == 0, p.stderr
    rows = [line for line in p.stdout.splitlines() if line.startswith('| gemm_')]
    assert [r.split(' | ')[0:2] for r in rows] == [
        ['| gemm_naive', 'float32'], ['| gemm_tiled', 'float32'], ['| gemm_tiled', 'float64'],
        ['| gemm_tc', 'float32']]
