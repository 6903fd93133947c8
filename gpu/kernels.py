"""The twin's kernels on numba.cuda: what the cuda tier runs.

Same contract as microgpt/twin/numpy_kernels.py, their reference: forward kernels
overwrite `out`, backward kernels accumulate into d-prefixed outputs. The forward
products go through gpu/gemm.py (each output summed over k in order, from zero); the
rest are small kernels, one thread per element or per row (the model is tiny: a row is
at most 4*n_embd wide). Every kernel is written so that no two threads write the same
element, so none needs atomics and every result is deterministic. In fp64 every sum
keeps the scalar graph's order, as numpy_kernels.py sets out, and every `**` is
math.pow: under numba's simulator (where math.pow, math.exp and math.log are the
host's libm) the tier is bit-identical to the reference. On a GPU, exp, log and pow
come from CUDA's libdevice, whose last bits differ from glibc's (docs/gpu.md). Each CudaKernels method checks nothing the model has not already
shaped; it picks the launch size (gpu/tuning.py) and launches.
"""
import math

import numpy as np
from numba import cuda

from microgpt.twin import model

from . import tuning
from .gemm import gemm


def _blocks(n):
    return ((n + tuning.THREADS - 1) // tuning.THREADS, tuning.THREADS)


@cuda.jit
def zero_kernel(x):
    i = cuda.grid(1)
    if i < x.shape[0]:
        x[i] = 0


@cuda.jit
def encoder_forward_kernel(out, tokens, pos0, wte, wpe):
    i = cuda.grid(1)
    n, C = out.shape
    if i < n * C:
        t, c = i // C, i % C
        out[t, c] = wte[tokens[t], c] + wpe[pos0 + t, c]


@cuda.jit
def encoder_backward_kernel(dwte, dwpe, dout, tokens):
    c = cuda.grid(1)                  # one thread per column: a repeated token is no race
    n, C = dout.shape
    if c < C:
        for t in range(n - 1, -1, -1):    # positions last to first
            dwte[tokens[t], c] += dout[t, c]
            dwpe[t, c] += dout[t, c]


@cuda.jit
def rmsnorm_forward_kernel(out, rstd, inp, inv_C, eps):
    t = cuda.grid(1)
    n, C = inp.shape
    if t < n:
        ms = 0.0
        for c in range(C):
            ms += inp[t, c] * inp[t, c]
        s = math.pow(ms * inv_C + eps, -0.5)
        rstd[t] = s
        for c in range(C):
            out[t, c] = inp[t, c] * s


@cuda.jit
def rmsnorm_backward_kernel(dinp, dout, inp, rstd, inv_C, eps):
    t = cuda.grid(1)
    n, C = inp.shape
    if t < n:
        s = rstd[t]
        ds = 0.0
        for c in range(C - 1, -1, -1):
            ds += inp[t, c] * dout[t, c]
        ms = 0.0
        for c in range(C):
            ms += inp[t, c] * inp[t, c]
        dsq = inv_C * ((-0.5 * math.pow(ms * inv_C + eps, -1.5)) * ds)
        for c in range(C):
            d = dinp[t, c] + s * dout[t, c]
            d = d + inp[t, c] * dsq
            dinp[t, c] = d + inp[t, c] * dsq


@cuda.jit
def matmul_backward_input_kernel(dinp, dout, w, order):
    """dinp[t, i] += w[o, i] * dout[t, o] for o in order[t], in that order."""
    e = cuda.grid(1)
    n, I = dinp.shape
    if e < n * I:
        t, i = e // I, e % I
        d = dinp[t, i]
        for r in range(order.shape[1]):
            o = order[t, r]
            d += w[o, i] * dout[t, o]
        dinp[t, i] = d


@cuda.jit
def matmul_backward_weight_kernel(dw, dout, inp):
    """dw[o, i] += inp[t, i] * dout[t, o] for t from the last position to the first."""
    e = cuda.grid(1)
    O, I = dw.shape
    if e < O * I:
        o, i = e // I, e % I
        d = dw[o, i]
        for t in range(inp.shape[0] - 1, -1, -1):
            d += dout[t, o] * inp[t, i]
        dw[o, i] = d


target_last = cuda.jit(device=True)(model.target_last)


@cuda.jit
def order_target_last_kernel(order, targets):
    t = cuda.grid(1)
    if t < order.shape[0]:
        target_last(order[t], targets[t])


@cuda.jit
def attention_forward_kernel(out, att, qkv, pos0, n, n_head, scale):
    i = cuda.grid(1)                  # one thread per (head, query row)
    if i < n_head * n:
        h, p = i // n, pos0 + i % n
        C = qkv.shape[1] // 3
        hs = h * (C // n_head)
        mx = -math.inf
        for s in range(p + 1):
            acc = 0.0
            for j in range(C // n_head):
                acc += qkv[p, hs + j] * qkv[s, C + hs + j]
            att[h, p, s] = acc * scale
            mx = max(mx, att[h, p, s])
        total = 0.0
        for s in range(p + 1):
            att[h, p, s] = math.exp(att[h, p, s] - mx)
            total += att[h, p, s]
        inv_total = math.pow(total, -1.0)
        for s in range(p + 1):
            att[h, p, s] *= inv_total
        for j in range(C // n_head):
            acc = 0.0
            for s in range(p + 1):
                acc += att[h, p, s] * qkv[s, 2 * C + hs + j]
            out[p, hs + j] = acc


@cuda.jit
def attention_backward_query_kernel(dqkv, dlogits, exps, dout, qkv, n, n_head, scale):
    """Per (head, query row p): the gradient of its logits' dot products, and dq[p].
    exps[h, p] receives the row's exps, recomputed once; dlogits[h, p] holds d(weights)
    until it is overwritten."""
    i = cuda.grid(1)
    if i < n_head * n:
        h, p = i // n, i % n
        C = qkv.shape[1] // 3
        hd = C // n_head
        hs = h * hd
        e = exps[h, p]
        mx = -math.inf
        for s in range(p + 1):
            acc = 0.0
            for j in range(hd):
                acc += qkv[p, hs + j] * qkv[s, C + hs + j]
            e[s] = acc * scale
            mx = max(mx, e[s])
        total = 0.0
        for s in range(p + 1):
            e[s] = math.exp(e[s] - mx)
            total += e[s]
        inv_total = math.pow(total, -1.0)
        dinv = -math.pow(total, -2.0)
        dtotal = 0.0
        for s in range(p, -1, -1):
            acc = 0.0
            for j in range(hd - 1, -1, -1):
                acc += qkv[s, 2 * C + hs + j] * dout[p, hs + j]
            dlogits[h, p, s] = acc                         # d(weight)
            dtotal += dinv * (e[s] * acc)
        for s in range(p, -1, -1):
            dl = scale * (e[s] * (inv_total * dlogits[h, p, s] + dtotal))
            dlogits[h, p, s] = dl
            for j in range(hd):
                dqkv[p, hs + j] += qkv[s, C + hs + j] * dl


@cuda.jit
def attention_backward_key_kernel(dqkv, dlogits, dout, qkv, att, n, n_head):
    """Per (head, key row s): dk[s] and dv[s], from the queries p >= s, last first."""
    i = cuda.grid(1)
    if i < n_head * n:
        h, s = i // n, i % n
        C = qkv.shape[1] // 3
        hs = h * (C // n_head)
        for p in range(n - 1, s - 1, -1):
            dl, w = dlogits[h, p, s], att[h, p, s]
            for j in range(C // n_head):
                dqkv[s, C + hs + j] += qkv[p, hs + j] * dl
                dqkv[s, 2 * C + hs + j] += w * dout[p, hs + j]


@cuda.jit
def relu_forward_kernel(out, inp):
    i = cuda.grid(1)
    n, C = inp.shape
    if i < n * C:
        t, c = i // C, i % C
        out[t, c] = inp[t, c] if inp[t, c] > 0 else 0


@cuda.jit
def relu_backward_kernel(dinp, dout, inp):
    i = cuda.grid(1)
    n, C = inp.shape
    if i < n * C:
        t, c = i // C, i % C
        if inp[t, c] > 0:
            dinp[t, c] += dout[t, c]


@cuda.jit
def residual_forward_kernel(out, inp1, inp2):
    i = cuda.grid(1)
    n, C = out.shape
    if i < n * C:
        t, c = i // C, i % C
        out[t, c] = inp1[t, c] + inp2[t, c]


@cuda.jit
def residual_backward_kernel(dinp1, dinp2, dout):
    i = cuda.grid(1)
    n, C = dout.shape
    if i < n * C:
        t, c = i // C, i % C
        dinp1[t, c] += dout[t, c]
        dinp2[t, c] += dout[t, c]


@cuda.jit
def softmax_forward_kernel(probs, logits, inv_temperature):
    t = cuda.grid(1)
    n, V = logits.shape
    if t < n:
        mx = -math.inf
        for c in range(V):
            mx = max(mx, logits[t, c] * inv_temperature)
        total = 0.0
        for c in range(V):
            probs[t, c] = math.exp(logits[t, c] * inv_temperature - mx)
            total += probs[t, c]
        inv_total = math.pow(total, -1.0)
        for c in range(V):
            probs[t, c] *= inv_total


@cuda.jit
def crossentropy_forward_kernel(losses, probs, targets):
    t = cuda.grid(1)
    if t < losses.shape[0]:
        losses[t] = -math.log(probs[t, targets[t]])


@cuda.jit
def mean_kernel(loss, losses):
    if cuda.grid(1) == 0:             # n <= block_size: one thread sums, in order
        n = losses.shape[0]
        total = 0.0
        for t in range(n):
            total += losses[t]
        loss[0] = total * (1 / n)


@cuda.jit
def crossentropy_softmax_backward_kernel(dlogits, logits, targets, n):
    t = cuda.grid(1)
    V = logits.shape[1]
    if t < n:
        mx = -math.inf
        for c in range(V):
            mx = max(mx, logits[t, c])
        total = 0.0
        for c in range(V):
            total += math.exp(logits[t, c] - mx)
        inv_total = math.pow(total, -1.0)
        target = targets[t]
        e_target = math.exp(logits[t, target] - mx)
        dp = (1 / (e_target * inv_total)) * -(1 / n)
        dtotal = -math.pow(total, -2.0) * (e_target * dp)
        for c in range(V):
            de = inv_total * dp + dtotal if c == target else dtotal
            dlogits[t, c] += math.exp(logits[t, c] - mx) * de


@cuda.jit
def adam_update_kernel(params, grads, m, v, lr, beta1, beta2, one_minus_beta1,
                       one_minus_beta2, bias1, bias2, eps):
    i = cuda.grid(1)
    if i < params.shape[0]:
        g = grads[i]
        m[i] = beta1 * m[i] + one_minus_beta1 * g
        v[i] = beta2 * v[i] + one_minus_beta2 * math.pow(g, 2.0)
        params[i] -= lr * (m[i] / bias1) / (math.pow(v[i] / bias2, 0.5) + eps)


PRECISIONS = {'fp64': (np.float64, 'tiled'), 'fp32': (np.float32, 'tiled'),
              'tc': (np.float32, 'tc')}


class CudaKernels:
    """The kernel namespace K of the twin model (microgpt/twin/model.py), on the GPU.

    precision: 'fp64' (float64 everywhere: matches the reference like the other twins),
    'fp32' (float32 arrays and GEMMs) or 'tc' (float32 arrays, GEMMs with float16
    operands accumulating in float32, as tensor cores do).
    """

    def __init__(self, precision='fp64'):
        self.dtype, self.gemm_kernel = PRECISIONS[precision]
        self.attention_scratch = {}

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
        zero_kernel[_blocks(x.shape[0])](x)

    def encoder_forward(self, out, tokens, pos0, wte, wpe):
        encoder_forward_kernel[_blocks(out.size)](out, tokens, pos0, wte, wpe)

    def encoder_backward(self, dwte, dwpe, dout, tokens):
        encoder_backward_kernel[_blocks(dout.shape[1])](dwte, dwpe, dout, tokens)

    def rmsnorm_forward(self, out, rstd, inp, inv_C, eps):
        rmsnorm_forward_kernel[_blocks(inp.shape[0])](out, rstd, inp, inv_C, eps)

    def rmsnorm_backward(self, dinp, dout, inp, rstd, inv_C, eps):
        rmsnorm_backward_kernel[_blocks(inp.shape[0])](dinp, dout, inp, rstd, inv_C, eps)

    def matmul_forward(self, out, inp, w):
        gemm(out, inp, w, form='nt', kernel=self.gemm_kernel)                # inp @ w.T

    def matmul_backward(self, dinp, dw, dout, inp, w, order):
        if self.dtype != np.float64:      # fp32, tc: the GEMMs, in their own order
            gemm(dinp, dout, w, form='nn', kernel=self.gemm_kernel, accumulate=True)
            gemm(dw, dout, inp, form='tn', kernel=self.gemm_kernel, accumulate=True)
            return
        matmul_backward_input_kernel[_blocks(dinp.size)](dinp, dout, w, order)
        matmul_backward_weight_kernel[_blocks(dw.size)](dw, dout, inp)

    def order_target_last(self, order, targets):
        order_target_last_kernel[_blocks(order.shape[0])](order, targets)

    def attention_forward(self, out, att, qkv, pos0, n, n_head, scale):
        attention_forward_kernel[_blocks(n_head * n)](out, att, qkv, pos0, n, n_head, scale)

    def attention_backward(self, dqkv, dout, qkv, att, n, n_head, scale):
        shape = att.shape
        if shape not in self.attention_scratch:   # the logits' gradient and exps, (H,T,T) each
            self.attention_scratch[shape] = cuda.device_array((2,) + shape, dtype=self.dtype)
        scratch = self.attention_scratch[shape]
        dlogits, exps = scratch[0], scratch[1]
        grid = _blocks(n_head * n)
        attention_backward_query_kernel[grid](dqkv, dlogits, exps, dout, qkv, n, n_head, scale)
        attention_backward_key_kernel[grid](dqkv, dlogits, dout, qkv, att, n, n_head)

    def relu_forward(self, out, inp):
        relu_forward_kernel[_blocks(inp.size)](out, inp)

    def relu_backward(self, dinp, dout, inp):
        relu_backward_kernel[_blocks(inp.size)](dinp, dout, inp)

    def residual_forward(self, out, inp1, inp2):
        residual_forward_kernel[_blocks(out.size)](out, inp1, inp2)

    def residual_backward(self, dinp1, dinp2, dout):
        residual_backward_kernel[_blocks(dout.size)](dinp1, dinp2, dout)

    def softmax_forward(self, probs, logits, inv_temperature):
        softmax_forward_kernel[_blocks(logits.shape[0])](probs, logits, inv_temperature)

    def crossentropy_forward(self, losses, loss, probs, targets):
        crossentropy_forward_kernel[_blocks(losses.shape[0])](losses, probs, targets)
        mean_kernel[1, 1](loss, losses)

    def crossentropy_softmax_backward(self, dlogits, logits, targets, n):
        crossentropy_softmax_backward_kernel[_blocks(n)](dlogits, logits, targets, n)

    def adam_update(self, params, grads, m, v, lr, beta1, beta2, one_minus_beta1,
                    one_minus_beta2, bias1, bias2, eps):
        adam_update_kernel[_blocks(params.shape[0])](params, grads, m, v, lr, beta1, beta2,
                                                     one_minus_beta1, one_minus_beta2,
                                                     bias1, bias2, eps)
