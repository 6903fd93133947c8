"""GEMM kernels on numba.cuda: C = op(A) @ op(B) (+ C), op being identity or transpose.

Training needs three products: A·B, A·Bᵀ (the forward, x @ W.T) and Aᵀ·B (a weight's
gradient, dy.T @ x). Each kernel is specialized, at compile time, for its element type,
its product form and its tile sizes (gpu/tuning.py), and cached.

- gemm_naive: one thread per output element; the reference the others are tested on.
- gemm_tiled: shared-memory tiles with register blocking. A block stages a TILE_M x
  TILE_K slice of op(A) and a TILE_K x TILE_N slice of op(B) in shared memory; each
  thread keeps a THREAD_M x THREAD_N block of C in a cuda.local.array and updates it from
  registers. Edge tiles are padded with zeros, so any shape works. float64 or float32.
- gemm_tc: the tensor cores. Operands are rounded to float16 as they are staged in
  shared memory; each warp computes a 16 x 16 tile of C as two mma.sync m16n8k16
  (gpu/mma.py) per K-step of 16, accumulating in float32.

Each output is accumulated over k in increasing order, from zero: in float64, the order
of the reference's sums, each product and sum rounded (gpu/nvvm.py keeps NVVM from
fusing them).
"""
from functools import lru_cache

import numpy as np
from numba import cuda
from numba.core import types

from . import mma, tuning
from .launch import launch

# gemm_tc: a warp's tile of C, two mma.sync m16n8k16 side by side
WARP_M, WARP_N = mma.M, 2 * mma.N
FORMS = {'nn': (False, False), 'nt': (False, True), 'tn': (True, False)}
NUMBA_TYPES = {np.dtype(np.float64): types.float64, np.dtype(np.float32): types.float32}


def _shapes(C, A, B, trans_a, trans_b):
    """(M, N, K) of C = op(A) @ op(B), or a ValueError that says which shapes clash."""
    M, K = (A.shape[1], A.shape[0]) if trans_a else A.shape
    K2, N = (B.shape[1], B.shape[0]) if trans_b else B.shape
    if K != K2 or C.shape != (M, N):
        raise ValueError(f"gemm: op(A) {M}x{K} @ op(B) {K2}x{N} does not fit C {C.shape}")
    return M, N, K


def _keyed(factory):
    """A kernel factory whose kernels carry `key`: the call that builds them again
    (gpu/launch.py)."""
    @lru_cache(maxsize=None)
    def build(*args):
        made = factory(*args)
        kernel = made[0] if isinstance(made, tuple) else made
        kernel.key = (factory.__name__,) + args
        return made
    build.__name__ = factory.__name__
    return build


@_keyed
def _naive_kernel(dtype, trans_a, trans_b):
    """dtype: a NumPy type's name, 'float64' or 'float32'."""
    nt = NUMBA_TYPES[np.dtype(dtype)]

    @cuda.jit
    def gemm_naive(C, A, B, M, N, K, accumulate):
        i, j = cuda.grid(2)
        if i < M and j < N:
            # The sum in C's type, from zero. Not C[i, j] * 0: without accumulate, C may
            # be fresh device memory, whose NaNs stay NaN times zero.
            acc = cuda.local.array(1, nt)
            acc[0] = 0
            for k in range(K):
                a = A[k, i] if trans_a else A[i, k]
                b = B[j, k] if trans_b else B[k, j]
                acc[0] += a * b
            if accumulate:
                C[i, j] += acc[0]
            else:
                C[i, j] = acc[0]
    return gemm_naive


