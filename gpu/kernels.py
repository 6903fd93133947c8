"""The twin's kernels on numba.cuda: what the cuda tier runs.

Same contract as microgpt/twin/numpy_kernels.py, their reference: forward kernels
overwrite `out`, backward kernels accumulate into d-prefixed outputs. The forward
products go through gpu/gemm.py (each output summed over k in order, from zero); the
rest are small kernels, one thread per element or per row (the model is tiny: a row is
at most 4*n_embd wide). Each op's body is a device function over its work items, which
its kernel launches (and gpu/fused.py runs in one block). No two items write the same
element, so none needs atomics and every result is deterministic. In fp64 every sum
keeps the scalar graph's order, as numpy_kernels.py sets out, and every `**` is
math.pow: under numba's simulator (where math.pow, math.exp and math.log are the
host's libm) the tier is bit-identical to the reference. On a GPU the fp64 kernels are
compiled without FMA contraction (gpu/nvvm.py), but exp, log and pow come from CUDA's
libdevice, whose last bits differ from glibc's (docs/gpu.md). Literals are written in
the arrays' type (`f = x.dtype.type`), so fp32 kernels compute in float32 only. Each
CudaKernels method checks nothing the model has not already shaped; it picks the launch
size (gpu/tuning.py) and launches.
"""
import math

import numpy as np
from numba import cuda

from . import tuning
from .gemm import gemm
from .launch import launch


