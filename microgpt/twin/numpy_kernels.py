"""The twin's kernels in plain numpy: the readable reference for jit/ and gpu/.

Every kernel writes into arrays it is given. Forward kernels overwrite `out`; backward
kernels accumulate (+=) into their d-prefixed outputs. Scalars that the reference
computes in a particular way (1/C as C**-1, the attention scale as (hd**0.5)**-1, a
reciprocal as total**-1) arrive precomputed or are computed here the same way.
"""
import numpy as np


# Memory: numpy's arrays are the host's; a device backend (gpu/) copies in and out here.
def zeros(size):
    return np.zeros(size)


def to_device(host):
    return host


def to_host(array):
    return array


def zero(x):
    x[...] = 0.0


def encoder_forward(out, tokens, pos0, wte, wpe):
    """out (n,C) = wte[tokens] + wpe[pos0:pos0+n]."""
    n = out.shape[0]
    out[...] = wte[tokens] + wpe[pos0:pos0 + n]


def encoder_backward(dwte, dwpe, dout, tokens):
    n = dout.shape[0]
    np.add.at(dwte, tokens, dout)     # a token can occur twice: accumulate, don't assign
    dwpe[:n] += dout


def rmsnorm_forward(out, rstd, inp, inv_C, eps):
    """out (n,C) = inp * rstd, rstd (n,) = (mean(inp^2) + eps) ** -0.5."""
    ms = (inp * inp).sum(axis=1) * inv_C
    rstd[...] = (ms + eps) ** -0.5
    out[...] = inp * rstd[:, None]


def rmsnorm_backward(dinp, dout, inp, rstd, inv_C):
    # y = x * s, s = (ms + eps)^-1/2, ms = sum(x^2)/C:  ds/dx_j = -s^3 x_j / C
    s = rstd[:, None]
    dot = (dout * inp).sum(axis=1, keepdims=True)
    dinp += dout * s - inp * (dot * s ** 3 * inv_C)


def matmul_forward(out, inp, w):
    """out (n,O) = inp (n,I) @ w.T, w being (O,I) like the reference's rows."""
    out[...] = inp @ w.T


def matmul_backward(dinp, dw, dout, inp, w):
    dinp += dout @ w
    dw += dout.T @ inp


def attention_forward(out, att, q, k, v, pos0, n, n_head, scale):
    """Causal multi-head attention for query rows pos0..pos0+n-1 over key rows 0..pos.

    q, k, v, out are (T,C) with head h in columns h*hd .. (h+1)*hd; att is (H,T,T) and
    receives each query row's softmax weights over its keys.
    """
    a, b = pos0, pos0 + n
    hd = q.shape[1] // n_head
    future = np.arange(b)[None, :] > np.arange(a, b)[:, None]   # (n, b): key after query
    for h in range(n_head):
        cols = slice(h * hd, (h + 1) * hd)
        logits = (q[a:b, cols] @ k[:b, cols].T) * scale          # (n, b)
        logits[future] = -np.inf
        e = np.exp(logits - logits.max(axis=1, keepdims=True))
        w = e * e.sum(axis=1, keepdims=True) ** -1
        att[h, a:b, :b] = w
        out[a:b, cols] = w @ v[:b, cols]


def attention_backward(dq, dk, dv, dout, q, k, v, att, n, n_head, scale):
    """Backward of attention_forward over rows 0..n-1 (pos0 = 0), accumulating."""
    hd = q.shape[1] // n_head
    for h in range(n_head):
        cols = slice(h * hd, (h + 1) * hd)
        w = att[h, :n, :n]                                       # (n, n), zero above diagonal
        dw = dout[:n, cols] @ v[:n, cols].T
        dv[:n, cols] += w.T @ dout[:n, cols]
        dlogits = w * (dw - (w * dw).sum(axis=1, keepdims=True)) * scale
        dq[:n, cols] += dlogits @ k[:n, cols]
        dk[:n, cols] += dlogits.T @ q[:n, cols]


def relu_forward(out, inp):
    np.maximum(inp, 0.0, out=out)


def relu_backward(dinp, dout, inp):
    dinp += dout * (inp > 0)


def residual_forward(out, inp1, inp2):
    np.add(inp1, inp2, out=out)


def residual_backward(dinp1, dinp2, dout):
    dinp1 += dout
    dinp2 += dout


def softmax_forward(probs, logits, inv_temperature):
    """probs (n,V) = softmax(logits * inv_temperature) row by row."""
    z = logits * inv_temperature
    e = np.exp(z - z.max(axis=1, keepdims=True))
    probs[...] = e * e.sum(axis=1, keepdims=True) ** -1


def crossentropy_forward(losses, loss, probs, targets):
    """losses (n,) = -log(probs[t, targets[t]]); loss (1,) = their mean, as sum * (1/n)."""
    n = losses.shape[0]
    losses[...] = -np.log(probs[np.arange(n), targets])
    loss[0] = losses.sum() * (1 / n)


def crossentropy_softmax_backward(dlogits, probs, targets, n):
    """d(mean loss)/d(logits) = (probs - onehot(targets)) / n."""
    d = probs.copy()
    d[np.arange(probs.shape[0]), targets] -= 1.0
    dlogits += d * (1 / n)


def adam_update(params, grads, m, v, lr, beta1, beta2, one_minus_beta1, one_minus_beta2,
                bias1, bias2, eps):
    """Adam over flat arrays, each element exactly as the reference's loop body."""
    m[...] = beta1 * m + one_minus_beta1 * grads
    v[...] = beta2 * v + one_minus_beta2 * grads ** 2
    m_hat = m / bias1
    v_hat = v / bias2
    params -= lr * m_hat / (v_hat ** 0.5 + eps)