@_keyed
def _tiled_kernel(dtype, trans_a, trans_b, tile_m, tile_n, tile_k, thread_m, thread_n):
    nt = NUMBA_TYPES[np.dtype(dtype)]
    threads_x, threads_y = tile_n // thread_n, tile_m // thread_m
    n_threads = threads_x * threads_y

    @cuda.jit
    def gemm_tiled(C, A, B, M, N, K, accumulate):
        sA = cuda.shared.array((tile_m, tile_k), nt)     # op(A) rows x k
        sB = cuda.shared.array((tile_k, tile_n), nt)     # k x op(B) columns
        acc = cuda.local.array((thread_m, thread_n), nt)
        a_reg = cuda.local.array(thread_m, nt)
        b_reg = cuda.local.array(thread_n, nt)
        tx, ty = cuda.threadIdx.x, cuda.threadIdx.y
        tid = ty * threads_x + tx
        row0, col0 = cuda.blockIdx.y * tile_m, cuda.blockIdx.x * tile_n
        for i in range(thread_m):
            for j in range(thread_n):
                acc[i, j] = 0
        for k0 in range(0, K, tile_k):
            # stage the slices, all threads cooperating; zeros beyond the edges
            for e in range(tid, tile_m * tile_k, n_threads):
                i, kk = e // tile_k, e % tile_k
                gi, gk = row0 + i, k0 + kk
                if gi < M and gk < K:
                    sA[i, kk] = A[gk, gi] if trans_a else A[gi, gk]
                else:
                    sA[i, kk] = 0
            for e in range(tid, tile_k * tile_n, n_threads):
                kk, j = e // tile_n, e % tile_n
                gk, gj = k0 + kk, col0 + j
                if gk < K and gj < N:
                    sB[kk, j] = B[gj, gk] if trans_b else B[gk, gj]
                else:
                    sB[kk, j] = 0
            cuda.syncthreads()
            for kk in range(tile_k):
                # thread (ty, tx) owns rows ty + i*threads_y and columns tx + j*threads_x:
                # strided, so neighbouring threads read neighbouring shared words
                for i in range(thread_m):
                    a_reg[i] = sA[ty + i * threads_y, kk]
                for j in range(thread_n):
                    b_reg[j] = sB[kk, tx + j * threads_x]
                for i in range(thread_m):
                    for j in range(thread_n):
                        acc[i, j] += a_reg[i] * b_reg[j]
            cuda.syncthreads()
        for i in range(thread_m):
            gi = row0 + ty + i * threads_y
            for j in range(thread_n):
                gj = col0 + tx + j * threads_x
                if gi < M and gj < N:
                    if accumulate:
                        C[gi, gj] += acc[i, j]
                    else:
                        C[gi, gj] = acc[i, j]
    return gemm_tiled, (threads_x, threads_y)


