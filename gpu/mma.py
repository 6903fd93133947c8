"""The tensor cores' warp-wide product, mma.sync.aligned.m16n8k16 (float16 in, float32
accumulate), for numba.cuda kernels: on a GPU, the PTX instruction itself; under numba's
simulator, an emulation that moves the operands between lanes exactly as the
instruction's fragment layout says, so a kernel that loads its fragments wrongly gets a
wrong product in CI too.

A warp multiplies D (16x8) = A (16x16) @ B (16x8) + C. Lane l (g = l // 4, t = l % 4)
holds, as pairs of float16 packed in 32 bits (the first in the low half):
    a0 = A[g, 2t:2t+2]    a1 = A[g+8, 2t:2t+2]    a2 = A[g, 2t+8:2t+10]    a3 = A[g+8, 2t+8:2t+10]
    b0 = B[2t:2t+2, g]    b1 = B[2t+8:2t+10, g]
and the float32 outputs, c and d alike:
    c0, c1 = C[g, 2t], C[g, 2t+1]    c2, c3 = C[g+8, 2t], C[g+8, 2t+1]
(PTX ISA, "Matrix Fragments for mma.m16n8k16 with floating point type".)
"""
import numpy as np
from llvmlite import ir
from numba import config, cuda, types
from numba.cuda.extending import intrinsic

M, N, K = 16, 8, 16                      # the instruction's shape: fixed, not a tunable
MMA_PTX = ("mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 "
           "{$0, $1, $2, $3}, {$4, $5, $6, $7}, {$8, $9}, {$10, $11, $12, $13};")


@intrinsic
def _pack_f16x2(typingctx, lo, hi):
    """Two float16 in one 32-bit register, `lo` in the low half (PTX `mov.b32 {lo, hi}`)."""
    if lo != types.float16 or hi != types.float16:
        return None

    def codegen(context, builder, sig, args):
        asm = ir.InlineAsm(ir.FunctionType(ir.IntType(32), [ir.IntType(16)] * 2),
                           "mov.b32 $0, {$1, $2};", "=r,h,h")
        return builder.call(asm, args)
    return types.uint32(types.float16, types.float16), codegen


@intrinsic
def _mma_m16n8k16(typingctx, a0, a1, a2, a3, b0, b1, c0, c1, c2, c3):
    """(d0, d1, d2, d3) of the calling lane: one mma.sync of the whole warp."""
    if any(x != types.uint32 for x in (a0, a1, a2, a3, b0, b1)) or \
            any(x != types.float32 for x in (c0, c1, c2, c3)):
        return None
    out = types.UniTuple(types.float32, 4)

    def codegen(context, builder, sig, args):
        f32 = ir.FloatType()
        asm = ir.InlineAsm(ir.FunctionType(ir.LiteralStructType([f32] * 4),
                                           [ir.IntType(32)] * 6 + [f32] * 4),
                           MMA_PTX, "=f,=f,=f,=f,r,r,r,r,r,r,f,f,f,f", side_effect=True)
        d = builder.call(asm, args)
        return context.make_tuple(builder, out, [builder.extract_value(d, i) for i in range(4)])
    return out(*([types.uint32] * 6 + [types.float32] * 4)), codegen


# The emulation: each lane leaves its registers in shared memory, waits for the block,
# and reads the operands of its own outputs from the lanes that hold them. Every warp of
# the block must call it together (gemm_tc's warps do): it waits with syncthreads.
def _halves(r):
    """The two float16 of a packed register, low half first."""
    return np.array([r], dtype=np.uint32).view(np.float16)


def _pack_f16x2_emulated(lo, hi):
    return np.array([lo, hi], dtype=np.float16).view(np.uint32)[0]


def _a(regs, w, row, k):
    """A[row, k] from the lane and register the layout puts it in."""
    lane = (row % 8) * 4 + (k % 8) // 2
    return _halves(regs[w, lane, (row // 8) + 2 * (k // 8)])[k % 2]


def _b(regs, w, k, col):
    lane = col * 4 + (k % 8) // 2
    return _halves(regs[w, lane, 4 + k // 8])[k % 2]


@cuda.jit(device=True)
def _mma_m16n8k16_emulated(a0, a1, a2, a3, b0, b1, c0, c1, c2, c3):
    regs = cuda.shared.array((32, 32, 6), np.uint32)     # (warps, lanes, registers)
    w, lane = cuda.threadIdx.x // 32, cuda.threadIdx.x % 32
    for i, r in enumerate((a0, a1, a2, a3, b0, b1)):
        regs[w, lane, i] = r
    cuda.syncthreads()
    g, t = lane // 4, lane % 4
    d = []
    for i, c in enumerate((c0, c1, c2, c3)):
        row, col = g + 8 * (i // 2), 2 * t + i % 2
        acc = np.float32(c)
        for k in range(K):       # float16 products are exact in float32
            acc += np.float32(_a(regs, w, row, k)) * np.float32(_b(regs, w, k, col))
        d.append(acc)
    cuda.syncthreads()                                   # all read before the next call
    return tuple(d)


if config.ENABLE_CUDASIM:
    pack_f16x2, mma_m16n8k16 = _pack_f16x2_emulated, _mma_m16n8k16_emulated
else:
    pack_f16x2, mma_m16n8k16 = _pack_f16x2, _mma_m16n8k16
