"""The twin's kernels as numba-compiled loops: what jit/ runs.

Same contract as microgpt/twin/numpy_kernels.py, their reference, and the same floats
bit for bit: every sum runs in the order its docstring there gives (a forward sum left
to right from 0.0, as the reference's sum(); a gradient's contributions in the scalar
graph's order, model.backward_orders), every `**` is libm's pow (jit/exact.py), and
nothing is compiled with fastmath. Loops keep the innermost index contiguous and
independent where the order allows it (a whole row updated per term), so LLVM can
vectorize them without reassociating any sum; the products hold a block of 4 rows x
BLOCK_COLUMNS sums in vector registers while their terms go by (add_scaled_rows).
"""
import math

import numpy as np
from llvmlite import ir
from numba import njit, prange, types
from numba.core import cgutils
from numba.extending import intrinsic
from numba.np.arrayobj import make_array, populate_array

from microgpt.twin import model
from microgpt.twin.numpy_kernels import to_device, to_host, zeros  # noqa: F401  (numpy's memory)

from .exact import (inverse_root_candidates, inverse_root_cubed_candidates,
                    inverse_square_candidates, power, powers, reciprocal_candidates,
                    root_candidates, square_candidates)
from .tuning import (ADAM_SLICE, BLOCK_COLUMNS, CHUNK_MIN_WIDTH, DOT_MAX_ROWS, MAX_CHUNKS,
                     PACK_MIN_ROWS, PARALLEL_MIN_MACS, PART_MIN_ROWS, STEP_PARTS)

# Never fastmath: it would reorder sums. error_model='numpy' drops the zero-division
# check Python semantics would put in every float division (it blocks vectorization);
# it changes no result, since nothing here divides by zero.
kernel = njit(cache=True, error_model='numpy')
# The products' parallel drivers: each thread takes a slice of the outputs and computes
# every one of them whole, its terms in order, so that no sum depends on the thread
# count (the test runs one thread against two and compares every bit).
parallel_kernel = njit(cache=True, error_model='numpy', parallel=True)
# The products' block loops and microkernel, inlined into their callers by numba, so that
# a block width passed as a constant is one in the compiled loop.
block_loop = njit(inline='always', error_model='numpy')


@intrinsic
def register_block(typingctx):
    """A (4, BLOCK_COLUMNS) float64 array on the stack of the function it is inlined
    into, for a block of a product's sums. Stack memory, unlike np.empty's, is known to
    LLVM not to alias any other array, so the block's sums stay in vector registers while
    the terms go by; an np.empty block was loaded and stored at every term. Only for the
    block loops (inlined into their kernel): the array must not outlive the call."""
    block = types.Array(types.float64, 2, 'C')

    def codegen(context, builder, signature, args):
        f64 = context.get_value_type(types.float64)
        data = cgutils.alloca_once(builder, f64, size=4 * BLOCK_COLUMNS)
        intp = lambda x: context.get_constant(types.intp, x)  # noqa: E731
        array = make_array(block)(context, builder)
        populate_array(array, data=data, shape=[intp(4), intp(BLOCK_COLUMNS)],
                       strides=[intp(8 * BLOCK_COLUMNS), intp(8)], itemsize=intp(8),
                       meminfo=None)
        return array._getvalue()
    return block(), codegen