@_keyed
def _tc_kernel(trans_a, trans_b, warps_m, warps_n):
    f16, f32 = types.float16, types.float32
    block_m, block_n = warps_m * WARP_M, warps_n * WARP_N
    n_threads = 32 * warps_m * warps_n
    mma_n, mma_k = mma.N, mma.K              # as constants: module attributes are not

    @cuda.jit
    def gemm_tc(C, A, B, M, N, K, accumulate):
        sA = cuda.shared.array((block_m, mma_k), f16)    # op(A) rows x k, float16
        sB = cuda.shared.array((mma_k, block_n), f16)    # k x op(B) columns, float16
        acc = cuda.local.array(8, f32)        # this lane's c0..c3 of the warp's 2 mmas
        tid = cuda.threadIdx.x
        warp, lane = tid // 32, tid % 32
        g, t = lane // 4, lane % 4            # the fragment layout's groupID, thread in group
        wr, wc = (warp // warps_n) * WARP_M, (warp % warps_n) * WARP_N
        row0, col0 = cuda.blockIdx.y * block_m, cuda.blockIdx.x * block_n
        for e in range(8):
            acc[e] = 0
        for k0 in range(0, K, mma_k):
            for e in range(tid, block_m * mma_k, n_threads):
                i, kk = e // mma_k, e % mma_k
                gi, gk = row0 + i, k0 + kk
                if gi < M and gk < K:
                    sA[i, kk] = f16(A[gk, gi] if trans_a else A[gi, gk])
                else:
                    sA[i, kk] = f16(0)
            for e in range(tid, mma_k * block_n, n_threads):
                kk, j = e // block_n, e % block_n
                gk, gj = k0 + kk, col0 + j
                if gk < K and gj < N:
                    sB[kk, j] = f16(B[gj, gk] if trans_b else B[gk, gj])
                else:
                    sB[kk, j] = f16(0)
            cuda.syncthreads()
            # the warp's A fragment (16 x 16), then one mma per 8 columns of its tile
            a0 = mma.pack_f16x2(sA[wr + g, 2 * t], sA[wr + g, 2 * t + 1])
            a1 = mma.pack_f16x2(sA[wr + g + 8, 2 * t], sA[wr + g + 8, 2 * t + 1])
            a2 = mma.pack_f16x2(sA[wr + g, 2 * t + 8], sA[wr + g, 2 * t + 9])
            a3 = mma.pack_f16x2(sA[wr + g + 8, 2 * t + 8], sA[wr + g + 8, 2 * t + 9])
            for h in range(WARP_N // mma_n):
                col = wc + h * mma_n + g
                b0 = mma.pack_f16x2(sB[2 * t, col], sB[2 * t + 1, col])
                b1 = mma.pack_f16x2(sB[2 * t + 8, col], sB[2 * t + 9, col])
                d = mma.mma_m16n8k16(a0, a1, a2, a3, b0, b1, acc[4 * h], acc[4 * h + 1],
                                     acc[4 * h + 2], acc[4 * h + 3])
                for e in range(4):
                    acc[4 * h + e] = d[e]
            cuda.syncthreads()
        for h in range(WARP_N // mma_n):      # the outputs' layout: c0..c3 per mma
            for e in range(4):
                gi = row0 + wr + g + 8 * (e // 2)
                gj = col0 + wc + h * mma_n + 2 * t + e % 2
                if gi < M and gj < N:
                    if accumulate:
                        C[gi, gj] += acc[4 * h + e]
                    else:
                        C[gi, gj] = acc[4 * h + e]
    return gemm_tc, n_threads, (block_m, block_n)


def _blocks(n, per_block):
    return (n + per_block - 1) // per_block


def gemm(C, A, B, form='nn', kernel='tiled', accumulate=False, stream=0):
    """C = op(A) @ op(B), or C += ... with accumulate; form 'nn', 'nt' or 'tn' says which
    operand is transposed. `kernel` is 'naive', 'tiled' or 'tc'. Device arrays in."""
    trans_a, trans_b = FORMS[form]
    M, N, K = _shapes(C, A, B, trans_a, trans_b)
    if M == 0 or N == 0:
        return C
    if kernel == 'naive':
        b = tuning.NAIVE_BLOCK
        launch(_naive_kernel(C.dtype.name, trans_a, trans_b), (_blocks(M, b), _blocks(N, b)),
               (b, b), C, A, B, M, N, K, accumulate, stream=stream)
    elif kernel == 'tiled':
        if C.dtype != A.dtype or C.dtype != B.dtype:
            raise TypeError(f"gemm_tiled: one element type for A, B and C, got "
                            f"{A.dtype}, {B.dtype}, {C.dtype}")
        t = tuning
        k, threads = _tiled_kernel(C.dtype.name, trans_a, trans_b, t.TILE_M, t.TILE_N,
                                   t.TILE_K, t.THREAD_M, t.THREAD_N)
        launch(k, (_blocks(N, t.TILE_N), _blocks(M, t.TILE_M)), threads,
               C, A, B, M, N, K, accumulate, stream=stream)
    elif kernel == 'tc':
        if C.dtype != np.float32:
            raise TypeError(f"gemm_tc accumulates in float32; C is {C.dtype}")
        k, threads, (bm, bn) = _tc_kernel(trans_a, trans_b, tuning.WARPS_M, tuning.WARPS_N)
        launch(k, (_blocks(N, bn), _blocks(M, bm)), threads, C, A, B, M, N, K, accumulate,
               stream=stream)
    else:
        raise ValueError(f"gemm: unknown kernel {kernel!r}: naive, tiled or tc")
    return C