def _blocks(n):
    return ((n + tuning.THREADS - 1) // tuning.THREADS, tuning.THREADS)


# Each op's body loops over its work items i = start, start + stride, ... : a kernel runs
# it with its grid (cuda.grid(1), cuda.gridsize(1)), the fused step (gpu/fused.py) with
# one block's threads (threadIdx.x, blockDim.x). Its kernel follows it.

@cuda.jit(device=True)
def zero_body(start, stride, x):
    for i in range(start, x.shape[0], stride):
        x[i] = 0


@cuda.jit
def zero_kernel(x):
    zero_body(cuda.grid(1), cuda.gridsize(1), x)


@cuda.jit(device=True)
def pack_batch_body(start, stride, tokens_out, targets, pos, ndoc, later, tokens, lengths):
    for b in range(start, tokens.shape[0], stride):     # one item per document
        r = 0
        for d in range(b):            # its first row: the rows of the documents before it
            r += lengths[d]
        n = lengths[b]
        for t in range(n):
            tokens_out[r + t] = tokens[b, t]
            targets[r + t] = tokens[b, t + 1]
            pos[r + t] = t
            ndoc[r + t] = n
            later[r + t] = t > 0


@cuda.jit
def pack_batch_kernel(tokens_out, targets, pos, ndoc, later, tokens, lengths):
    pack_batch_body(cuda.grid(1), cuda.gridsize(1), tokens_out, targets, pos, ndoc, later,
                    tokens, lengths)


@cuda.jit(device=True)
def encoder_forward_body(start, stride, out, tokens, pos, wte, wpe):
    n, C = out.shape
    for i in range(start, n * C, stride):
        t, c = i // C, i % C
        out[t, c] = wte[tokens[t], c] + wpe[pos[t], c]


@cuda.jit
def encoder_forward_kernel(out, tokens, pos, wte, wpe):
    encoder_forward_body(cuda.grid(1), cuda.gridsize(1), out, tokens, pos, wte, wpe)


@cuda.jit(device=True)
def encoder_backward_body(start, stride, dwte, dwpe, dout, tokens, pos):
    n, C = dout.shape
    for c in range(start, C, stride):     # one item per column: a repeated token is no race
        for t in range(n - 1, -1, -1):    # rows last to first
            dwte[tokens[t], c] += dout[t, c]
            dwpe[pos[t], c] += dout[t, c]


@cuda.jit
def encoder_backward_kernel(dwte, dwpe, dout, tokens, pos):
    encoder_backward_body(cuda.grid(1), cuda.gridsize(1), dwte, dwpe, dout, tokens, pos)


@cuda.jit(device=True)
def rmsnorm_forward_body(start, stride, out, rstd, inp, inv_C, eps):
    n, C = inp.shape
    f = inp.dtype.type
    for t in range(start, n, stride):
        ms = f(0)
        for c in range(C):
            ms += inp[t, c] * inp[t, c]
        s = math.pow(ms * inv_C + eps, f(-0.5))
        rstd[t] = s
        for c in range(C):
            out[t, c] = inp[t, c] * s


@cuda.jit
def rmsnorm_forward_kernel(out, rstd, inp, inv_C, eps):
    rmsnorm_forward_body(cuda.grid(1), cuda.gridsize(1), out, rstd, inp, inv_C, eps)


@cuda.jit(device=True)
def rmsnorm_backward_body(start, stride, dinp, dout, inp, rstd, inv_C, eps):
    n, C = inp.shape
    f = inp.dtype.type
    for t in range(start, n, stride):
        s = rstd[t]
        ds = f(0)
        for c in range(C - 1, -1, -1):
            ds += inp[t, c] * dout[t, c]
        ms = f(0)
        for c in range(C):
            ms += inp[t, c] * inp[t, c]
        dsq = inv_C * ((f(-0.5) * math.pow(ms * inv_C + eps, f(-1.5))) * ds)
        for c in range(C):
            d = dinp[t, c] + s * dout[t, c]
            d = d + inp[t, c] * dsq
            dinp[t, c] = d + inp[t, c] * dsq


@cuda.jit
def rmsnorm_backward_kernel(dinp, dout, inp, rstd, inv_C, eps):
    rmsnorm_backward_body(cuda.grid(1), cuda.gridsize(1), dinp, dout, inp, rstd, inv_C, eps)


@cuda.jit(device=True)
def matmul_forward_body(start, stride, out, inp, w):
    """out[t, o] = sum over i of inp[t, i] * w[o, i], in order from zero: gemm_naive's
    sum, for the fused step (the kernels run gpu/gemm.py's GEMMs)."""
    n, O = out.shape
    f = out.dtype.type
    for e in range(start, n * O, stride):
        t, o = e // O, e % O
        acc = f(0)
        for i in range(inp.shape[1]):
            acc += inp[t, i] * w[o, i]
        out[t, o] = acc


@cuda.jit(device=True)
def matmul_backward_input_body(start, stride, dinp, dout, w, order, which):
    """dinp[t, i] += w[o, i] * dout[t, o] for o in order[which[t]], in that order."""
    n, I = dinp.shape
    for e in range(start, n * I, stride):
        t, i = e // I, e % I
        d = dinp[t, i]
        k = which[t]
        for r in range(order.shape[1]):
            o = order[k, r]
            d += w[o, i] * dout[t, o]
        dinp[t, i] = d


@cuda.jit
def matmul_backward_input_kernel(dinp, dout, w, order, which):
    matmul_backward_input_body(cuda.grid(1), cuda.gridsize(1), dinp, dout, w, order, which)


@cuda.jit(device=True)
def target_logit_aside_body(start, stride, dtargets, dlogits, targets):
    for t in range(start, targets.shape[0], stride):
        dtargets[t] = dlogits[t, targets[t]]
        dlogits[t, targets[t]] = 0


@cuda.jit
def target_logit_aside_kernel(dtargets, dlogits, targets):
    target_logit_aside_body(cuda.grid(1), cuda.gridsize(1), dtargets, dlogits, targets)


@cuda.jit(device=True)
def target_logit_backward_body(start, stride, dinp, dlogits, w, targets, dtargets):
    n, I = dinp.shape
    for e in range(start, n * I, stride):
        t, i = e // I, e % I
        dinp[t, i] += w[targets[t], i] * dtargets[t]
        if i == 0:
            dlogits[t, targets[t]] = dtargets[t]


@cuda.jit
def target_logit_backward_kernel(dinp, dlogits, w, targets, dtargets):
    target_logit_backward_body(cuda.grid(1), cuda.gridsize(1), dinp, dlogits, w, targets,
                               dtargets)


@cuda.jit(device=True)
def matmul_backward_weight_body(start, stride, dw, dout, inp, o0):
    """dw[o, i] += inp[t, i] * dout[t, o0 + o] for t from the last row to the first
    (dw: rows o0 .. o0 + dw.shape[0] - 1 of the weight's gradient)."""
    O, I = dw.shape
    for e in range(start, O * I, stride):
        o, i = e // I, e % I
        d = dw[o, i]
        for t in range(inp.shape[0] - 1, -1, -1):
            d += dout[t, o0 + o] * inp[t, i]
        dw[o, i] = d


@cuda.jit
def matmul_backward_weight_kernel(dw, dout, inp, o0):
    matmul_backward_weight_body(cuda.grid(1), cuda.gridsize(1), dw, dout, inp, o0)


@cuda.jit(device=True)
def attention_forward_body(start, stride, out, att_exps, qkv, pos, a, n, n_head, scale):
    """Per (head, query row r = a+i at position p = pos[i]): its weights over the key
    rows r-p .. r of its document (key position s is row r-p+s), and its output."""
    C = qkv.shape[1] // 3
    hd = C // n_head
    f = qkv.dtype.type
    for i in range(start, n_head * n, stride):
        h, r, p = i // n, a + i % n, pos[i % n]
        r0 = r - p
        hs = h * hd
        e = att_exps[h, r]
        mx = f(-math.inf)
        for s in range(p + 1):
            acc = f(0)
            for j in range(hd):
                acc += qkv[r, hs + j] * qkv[r0 + s, C + hs + j]
            e[s] = acc * scale
            mx = max(mx, e[s])
        total = f(0)
        for s in range(p + 1):
            e[s] = math.exp(e[s] - mx)
            total += e[s]
        inv_total = math.pow(total, f(-1))
        for j in range(hd):
            acc = f(0)
            for s in range(p + 1):
                acc += (e[s] * inv_total) * qkv[r0 + s, 2 * C + hs + j]
            out[r, hs + j] = acc


@cuda.jit
def attention_forward_kernel(out, att_exps, qkv, pos, a, n, n_head, scale):
    attention_forward_body(cuda.grid(1), cuda.gridsize(1), out, att_exps, qkv, pos, a, n,
                           n_head, scale)


@cuda.jit(device=True)
def attention_dweight(qkv, dout, r, key_row, hs, hd):
    """The gradient of query row r's weight on key_row: v[key_row] . dout[r], its terms
    last to first."""
    C = qkv.shape[1] // 3
    acc = qkv.dtype.type(0)
    for j in range(hd - 1, -1, -1):
        acc += qkv[key_row, 2 * C + hs + j] * dout[r, hs + j]
    return acc


@cuda.jit(device=True)
def attention_row_totals(e, qkv, dout, r, r0, p, hs, hd):
    """Query row r's total ** -1 and the gradient of its total, as the scalar graph
    computes them from the forward's exps e (positions 0..p)."""
    f = qkv.dtype.type
    total = f(0)                      # the forward's exps' total, as it summed it
    for s in range(p + 1):
        total += e[s]
    inv_total = math.pow(total, f(-1))
    dinv = -math.pow(total, f(-2))
    dtotal = f(0)
    for s in range(p, -1, -1):
        dtotal += dinv * (e[s] * attention_dweight(qkv, dout, r, r0 + s, hs, hd))
    return inv_total, dtotal


@cuda.jit(device=True)
def attention_backward_body(start, stride, dqkv, dout, qkv, att_exps, pos, a, n, n_head,
                            scale):
    """Items 0 .. H*n-1: per (head, query row), dq. Items H*n .. 2*H*n-1: per (head, key
    row), dk and dv, from the query rows of its document at its position and later,
    last first. Each recomputes a query row's totals (attention_row_totals) rather than
    reading another item's: the same floats, and no item waits for another."""
    C = qkv.shape[1] // 3
    hd = C // n_head
    for i in range(start, 2 * n_head * n, stride):
        h, k = (i // n) % n_head, i % n
        hs = h * hd
        if i < n_head * n:            # query row r = a+k at position p
            r, p = a + k, pos[k]
            e = att_exps[h, r]
            inv_total, dtotal = attention_row_totals(e, qkv, dout, r, r - p, p, hs, hd)
            for s in range(p, -1, -1):
                dw = attention_dweight(qkv, dout, r, r - p + s, hs, hd)
                dl = scale * (e[s] * (inv_total * dw + dtotal))
                for j in range(hd):
                    dqkv[r, hs + j] += qkv[r - p + s, C + hs + j] * dl
        else:                         # key row a+k at position s: its column in the weights
            s = pos[k]
            last = k                  # the document's last row
            while last + 1 < n and pos[last + 1] == pos[last] + 1:
                last += 1
            for r in range(a + last, a + k - 1, -1):
                p = pos[r - a]
                e = att_exps[h, r]
                inv_total, dtotal = attention_row_totals(e, qkv, dout, r, r - p, p, hs, hd)
                dw = attention_dweight(qkv, dout, r, a + k, hs, hd)
                dl = scale * (e[s] * (inv_total * dw + dtotal))
                w = e[s] * inv_total
                for j in range(hd):
                    dqkv[a + k, C + hs + j] += qkv[r, hs + j] * dl
                    dqkv[a + k, 2 * C + hs + j] += w * dout[r, hs + j]


@cuda.jit
def attention_backward_kernel(dqkv, dout, qkv, att_exps, pos, a, n, n_head, scale):
    attention_backward_body(cuda.grid(1), cuda.gridsize(1), dqkv, dout, qkv, att_exps, pos,
                            a, n, n_head, scale)


@cuda.jit(device=True)
def relu_forward_body(start, stride, out, inp):
    n, C = inp.shape
    zero = inp.dtype.type(0)
    for i in range(start, n * C, stride):
        t, c = i // C, i % C
        out[t, c] = inp[t, c] if inp[t, c] > zero else zero


@cuda.jit
def relu_forward_kernel(out, inp):
    relu_forward_body(cuda.grid(1), cuda.gridsize(1), out, inp)


@cuda.jit(device=True)
def relu_backward_body(start, stride, dinp, dout, inp):
    n, C = inp.shape
    zero = inp.dtype.type(0)
    for i in range(start, n * C, stride):
        t, c = i // C, i % C
        if inp[t, c] > zero:
            dinp[t, c] += dout[t, c]


@cuda.jit
def relu_backward_kernel(dinp, dout, inp):
    relu_backward_body(cuda.grid(1), cuda.gridsize(1), dinp, dout, inp)


@cuda.jit(device=True)
def residual_forward_body(start, stride, out, inp1, inp2):
    n, C = out.shape
    for i in range(start, n * C, stride):
        t, c = i // C, i % C
        out[t, c] = inp1[t, c] + inp2[t, c]


@cuda.jit
def residual_forward_kernel(out, inp1, inp2):
    residual_forward_body(cuda.grid(1), cuda.gridsize(1), out, inp1, inp2)


@cuda.jit(device=True)
def residual_backward_body(start, stride, dinp1, dinp2, dout):
    n, C = dout.shape
    for i in range(start, n * C, stride):
        t, c = i // C, i % C
        dinp1[t, c] += dout[t, c]
        dinp2[t, c] += dout[t, c]


@cuda.jit
def residual_backward_kernel(dinp1, dinp2, dout):
    residual_backward_body(cuda.grid(1), cuda.gridsize(1), dinp1, dinp2, dout)


@cuda.jit(device=True)
def softmax_forward_body(start, stride, probs, exps, logits, inv_temperature):
    n, V = logits.shape
    f = logits.dtype.type
    for t in range(start, n, stride):
        mx = f(-math.inf)
        for c in range(V):
            mx = max(mx, logits[t, c] * inv_temperature)
        total = f(0)
        for c in range(V):
            exps[t, c] = math.exp(logits[t, c] * inv_temperature - mx)
            total += exps[t, c]
        inv_total = math.pow(total, f(-1))
        for c in range(V):
            probs[t, c] = exps[t, c] * inv_total


@cuda.jit
def softmax_forward_kernel(probs, exps, logits, inv_temperature):
    softmax_forward_body(cuda.grid(1), cuda.gridsize(1), probs, exps, logits, inv_temperature)


@cuda.jit(device=True)
def crossentropy_forward_body(start, stride, losses, probs, targets):
    for t in range(start, losses.shape[0], stride):
        losses[t] = -math.log(probs[t, targets[t]])


@cuda.jit
def crossentropy_forward_kernel(losses, probs, targets):
    crossentropy_forward_body(cuda.grid(1), cuda.gridsize(1), losses, probs, targets)


@cuda.jit(device=True)
def batch_mean_body(start, stride, loss, losses, ndoc, inv_batch):
    """One item: a few hundred losses, summed in order by one thread."""
    f = losses.dtype.type
    if start == 0:
        n = losses.shape[0]
        total = f(0)
        t = 0
        while t < n:                  # the batch's documents, in order
            m = ndoc[t]
            doc = f(0)
            for u in range(t, t + m):
                doc += losses[u]
            total += doc * (f(1) / f(m))
            t += m
        loss[0] = total * inv_batch


@cuda.jit
def batch_mean_kernel(loss, losses, ndoc, inv_batch):
    batch_mean_body(cuda.grid(1), cuda.gridsize(1), loss, losses, ndoc, inv_batch)


@cuda.jit(device=True)
def crossentropy_softmax_backward_body(start, stride, dlogits, exps, targets, ndoc,
                                       inv_batch):
    n, V = exps.shape
    f = exps.dtype.type
    for t in range(start, n, stride):
        total = f(0)                  # the forward's exps' total, as it summed it
        for c in range(V):
            total += exps[t, c]
        inv_total = math.pow(total, f(-1))
        target = targets[t]
        e_target = exps[t, target]
        dp = (f(1) / (e_target * inv_total)) * -((f(1) / f(ndoc[t])) * inv_batch)
        dtotal = -math.pow(total, f(-2)) * (e_target * dp)
        for c in range(V):
            de = inv_total * dp + dtotal if c == target else dtotal
            dlogits[t, c] += exps[t, c] * de


@cuda.jit
def crossentropy_softmax_backward_kernel(dlogits, exps, targets, ndoc, inv_batch):
    crossentropy_softmax_backward_body(cuda.grid(1), cuda.gridsize(1), dlogits, exps, targets,
                                       ndoc, inv_batch)


@cuda.jit(device=True)
def adam_update_body(start, stride, params, grads, m, v, lr, beta1, beta2, one_minus_beta1,
                     one_minus_beta2, bias1, bias2, eps):
    f = params.dtype.type
    for i in range(start, params.shape[0], stride):
        g = grads[i]
        m[i] = beta1 * m[i] + one_minus_beta1 * g
        v[i] = beta2 * v[i] + one_minus_beta2 * math.pow(g, f(2))
        params[i] -= lr * (m[i] / bias1) / (math.pow(v[i] / bias2, f(0.5)) + eps)


@cuda.jit
def adam_update_kernel(params, grads, m, v, lr, beta1, beta2, one_minus_beta1,
                       one_minus_beta2, bias1, bias2, eps):
    adam_update_body(cuda.grid(1), cuda.gridsize(1), params, grads, m, v, lr, beta1, beta2,
                     one_minus_beta1, one_minus_beta2, bias1, bias2, eps)


PRECISIONS = {'fp64': (np.float64, 'tiled'), 'fp32': (np.float32, 'tiled'),
              'tc': (np.float32, 'tc')}


class CudaKernels:
    """The kernel namespace K of the twin model (microgpt/twin/model.py), on the GPU.

    precision: 'fp64' (float64 everywhere: matches the reference like the other twins),
    'fp32' (float32 arrays and GEMMs) or 'tc' (float32 arrays, GEMMs on the tensor cores
    with float16 operands accumulating in float32). The model's float arguments reach
    the kernels in the arrays' type, so an fp32 kernel computes in float32 only.
    """

    def __init__(self, precision='fp64'):
        self.dtype, self.gemm_kernel = PRECISIONS[precision]

    def _scalars(self, *values):
        return tuple(self.dtype(v) for v in values)

    # memory: the model's arrays live on the device
    def zeros(self, size):
        return cuda.to_device(np.zeros(size, dtype=self.dtype))

    def to_device(self, host):
        host = np.asarray(host)
        return cuda.to_device(host.astype(self.dtype) if host.dtype.kind == 'f' else host)

    def to_host(self, array):
        return array.copy_to_host()

    # the kernels
    def zero(self, x):
        x = x.reshape(x.size)                     # (contiguous: the model zeroes whole rows)
        launch(zero_kernel, *_blocks(x.shape[0]), x)

    def pack_batch(self, batch, tokens, lengths):
        """tokens: on the device; lengths: the host's (the row count comes back at once)."""
        launch(pack_batch_kernel, *_blocks(tokens.shape[0]), *batch, tokens,
               cuda.to_device(lengths))
        return int(lengths.sum())

    def encoder_forward(self, out, tokens, pos, wte, wpe):
        launch(encoder_forward_kernel, *_blocks(out.size), out, tokens, pos, wte, wpe)

    def encoder_backward(self, dwte, dwpe, dout, tokens, pos):
        launch(encoder_backward_kernel, *_blocks(dout.shape[1]), dwte, dwpe, dout, tokens, pos)

    def rmsnorm_forward(self, out, rstd, inp, inv_C, eps):
        launch(rmsnorm_forward_kernel, *_blocks(inp.shape[0]), out, rstd, inp,
               *self._scalars(inv_C, eps))

    def rmsnorm_backward(self, dinp, dout, inp, rstd, inv_C, eps):
        launch(rmsnorm_backward_kernel, *_blocks(inp.shape[0]), dinp, dout, inp, rstd,
               *self._scalars(inv_C, eps))

    def matmul_forward(self, out, inp, w):
        gemm(out, inp, w, form='nt', kernel=self.gemm_kernel)                # inp @ w.T

    def matmul_backward_input(self, dinp, dout, w, order, which):
        if self.dtype != np.float64:      # fp32, tc: the GEMMs, in their own order
            gemm(dinp, dout, w, form='nn', kernel=self.gemm_kernel, accumulate=True)
        else:
            launch(matmul_backward_input_kernel, *_blocks(dinp.size), dinp, dout, w, order,
                   which)

    def target_logit_aside(self, dtargets, dlogits, targets):
        launch(target_logit_aside_kernel, *_blocks(targets.shape[0]), dtargets, dlogits,
               targets)

    def target_logit_backward(self, dinp, dlogits, w, targets, dtargets):
        launch(target_logit_backward_kernel, *_blocks(dinp.size), dinp, dlogits, w, targets,
               dtargets)

    def matmul_backward_weight(self, dw, dout, inp, o0, o1):
        if self.dtype != np.float64:
            gemm(dw[o0:o1], dout[:, o0:o1], inp, form='tn', kernel=self.gemm_kernel,
                 accumulate=True)
        else:
            dw = dw[o0:o1]
            launch(matmul_backward_weight_kernel, *_blocks(dw.size), dw, dout, inp, o0)

    def step_parts(self, ndoc, n, hp):
        """One part (model.train_step): each kernel spreads the whole step's rows over
        the device's threads."""
        return 1

    def attention_forward(self, out, att_exps, qkv, pos, a, n, n_head, scale):
        launch(attention_forward_kernel, *_blocks(n_head * n), out, att_exps, qkv, pos, a, n,
               n_head, *self._scalars(scale))

    def attention_backward(self, dqkv, dout, qkv, att_exps, pos, a, n, n_head, scale):
        launch(attention_backward_kernel, *_blocks(2 * n_head * n), dqkv, dout, qkv, att_exps,
               pos, a, n, n_head, *self._scalars(scale))

    def relu_forward(self, out, inp):
        launch(relu_forward_kernel, *_blocks(inp.size), out, inp)

    def relu_backward(self, dinp, dout, inp):
        launch(relu_backward_kernel, *_blocks(inp.size), dinp, dout, inp)

    def residual_forward(self, out, inp1, inp2):
        launch(residual_forward_kernel, *_blocks(out.size), out, inp1, inp2)

    def residual_backward(self, dinp1, dinp2, dout):
        launch(residual_backward_kernel, *_blocks(dout.size), dinp1, dinp2, dout)

    def softmax_forward(self, probs, exps, logits, inv_temperature):
        launch(softmax_forward_kernel, *_blocks(logits.shape[0]), probs, exps, logits,
               *self._scalars(inv_temperature))

    def crossentropy_forward(self, losses, loss, probs, targets, ndoc, inv_batch):
        launch(crossentropy_forward_kernel, *_blocks(losses.shape[0]), losses, probs, targets)
        launch(batch_mean_kernel, 1, 1, loss, losses, ndoc, *self._scalars(inv_batch))

    def crossentropy_softmax_backward(self, dlogits, exps, targets, ndoc, inv_batch):
        launch(crossentropy_softmax_backward_kernel, *_blocks(exps.shape[0]), dlogits, exps,
               targets, ndoc, *self._scalars(inv_batch))

    def adam_update(self, params, grads, m, v, lr, beta1, beta2, one_minus_beta1,
                    one_minus_beta2, bias1, bias2, eps):
        launch(adam_update_kernel, *_blocks(params.shape[0]), params, grads, m, v,
               *self._scalars(lr, beta1, beta2, one_minus_beta1, one_minus_beta2, bias1, bias2,
                              eps))