@kernel
def chunks(size):
    """How many slices a parallel product cuts `size` outputs into (jit/tuning.py)."""
    return max(1, min(MAX_CHUNKS, size // CHUNK_MIN_WIDTH))


# Slice c of `count` near-equal slices of range(size), as the model cuts its parts.
part_rows = kernel(model.part_rows)


@kernel
def zero(x):
    x[:] = 0.0


@kernel
def pack_batch(batch, tokens, lengths):
    r = 0
    for b in range(tokens.shape[0]):
        n = lengths[b]
        for t in range(n):
            batch.tokens[r] = tokens[b, t]
            batch.targets[r] = tokens[b, t + 1]
            batch.pos[r] = t
            batch.ndoc[r] = n
            batch.later[r] = t > 0
            r += 1
    return r


@kernel
def step_parts(ndoc, n, hp):
    """In how many parts numba's threads run a training step's rows 0..n-1 at once (the
    model's train_step): STEP_PARTS, or as many as it has documents, if fewer, where
    the step has PART_MIN_ROWS rows a part and every product of its rows is small
    enough to run on one thread (a part runs its products whole: no parallel region
    within a part); else one."""
    widest = max(4 * hp.n_embd, hp.vocab_size) * hp.n_embd   # a row's largest product
    if n < STEP_PARTS * PART_MIN_ROWS or n * widest >= PARALLEL_MIN_MACS:
        return 1
    docs = t = 0
    while t < n and docs < STEP_PARTS:
        docs += 1
        t += ndoc[t]
    return docs


@kernel
def encoder_forward(out, tokens, pos, wte, wpe):
    n, C = out.shape
    for t in range(n):
        tok, p = tokens[t], pos[t]
        for c in range(C):
            out[t, c] = wte[tok, c] + wpe[p, c]


@kernel
def encoder_backward(dwte, dwpe, dout, tokens, pos):
    n, C = dout.shape
    for t in range(n - 1, -1, -1):        # rows last to first
        tok, p = tokens[t], pos[t]
        for c in range(C):
            dwte[tok, c] += dout[t, c]
            dwpe[p, c] += dout[t, c]


@block_loop
def mean_squares(inp, inv_C, eps):
    """(n,) each row's mean square plus eps, rmsnorm's a: its squares summed in order."""
    n, C = inp.shape
    a = np.empty(n)
    for t in range(n):
        ms = 0.0
        for c in range(C):
            ms += inp[t, c] * inp[t, c]
        a[t] = ms * inv_C + eps
    return a


@kernel
def rmsnorm_forward(out, rstd, inp, inv_C, eps):
    n, C = inp.shape
    a = mean_squares(inp, inv_C, eps)
    powers(rstd, a, inverse_root_candidates, -0.5)       # a ** -0.5, every row at once
    for t in range(n):
        s = rstd[t]
        for c in range(C):
            out[t, c] = inp[t, c] * s


@kernel
def rmsnorm_backward(dinp, dout, inp, rstd, inv_C, eps):
    n, C = inp.shape
    a = mean_squares(inp, inv_C, eps)                    # as the forward computed it
    a_pow = np.empty(n)
    powers(a_pow, a, inverse_root_cubed_candidates, -1.5)   # a ** -1.5, every row at once
    for t in range(n):
        s = rstd[t]
        ds = 0.0
        for c in range(C - 1, -1, -1):
            ds += inp[t, c] * dout[t, c]
        dsq = inv_C * ((-0.5 * a_pow[t]) * ds)
        for c in range(C):
            d = dinp[t, c] + s * dout[t, c]
            d = d + inp[t, c] * dsq
            dinp[t, c] = d + inp[t, c] * dsq


@kernel
def matmul_forward(out, inp, w):
    """out (n,O) = inp (n,I) @ w.T; each output summed over i in order, from 0.0.

    With DOT_MAX_ROWS rows or more, a block of outputs at a time through a transposed
    copy of that block's weights (matmul_forward_columns); with fewer (sampling's one
    row), one dot product per output, as the copy would cost more than the product.
    Large products split the outputs' columns among threads.
    """
    n, I = inp.shape
    O = w.shape[0]
    if n * O * I < PARALLEL_MIN_MACS:
        matmul_forward_slice(out, inp, w, 0, O)
    else:
        matmul_forward_parallel(out, inp, w)


@kernel
def matmul_forward_slice(out, inp, w, o0, o1):
    """out[:, o0:o1]."""
    if inp.shape[0] < DOT_MAX_ROWS:
        matmul_forward_dots(out, inp, w, o0, o1)
    else:
        matmul_forward_columns(out, inp, w, o0, o1)


@kernel
def matmul_forward_dots(out, inp, w, o0, o1):
    """out[:, o0:o1] a dot product per output, four outputs at a time (four independent
    sums, each over i in order, from 0.0)."""
    n, I = inp.shape
    for t in range(n):
        o = o0
        while o + 4 <= o1:
            a0 = a1 = a2 = a3 = 0.0
            for i in range(I):
                x = inp[t, i]
                a0 += w[o, i] * x
                a1 += w[o + 1, i] * x
                a2 += w[o + 2, i] * x
                a3 += w[o + 3, i] * x
            out[t, o], out[t, o + 1], out[t, o + 2], out[t, o + 3] = a0, a1, a2, a3
            o += 4
        for o in range(o, o1):            # the last outputs, one at a time
            acc = 0.0
            for i in range(I):
                acc += w[o, i] * inp[t, i]
            out[t, o] = acc


@kernel
def matmul_forward_columns(out, inp, w, o0, o1):
    """out[:, o0:o1], a block of 4 rows x BLOCK_COLUMNS outputs at a time, their sums
    held in registers over all I terms: every output adds its terms one by one, in order
    of i, from 0.0. Each block of outputs first copies its weights, transposed, into a
    panel (I, BLOCK_COLUMNS), so that the microkernel reads them row by row; every row
    block then reuses the panel. A last, narrower block (lm_head's 27 outputs: 16 + 11)
    runs at the full width too, its panel's extra columns zero weights: the microkernel
    at its constant width, and only the block's own outputs stored (the default's
    lm_head forward: 0.53 against 0.78 us)."""
    full = in_column_blocks(o0, o1)
    panel = np.empty((inp.shape[1], BLOCK_COLUMNS))
    forward_columns(out, inp, w, panel, o0, full, BLOCK_COLUMNS)
    if full < o1:
        forward_columns(out, inp, w, panel, full, o1, o1 - full)


@kernel
def in_column_blocks(c0, c1):
    """Where the whole blocks of columns c0..c1 end. The products run their whole blocks
    with the width BLOCK_COLUMNS, a constant in the inlined block loops, which lets LLVM
    unroll the microkernel and keep its block in vector registers; then the rest of the
    columns, if any, as one narrower block."""
    return c0 + (c1 - c0) // BLOCK_COLUMNS * BLOCK_COLUMNS


@block_loop
def forward_columns(out, inp, w, panel, c0, c1, width):
    """out[:, c0:c1] in blocks of `width` columns (c1 - c0 a multiple of it, or less
    than BLOCK_COLUMNS: one block, computed BLOCK_COLUMNS wide)."""
    n, I = inp.shape
    acc = register_block()
    for c in range(c0, c1, width):
        for i in range(I):
            for j in range(width):
                panel[i, np.uint64(j)] = w[np.uint64(c + j), i]
            for j in range(width, BLOCK_COLUMNS):
                panel[i, j] = 0.0
        for t in range(0, n, 4):
            rows = min(4, n - t)
            acc[:] = 0.0
            for i in range(I):
                x0, x1, x2, x3 = block_scalars(inp, t, rows, i)
                add_scaled_rows(acc, BLOCK_COLUMNS, panel, i, 0, x0, x1, x2, x3)
            store_block(out, acc, t, rows, c, width)


@block_loop
def block_scalars(x, t, rows, j):
    """x[t:t+rows, j], four of them, 0.0 past the block's rows."""
    return (x[t, j], x[t + 1, j] if rows > 1 else 0.0, x[t + 2, j] if rows > 2 else 0.0,
            x[t + 3, j] if rows > 3 else 0.0)


@block_loop
def row_scalars(x, t, j, count):
    """x[t, j:j+count], four of them, 0.0 past count."""
    return (x[t, j], x[t, j + 1] if count > 1 else 0.0, x[t, j + 2] if count > 2 else 0.0,
            x[t, j + 3] if count > 3 else 0.0)


@block_loop
def add_scaled_rows(acc, width, v, row, c, a0, a1, a2, a3):
    """acc[r, :width] += v[row, c:c+width] * a_r for the 4 rows r: the products'
    microkernel. One multiplication and one addition per element, so that every
    element's sum goes on term by term, in the order of the calls. (v and row, not a
    view v[row]: a view made in the loop would cost a reference count each time, and
    keep the block out of registers.) The column index is unsigned, so that numba adds
    no check for a negative index, which kept LLVM from vectorizing the loop: 21 against
    11 GFLOP/s on one core at 512 x 512 x 512."""
    for j in range(width):
        x = v[row, np.uint64(c + j)]
        acc[0, j] += x * a0
        acc[1, j] += x * a1
        acc[2, j] += x * a2
        acc[3, j] += x * a3


@block_loop
def add_rows_scaled(acc, width, v, row0, row1, row2, row3, c, a0, a1, a2, a3):
    """add_scaled_rows with a row of v for each of the 4 rows: acc[r, :width] +=
    v[row_r, c:c+width] * a_r."""
    for j in range(width):
        k = np.uint64(c + j)
        acc[0, j] += v[row0, k] * a0
        acc[1, j] += v[row1, k] * a1
        acc[2, j] += v[row2, k] * a2
        acc[3, j] += v[row3, k] * a3


@intrinsic
def copy_row(typingctx, dst, dst_row, dst_col, src, src_row, src_col):
    """dst[dst_row, dst_col:+BLOCK_COLUMNS] = src[src_row, src_col:+BLOCK_COLUMNS], as one
    vector load and store (C-contiguous float64 arrays; no bounds check). Copied element
    by element, the block's row went to the stack as scalars, and the microkernel's
    wide loads of it waited for each of them (a store that cannot be forwarded)."""
    if not all(a.layout == 'C' and a.dtype == types.float64 for a in (dst, src)):
        return None                     # no typing: a compile error, never a wrong copy
    vector = ir.VectorType(ir.DoubleType(), BLOCK_COLUMNS)

    def codegen(context, builder, signature, args):
        d, dr, dc, s, sr, sc = args
        dty, sty = signature.args[0], signature.args[3]
        dptr = cgutils.get_item_pointer(context, builder, dty, make_array(dty)(context, builder, d),
                                        [dr, dc], wraparound=False)
        sptr = cgutils.get_item_pointer(context, builder, sty, make_array(sty)(context, builder, s),
                                        [sr, sc], wraparound=False)
        row = builder.load(builder.bitcast(sptr, vector.as_pointer()), align=8)
        builder.store(row, builder.bitcast(dptr, vector.as_pointer()), align=8)
        return context.get_dummy_value()
    return types.none(dst, dst_row, dst_col, src, src_row, src_col), codegen


@block_loop
def load_block(acc, src, t, rows, c, width):
    """acc[:rows, :width] = src[t:t+rows, c:c+width]."""
    for r in range(rows):
        if width == BLOCK_COLUMNS:
            copy_row(acc, r, 0, src, t + r, c)
        else:
            for j in range(width):
                acc[r, j] = src[t + r, c + j]


@block_loop
def store_block(dst, acc, t, rows, c, width):
    """dst[t:t+rows, c:c+width] = acc[:rows, :width]."""
    for r in range(rows):
        if width == BLOCK_COLUMNS:
            copy_row(dst, t + r, c, acc, r, 0)
        else:
            for j in range(width):
                dst[t + r, c + j] = acc[r, j]


@parallel_kernel
def matmul_forward_parallel(out, inp, w):
    count = chunks(out.shape[1])
    for c in prange(count):
        o0, o1 = part_rows(out.shape[1], c, count)
        matmul_forward_slice(out, inp, w, o0, o1)


@kernel
def matmul_backward_input(dinp, dout, w, order, which):
    """dinp[t, i] += w[o, i] * dout[t, o] for o in order[which[t]], one o after another.
    Large products split dinp's columns among threads."""
    n, I = dinp.shape
    blocks = row_blocks(which, n)                 # once, for every slice of dinp
    if n * w.shape[0] * I < PARALLEL_MIN_MACS:
        matmul_backward_input_slice(dinp, dout, w, order, which, blocks, 0, I)
    else:
        matmul_backward_input_parallel(dinp, dout, w, order, which, blocks)


@kernel
def target_logit_aside(dtargets, dlogits, targets):
    for t in range(targets.shape[0]):
        dtargets[t] = dlogits[t, targets[t]]
        dlogits[t, targets[t]] = 0.0


@kernel
def target_logit_backward(dinp, dlogits, w, targets, dtargets):
    n, I = dinp.shape
    for t in range(n):
        g, row = dtargets[t], targets[t]
        for i in range(I):
            dinp[t, i] += w[row, i] * g
        dlogits[t, row] = g


@kernel
def matmul_backward_weight(dw, dout, inp, o0, o1):
    """dw[o, i] += dout[t, o] * inp[t, i] for t from the last row to the first, for the
    rows o0 <= o < o1 of dw. Large products split them among threads."""
    if inp.shape[0] * (o1 - o0) * dw.shape[1] < PARALLEL_MIN_MACS:
        matmul_backward_weight_slice(dw, dout, inp, o0, o1)
    else:
        matmul_backward_weight_parallel(dw, dout, inp, o0, o1)


@kernel
def matmul_backward_input_slice(dinp, dout, w, order, which, blocks, i0, i1):
    """dinp[:, i0:i1], a block of up to 4 rows that take the same order (row_blocks) x
    BLOCK_COLUMNS elements at a time, held in registers while they hear from every
    output: each element hears from the outputs one after another, in its row's order.
    With PACK_MIN_ROWS rows or more, each block of columns first copies its slab of the
    weights, w[:, c:c+BLOCK_COLUMNS], into a contiguous panel that every row block
    reads, rather than a piece of each of the O rows of w, a row apart."""
    panel = np.empty((w.shape[0] if dinp.shape[0] >= PACK_MIN_ROWS else 0, BLOCK_COLUMNS))
    for c in range(i0, i1, BLOCK_COLUMNS):
        width = min(BLOCK_COLUMNS, i1 - c)
        src, src_c = columns_source(panel, w, c, width)
        if width == BLOCK_COLUMNS:
            backward_input_block(dinp, dout, src, src_c, order, which, blocks, c)
        else:
            backward_input_rest(dinp, dout, src, src_c, order, which, blocks, c, width)


@block_loop
def columns_source(panel, m, c, width):
    """Where to read m[:, c:c+width] from, as (array, first column): a copy in panel
    (made here) if the panel has rows, else m itself; m itself too when those columns
    are its whole rows (width 16, BLOCK_COLUMNS: they are contiguous already)."""
    if panel.shape[0] == 0 or width == m.shape[1]:
        return m, c
    for r in range(m.shape[0]):
        for j in range(width):
            panel[r, j] = m[r, c + j]
    return panel, 0


@kernel
def backward_input_block(dinp, dout, src, src_c, order, which, blocks, c):
    """dinp[:, c:c+BLOCK_COLUMNS] from src[:, src_c:src_c+BLOCK_COLUMNS] (the weights'
    columns, or their panel). A kernel of its own, not inlined into its caller: inlined
    beside the panel's copy, the block of sums was stored at every term (the compiled
    code showed it) and the product ran at 17 GFLOP/s. On its own, one thread, 224 rows,
    512 x 2048 and 2048 x 512: 32-34 GFLOP/s, against 24-27 unpacked."""
    backward_input_rows(dinp, dout, src, src_c, order, which, blocks, c, BLOCK_COLUMNS)


@kernel
def backward_input_rest(dinp, dout, src, src_c, order, which, blocks, c, width):
    """backward_input_block for a last block narrower than BLOCK_COLUMNS."""
    backward_input_rows(dinp, dout, src, src_c, order, which, blocks, c, width)


@kernel
def row_blocks(which, n):
    """The row blocks of a backward_input product, for each row t that starts one:
    blocks[t] = rows, the block's rows t..t+rows-1 taking the same order (the same
    `which`: the model's orders are distinct rows), or -rows, each its own; the next
    block starts after them. Four rows of one order where there are, else the next
    four rows (fewer at the end), whatever their orders."""
    blocks = np.zeros(n, dtype=np.int64)
    t = 0
    while t < n:
        rows = 1
        while rows < 4 and t + rows < n and which[t + rows] == which[t]:
            rows += 1
        if rows < 4 and t + rows < n:         # not four of one order: the next four
            rows = -min(4, n - t)
        blocks[t] = rows
        t += abs(rows)
    return blocks


@block_loop
def backward_input_rows(dinp, dout, src, src_c, order, which, blocks, c, width):
    """dinp[:, c:c+width] += the outputs' gradients times src[:, src_c:src_c+width], a
    block of rows at a time (blocks, row_blocks), each in its rows' order: one output's
    row of src for the block, or, where the rows take different orders, a row each."""
    n = dinp.shape[0]
    O = order.shape[1]
    acc = register_block()
    t = 0
    while t < n:
        rows = abs(blocks[t])
        load_block(acc, dinp, t, rows, c, width)
        if blocks[t] > 0:
            k = which[t]
            for r in range(O):
                o = order[k, r]
                d0, d1, d2, d3 = block_scalars(dout, t, rows, o)
                add_scaled_rows(acc, width, src, o, src_c, d0, d1, d2, d3)
        else:
            k0, k1 = which[t], which[t + 1]                         # 2 rows at least
            k2 = which[t + 2] if rows > 2 else k0                   # k0 past the rows
            k3 = which[t + 3] if rows > 3 else k0
            for r in range(O):
                o0, o1, o2, o3 = order[k0, r], order[k1, r], order[k2, r], order[k3, r]
                add_rows_scaled(acc, width, src, o0, o1, o2, o3, src_c,
                                dout[t, o0], dout[t + 1, o1],
                                dout[t + 2, o2] if rows > 2 else 0.0,
                                dout[t + 3, o3] if rows > 3 else 0.0)
        store_block(dinp, acc, t, rows, c, width)
        t += rows


@kernel
def matmul_backward_weight_slice(dw, dout, inp, o0, o1):
    """dw[o0:o1], a block of 4 rows x BLOCK_COLUMNS elements at a time, held in registers
    while they take their terms from the last row of inp to the first. With
    PACK_MIN_ROWS rows or more, each block of columns first copies its slab of inp,
    inp[:, c:c+BLOCK_COLUMNS], into a contiguous panel that every block of dw reads."""
    n, I = inp.shape
    panel = np.empty((n if n >= PACK_MIN_ROWS else 0, BLOCK_COLUMNS))
    for c in range(0, I, BLOCK_COLUMNS):
        width = min(BLOCK_COLUMNS, I - c)
        src, src_c = columns_source(panel, inp, c, width)
        if width == BLOCK_COLUMNS:
            backward_weight_block(dw, dout, src, src_c, o0, o1, c)
        else:
            backward_weight_rest(dw, dout, src, src_c, o0, o1, c, width)


@kernel
def backward_weight_block(dw, dout, src, src_c, o0, o1, c):
    """dw[o0:o1, c:c+BLOCK_COLUMNS] from src[:, src_c:src_c+BLOCK_COLUMNS] (inp's
    columns, or their panel); a kernel of its own, as backward_input_block."""
    backward_weight_rows(dw, dout, src, src_c, o0, o1, c, BLOCK_COLUMNS)


@kernel
def backward_weight_rest(dw, dout, src, src_c, o0, o1, c, width):
    """backward_weight_block for a last block narrower than BLOCK_COLUMNS."""
    backward_weight_rows(dw, dout, src, src_c, o0, o1, c, width)


@block_loop
def backward_weight_rows(dw, dout, src, src_c, o0, o1, c, width):
    """dw[o0:o1, c:c+width] += dout[t, o] * src[t, src_c:src_c+width], t from the last
    row to the first, 4 rows of dw at a time."""
    n = src.shape[0]
    acc = register_block()
    for o in range(o0, o1, 4):
        rows = min(4, o1 - o)
        load_block(acc, dw, o, rows, c, width)
        for t in range(n - 1, -1, -1):
            d0, d1, d2, d3 = row_scalars(dout, t, o, rows)
            add_scaled_rows(acc, width, src, t, src_c, d0, d1, d2, d3)
        store_block(dw, acc, o, rows, c, width)


@parallel_kernel
def matmul_backward_input_parallel(dinp, dout, w, order, which, blocks):
    count = chunks(dinp.shape[1])
    for c in prange(count):
        i0, i1 = part_rows(dinp.shape[1], c, count)
        matmul_backward_input_slice(dinp, dout, w, order, which, blocks, i0, i1)


@parallel_kernel
def matmul_backward_weight_parallel(dw, dout, inp, o0, o1):
    count = chunks(o1 - o0)
    for c in prange(count):
        a, b = part_rows(o1 - o0, c, count)
        matmul_backward_weight_slice(dw, dout, inp, o0 + a, o0 + b)


@kernel
def attention_forward(out, att_exps, qkv, pos, a, n, n_head, scale):
    """Causal attention of query rows a..a+n-1, at positions pos (n,), over the key
    rows of their document up to their own: row r's key position s is row r-pos+s.
    The heads' weights are spread over their columns (w), so that the weighted sum of
    the values runs over all C columns at once, each column's sum in order of s. Every
    row's exps first, then all their totals' reciprocals at once (exact.powers), then
    the weighted sums."""
    C = qkv.shape[1] // 3
    hd = C // n_head
    totals = np.empty(n * n_head)         # (n,H) each row's and head's total of exps
    for i in range(n):
        r, p = a + i, pos[i]
        r0 = r - p                        # the document's first row
        for h in range(n_head):
            hs = h * hd
            e = att_exps[h, r]
            mx = -math.inf
            for s in range(p + 1):
                acc = 0.0
                for j in range(hd):
                    acc += qkv[r, hs + j] * qkv[r0 + s, C + hs + j]
                e[s] = acc * scale
                mx = max(mx, e[s])
            total = 0.0
            for s in range(p + 1):
                e[s] = math.exp(e[s] - mx)
                total += e[s]
            totals[i * n_head + h] = total
    inv_totals = np.empty(n * n_head)
    powers(inv_totals, totals, reciprocal_candidates, -1.0)
    w = np.empty((att_exps.shape[2], C))  # (T,C) the query row's weights, by column
    for i in range(n):
        r, p = a + i, pos[i]
        r0 = r - p
        for h in range(n_head):
            hs = h * hd
            e = att_exps[h, r]
            inv_total = inv_totals[i * n_head + h]
            for s in range(p + 1):
                weight = e[s] * inv_total
                for j in range(hd):
                    w[s, hs + j] = weight
        for c in range(C):
            out[r, c] = 0.0
        for s in range(p + 1):
            for c in range(C):
                out[r, c] += w[s, c] * qkv[r0 + s, 2 * C + c]


@kernel
def attention_backward(dqkv, dout, qkv, att_exps, pos, a, n, n_head, scale):
    """The query rows a+n-1 .. a (whole documents), last to first (keys and values hear
    from the last query first); for each, every head's gradients of its weights and
    logits, spread over the head's columns (w, dl), then the q, k and v updates over all
    C columns at once: each element hears from the same terms in the same order as head
    by head. First, all rows' totals of exps, and their powers at once (exact.powers)."""
    C = qkv.shape[1] // 3
    hd = C // n_head
    T = att_exps.shape[2]
    totals = np.empty(n * n_head)         # (n,H) the forward's totals, as it summed them
    for i in range(n):
        r, p = a + i, pos[i]
        for h in range(n_head):
            total = 0.0
            for s in range(p + 1):
                total += att_exps[h, r, s]
            totals[i * n_head + h] = total
    inv_totals, inv_squares = np.empty(n * n_head), np.empty(n * n_head)
    powers(inv_totals, totals, reciprocal_candidates, -1.0)
    powers(inv_squares, totals, inverse_square_candidates, -2.0)
    dw = np.empty(T)                      # d(weights) of one head
    w = np.empty((T, C))                  # the weights, by column
    dl = np.empty((T, C))                 # d(q . k), the logit before its scale, by column
    for i in range(n - 1, -1, -1):
        r, p = a + i, pos[i]
        r0 = r - p
        for h in range(n_head):
            hs = h * hd
            inv_total = inv_totals[i * n_head + h]
            dinv = -inv_squares[i * n_head + h]    # the local gradient of total ** -1
            dtotal = 0.0
            for s in range(p, -1, -1):
                acc = 0.0
                for j in range(hd - 1, -1, -1):
                    acc += qkv[r0 + s, 2 * C + hs + j] * dout[r, hs + j]
                dw[s] = acc
                dtotal += dinv * (att_exps[h, r, s] * acc)
            for s in range(p, -1, -1):
                e = att_exps[h, r, s]
                dlogit = scale * (e * (inv_total * dw[s] + dtotal))
                weight = e * inv_total    # the forward's weight
                for j in range(hd):
                    dl[s, hs + j] = dlogit
                    w[s, hs + j] = weight
        for s in range(p, -1, -1):        # a loop for each of q, k and v: in one, LLVM
            k = r0 + s                    # could not tell the three rows apart
            for c in range(C):
                dqkv[r, c] += qkv[k, C + c] * dl[s, c]
            for c in range(C):
                dqkv[k, C + c] += qkv[r, c] * dl[s, c]
            for c in range(C):
                dqkv[k, 2 * C + c] += w[s, c] * dout[r, c]


@kernel
def relu_forward(out, inp):
    n, C = inp.shape
    for t in range(n):
        for c in range(C):
            out[t, c] = inp[t, c] if inp[t, c] > 0 else 0.0


@kernel
def relu_backward(dinp, dout, inp):
    n, C = inp.shape
    for t in range(n):
        for c in range(C):
            if inp[t, c] > 0:
                dinp[t, c] += dout[t, c]


@kernel
def residual_forward(out, inp1, inp2):
    n, C = out.shape
    for t in range(n):
        for c in range(C):
            out[t, c] = inp1[t, c] + inp2[t, c]


@kernel
def residual_backward(dinp1, dinp2, dout):
    n, C = dout.shape
    for t in range(n):
        for c in range(C):
            dinp1[t, c] += dout[t, c]
            dinp2[t, c] += dout[t, c]


@kernel
def softmax_forward(probs, exps, logits, inv_temperature):
    n, V = logits.shape
    totals = np.empty(n)
    for t in range(n):
        mx = -math.inf
        for c in range(V):
            mx = max(mx, logits[t, c] * inv_temperature)
        total = 0.0
        for c in range(V):
            exps[t, c] = math.exp(logits[t, c] * inv_temperature - mx)
            total += exps[t, c]
        totals[t] = total
    inv_totals = np.empty(n)
    powers(inv_totals, totals, reciprocal_candidates, -1.0)     # every row's at once
    for t in range(n):
        inv_total = inv_totals[t]
        for c in range(V):
            probs[t, c] = exps[t, c] * inv_total


@kernel
def crossentropy_forward(losses, loss, probs, targets, ndoc, inv_batch):
    n = losses.shape[0]
    total = 0.0
    t = 0
    while t < n:                          # the batch's documents, in order
        m = ndoc[t]
        doc = 0.0
        for u in range(t, t + m):
            losses[u] = -math.log(probs[u, targets[u]])
            doc += losses[u]
        total += doc * (1 / m)
        t += m
    loss[0] = total * inv_batch


@kernel
def crossentropy_softmax_backward(dlogits, exps, targets, ndoc, inv_batch):
    n, V = exps.shape
    totals = np.empty(n)                  # the forward's exps' totals, as it summed them
    for t in range(n):
        total = 0.0
        for c in range(V):
            total += exps[t, c]
        totals[t] = total
    inv_totals, inv_squares = np.empty(n), np.empty(n)
    powers(inv_totals, totals, reciprocal_candidates, -1.0)     # every row's at once
    powers(inv_squares, totals, inverse_square_candidates, -2.0)
    for t in range(n):
        inv_total = inv_totals[t]
        target = targets[t]
        dp = (1 / (exps[t, target] * inv_total)) * -((1 / ndoc[t]) * inv_batch)
        dtotal = -inv_squares[t] * (exps[t, target] * dp)
        for c in range(V):
            de = inv_total * dp + dtotal if c == target else dtotal
            dlogits[t, c] += exps[t, c] * de


@kernel
def adam_update(params, grads, m, v, lr, beta1, beta2, one_minus_beta1, one_minus_beta2,
                bias1, bias2, eps):
    """Adam over the flat arrays: on the calling thread, or, from 2 * ADAM_SLICE
    parameters up, in slices shared among numba's threads. Each parameter's update is
    its own, so no result depends on the slicing."""
    count = min(MAX_CHUNKS, params.shape[0] // ADAM_SLICE)
    if count < 2:
        adam_update_slice(params, grads, m, v, lr, beta1, beta2, one_minus_beta1,
                          one_minus_beta2, bias1, bias2, eps)
    else:
        adam_update_parallel(params, grads, m, v, lr, beta1, beta2, one_minus_beta1,
                             one_minus_beta2, bias1, bias2, eps, count)


@parallel_kernel
def adam_update_parallel(params, grads, m, v, lr, beta1, beta2, one_minus_beta1,
                         one_minus_beta2, bias1, bias2, eps, count):
    for c in prange(count):
        a, b = part_rows(params.shape[0], c, count)
        adam_update_slice(params[a:b], grads[a:b], m[a:b], v[a:b], lr, beta1, beta2,
                          one_minus_beta1, one_minus_beta2, bias1, bias2, eps)


@kernel
def adam_update_slice(params, grads, m, v, lr, beta1, beta2, one_minus_beta1,
                      one_minus_beta2, bias1, bias2, eps):
    """The reference's loop body per parameter, with g ** 2 and v_hat ** 0.5 libm's pow.
    pow may return one of two floats (exact.square_candidates, root_candidates): a
    vectorized pass computes the new v and the new parameter with each, keeps them where
    the two agree (all but 25 of the 4,192 parameters at step 301 of the default run),
    and leaves the rest undecided; adam_settle then asks pow where it has to."""
    n = params.shape[0]
    undecided = np.empty(n, dtype=np.bool_)
    count = 0
    for i in range(n):
        g = grads[i]
        m[i] = beta1 * m[i] + one_minus_beta1 * g
        sq, sq_alt = square_candidates(g)
        v_new = beta2 * v[i] + one_minus_beta2 * sq
        root, root_alt = root_candidates(v_new / bias2)
        update = lr * (m[i] / bias1)
        p_new = params[i] - update / (root + eps)
        sure = ((v_new == beta2 * v[i] + one_minus_beta2 * sq_alt)
                & (p_new == params[i] - update / (root_alt + eps)))
        undecided[i] = not sure
        count += not sure
        v[i] = v_new if sure else v[i]
        params[i] = p_new if sure else params[i]
    if count:
        for i in range(n):
            if undecided[i]:
                v[i], params[i] = adam_settle(params[i], grads[i], m[i], v[i], lr, beta2,
                                              one_minus_beta2, bias1, bias2, eps)


@kernel
def adam_settle(p, g, m, v, lr, beta2, one_minus_beta2, bias1, bias2, eps):
    """One parameter's new v and value (m already updated), from both candidates of
    each pow, calling pow where they give different results."""
    sq, sq_alt = square_candidates(g)
    v_new = beta2 * v + one_minus_beta2 * sq
    if v_new != beta2 * v + one_minus_beta2 * sq_alt:
        v_new = beta2 * v + one_minus_beta2 * power(g, 2.0)
    root, root_alt = root_candidates(v_new / bias2)
    update = lr * (m / bias1)
    p_new = p - update / (root + eps)
    if p_new != p - update / (root_alt + eps):
        p_new = p - update / (power(v_new / bias2, 0.5) + eps)
    return v_new, p_new
