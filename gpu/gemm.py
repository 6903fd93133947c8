"""GEMM kernels on numba.cuda: C = op(A) @ op(B) (+ C), op being identity or transpose.

Training needs three products: A·B, A·Bᵀ (the forward, x @ W.T) and Aᵀ·B (a weight's
gradient, dy.T @ x). Each kernel is specialized, at compile time, for its element type,
its product form and its tile sizes (gpu/tuning.py), and cached.

- gemm_naive: one thread per output element; the reference the others are tested on.
- gemm_tiled: shared-memory tiles with register blocking. A block stages a TILE_M x
  TILE_K slice of op(A) and a TILE_K x TILE_N slice of op(B) in shared memory; each
  thread keeps a THREAD_M x THREAD_N block of C in a cuda.local.array and updates it from
  registers. Edge tiles are padded with zeros, so any shape works. float64 or float32.
- gemm_tc: the data flow of the tensor cores' WMMA API, in plain numba: operands
  rounded to float16 as they are staged in shared memory, products accumulated in
  float32, each warp computing 16 x 16 fragments of C over K-steps of 16.

Each output is accumulated over k in increasing order, from zero: in float64, the order
of the reference's sums (up to the fused multiply-adds the GPU compiler may form).
"""
from functools import lru_cache

import numpy as np
from numba import cuda
from numba.core import types

from . import tuning

FORMS = {'nn': (False, False), 'nt': (False, True), 'tn': (True, False)}
NUMBA_TYPES = {np.dtype(np.float64): types.float64, np.dtype(np.float32): types.float32}


def _shapes(C, A, B, trans_a, trans_b):
    """(M, N, K) of C = op(A) @ op(B), or a ValueError that says which shapes clash."""
    M, K = (A.shape[1], A.shape[0]) if trans_a else A.shape
    K2, N = (B.shape[1], B.shape[0]) if trans_b else B.shape
    if K != K2 or C.shape != (M, N):
        raise ValueError(f"gemm: op(A) {M}x{K} @ op(B) {K2}x{N} does not fit C {C.shape}")
    return M, N, K


@lru_cache(maxsize=None)
def _naive_kernel(dtype, trans_a, trans_b):
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


@lru_cache(maxsize=None)
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


@lru_cache(maxsize=None)
def _tc_kernel(trans_a, trans_b, warps_m, warps_n, frag):
    f16, f32 = types.float16, types.float32
    block_m, block_n = warps_m * frag, warps_n * frag
    n_threads = 32 * warps_m * warps_n
    per_lane = frag * frag // 32                  # outputs of a fragment per lane: 8
    lanes_per_row = frag // per_lane              # 2 lanes share a fragment row

    @cuda.jit
    def gemm_tc(C, A, B, M, N, K, accumulate):
        sA = cuda.shared.array((block_m, frag), f16)   # load_matrix_sync, A fragments
        sB = cuda.shared.array((frag, block_n), f16)   # load_matrix_sync, B fragments
        acc = cuda.local.array(per_lane, f32)           # this lane's share of the fragment
        tid = cuda.threadIdx.x
        warp, lane = tid // 32, tid % 32
        wm, wn = warp // warps_n, warp % warps_n
        r = lane // lanes_per_row                        # fragment row of this lane
        c0 = (lane % lanes_per_row) * per_lane           # its first fragment column
        row0, col0 = cuda.blockIdx.y * block_m, cuda.blockIdx.x * block_n
        for e in range(per_lane):
            acc[e] = 0
        for k0 in range(0, K, frag):
            for e in range(tid, block_m * frag, n_threads):
                i, kk = e // frag, e % frag
                gi, gk = row0 + i, k0 + kk
                if gi < M and gk < K:
                    sA[i, kk] = f16(A[gk, gi] if trans_a else A[gi, gk])
                else:
                    sA[i, kk] = f16(0)
            for e in range(tid, frag * block_n, n_threads):
                kk, j = e // block_n, e % block_n
                gk, gj = k0 + kk, col0 + j
                if gk < K and gj < N:
                    sB[kk, j] = f16(B[gj, gk] if trans_b else B[gk, gj])
                else:
                    sB[kk, j] = f16(0)
            cuda.syncthreads()
            # mma_sync: the warp's 16 x 16 x 16 product; float16 products are exact
            # in float32, and accumulate there
            for kk in range(frag):
                a = f32(sA[wm * frag + r, kk])
                for e in range(per_lane):
                    acc[e] += a * f32(sB[kk, wn * frag + c0 + e])
            cuda.syncthreads()
        gi = row0 + wm * frag + r                        # store_matrix_sync
        for e in range(per_lane):
            gj = col0 + wn * frag + c0 + e
            if gi < M and gj < N:
                if accumulate:
                    C[gi, gj] += acc[e]
                else:
                    C[gi, gj] = acc[e]
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
        _naive_kernel(C.dtype.type, trans_a, trans_b)[
            (_blocks(M, b), _blocks(N, b)), (b, b), stream](C, A, B, M, N, K, accumulate)
    elif kernel == 'tiled':
        if C.dtype != A.dtype or C.dtype != B.dtype:
            raise TypeError(f"gemm_tiled: one element type for A, B and C, got "
                            f"{A.dtype}, {B.dtype}, {C.dtype}")
        t = tuning
        k, threads = _tiled_kernel(C.dtype.type, trans_a, trans_b, t.TILE_M, t.TILE_N,
                                   t.TILE_K, t.THREAD_M, t.THREAD_N)
        k[(_blocks(N, t.TILE_N), _blocks(M, t.TILE_M)), threads, stream](
            C, A, B, M, N, K, accumulate)
    elif kernel == 'tc':
        if C.dtype != np.float32:
            raise TypeError(f"gemm_tc accumulates in float32; C is {C.dtype}")
        k, threads, (bm, bn) = _tc_kernel(trans_a, trans_b, tuning.WARPS_M, tuning.WARPS_N,
                                          tuning.FRAGMENT)
        k[(_blocks(N, bn), _blocks(M, bm)), threads, stream](C, A, B, M, N, K, accumulate)
    else:
        raise ValueError(f"gemm: unknown kernel {kernel!r}: naive, tiled or tc")
    return C
