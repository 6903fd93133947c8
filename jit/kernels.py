"""The twin's kernels as numba-compiled loops: what jit/ runs.

Same contract as microgpt/twin/numpy_kernels.py, their reference: forward kernels
overwrite `out`, backward kernels accumulate into d-prefixed outputs. Each dot product
is summed left to right from 0.0, as the reference's sum(), and nothing is compiled
with fastmath, so the forward pass repeats the reference's float operations. The
backward pass sums in matrix order, which differs from the scalar graph's in the last
bits only. Loops keep the innermost index contiguous where the order allows it, so
LLVM can vectorize them without reassociating any sum.
"""
import math

import numpy as np
from numba import njit

from microgpt.twin.numpy_kernels import to_device, to_host, zeros  # noqa: F401  (numpy's memory)

# Never fastmath: it would reorder sums. error_model='numpy' drops the zero-division
# check Python semantics would put in every float division (it blocks vectorization);
# it changes no result, since nothing here divides by zero.
kernel = njit(cache=True, error_model='numpy')


@kernel
def zero(x):
    x[:] = 0.0


@kernel
def encoder_forward(out, tokens, pos0, wte, wpe):
    n, C = out.shape
    for t in range(n):
        tok = tokens[t]
        for c in range(C):
            out[t, c] = wte[tok, c] + wpe[pos0 + t, c]


@kernel
def encoder_backward(dwte, dwpe, dout, tokens):
    n, C = dout.shape
    for t in range(n):
        tok = tokens[t]
        for c in range(C):
            dwte[tok, c] += dout[t, c]
            dwpe[t, c] += dout[t, c]


@kernel
def rmsnorm_forward(out, rstd, inp, inv_C, eps):
    n, C = inp.shape
    for t in range(n):
        ms = 0.0
        for c in range(C):
            ms += inp[t, c] * inp[t, c]
        s = (ms * inv_C + eps) ** -0.5
        rstd[t] = s
        for c in range(C):
            out[t, c] = inp[t, c] * s


@kernel
def rmsnorm_backward(dinp, dout, inp, rstd, inv_C):
    n, C = inp.shape
    for t in range(n):
        s = rstd[t]
        dot = 0.0
        for c in range(C):
            dot += dout[t, c] * inp[t, c]
        k = dot * s * s * s * inv_C
        for c in range(C):
            dinp[t, c] += dout[t, c] * s - inp[t, c] * k


@kernel
def matmul_forward(out, inp, w):
    """out (n,O) = inp (n,I) @ w.T; each output summed over i in order, from 0.0.

    Through a transposed copy of w, so the innermost loop runs over contiguous outputs
    and vectorizes, while each output still adds its I products one by one, in order.
    """
    n, I = inp.shape
    O = w.shape[0]
    wT = np.empty((I, O))
    for o in range(O):
        for i in range(I):
            wT[i, o] = w[o, i]
    for t in range(n):
        row = out[t]
        row[:] = 0.0
        for i in range(I):
            x = inp[t, i]
            for o in range(O):
                row[o] += wT[i, o] * x


@kernel
def matmul_backward(dinp, dw, dout, inp, w):
    n, I = inp.shape
    O = w.shape[0]
    for t in range(n):
        for o in range(O):
            d = dout[t, o]
            for i in range(I):
                dinp[t, i] += d * w[o, i]
                dw[o, i] += d * inp[t, i]


@kernel
def attention_forward(out, att, q, k, v, pos0, n, n_head, scale):
    """Causal attention of query rows pos0..pos0+n-1 over key rows 0..own position."""
    hd = q.shape[1] // n_head
    for h in range(n_head):
        hs = h * hd
        for p in range(pos0, pos0 + n):
            w = att[h, p]
            mx = -math.inf
            for s in range(p + 1):
                acc = 0.0
                for j in range(hd):
                    acc += q[p, hs + j] * k[s, hs + j]
                w[s] = acc * scale
                mx = max(mx, w[s])
            total = 0.0
            for s in range(p + 1):
                w[s] = math.exp(w[s] - mx)
                total += w[s]
            inv_total = total ** -1
            for s in range(p + 1):
                w[s] *= inv_total
            for j in range(hd):
                acc = 0.0
                for s in range(p + 1):
                    acc += w[s] * v[s, hs + j]
                out[p, hs + j] = acc


@kernel
def attention_backward(dq, dk, dv, dout, q, k, v, att, n, n_head, scale):
    hd = q.shape[1] // n_head
    datt = np.empty(n)
    for h in range(n_head):
        hs = h * hd
        for p in range(n):
            w = att[h, p]
            wdot = 0.0
            for s in range(p + 1):
                acc = 0.0
                for j in range(hd):
                    acc += dout[p, hs + j] * v[s, hs + j]
                    dv[s, hs + j] += w[s] * dout[p, hs + j]
                datt[s] = acc
                wdot += w[s] * acc
            for s in range(p + 1):
                dl = w[s] * (datt[s] - wdot) * scale
                for j in range(hd):
                    dq[p, hs + j] += dl * k[s, hs + j]
                    dk[s, hs + j] += dl * q[p, hs + j]


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
def softmax_forward(probs, logits, inv_temperature):
    n, V = logits.shape
    for t in range(n):
        mx = -math.inf
        for c in range(V):
            mx = max(mx, logits[t, c] * inv_temperature)
        total = 0.0
        for c in range(V):
            probs[t, c] = math.exp(logits[t, c] * inv_temperature - mx)
            total += probs[t, c]
        inv_total = total ** -1
        for c in range(V):
            probs[t, c] *= inv_total


@kernel
def crossentropy_forward(losses, loss, probs, targets):
    n = losses.shape[0]
    total = 0.0
    for t in range(n):
        losses[t] = -math.log(probs[t, targets[t]])
        total += losses[t]
    loss[0] = total * (1 / n)


@kernel
def crossentropy_softmax_backward(dlogits, probs, targets, n):
    inv_n = 1 / n
    V = probs.shape[1]
    for t in range(n):
        for c in range(V):
            onehot = 1.0 if c == targets[t] else 0.0
            dlogits[t, c] += (probs[t, c] - onehot) * inv_n


@kernel
def adam_update(params, grads, m, v, lr, beta1, beta2, one_minus_beta1, one_minus_beta2,
                bias1, bias2, eps):
    for i in range(params.shape[0]):
        g = grads[i]
        m[i] = beta1 * m[i] + one_minus_beta1 * g
        v[i] = beta2 * v[i] + one_minus_beta2 * g ** 2
        m_hat = m[i] / bias1
        v_hat = v[i] / bias2
        # sqrt rather than the reference's ** 0.5: the same value to the last bit or one
        # ulp from it (libm's pow is not always correctly rounded), and it vectorizes.
        params[i] -= lr * m_hat / (math.sqrt(v_hat) + eps)
