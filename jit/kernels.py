"""The twin's kernels as numba-compiled loops: what jit/ runs.

Same contract as microgpt/twin/numpy_kernels.py, their reference, and the same floats
bit for bit: every sum runs in the order its docstring there gives (a forward sum left
to right from 0.0, as the reference's sum(); a gradient's contributions in the scalar
graph's order, model.backward_orders), every `**` is libm's pow (jit/exact.py), and
nothing is compiled with fastmath. Loops keep the innermost index contiguous and
independent where the order allows it (a whole row updated per term), so LLVM can
vectorize them without reassociating any sum.
"""
import math

import numpy as np
from numba import njit

from microgpt.twin import model
from microgpt.twin.numpy_kernels import to_device, to_host, zeros  # noqa: F401  (numpy's memory)

from .exact import power, root_candidates, square_candidates

# Never fastmath: it would reorder sums. error_model='numpy' drops the zero-division
# check Python semantics would put in every float division (it blocks vectorization);
# it changes no result, since nothing here divides by zero.
kernel = njit(cache=True, error_model='numpy')


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
            r += 1
    return r


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


@kernel
def rmsnorm_forward(out, rstd, inp, inv_C, eps):
    n, C = inp.shape
    for t in range(n):
        ms = 0.0
        for c in range(C):
            ms += inp[t, c] * inp[t, c]
        s = power(ms * inv_C + eps, -0.5)
        rstd[t] = s
        for c in range(C):
            out[t, c] = inp[t, c] * s


@kernel
def rmsnorm_backward(dinp, dout, inp, rstd, inv_C, eps):
    n, C = inp.shape
    for t in range(n):
        s = rstd[t]
        ds = 0.0
        for c in range(C - 1, -1, -1):
            ds += inp[t, c] * dout[t, c]
        ms = 0.0
        for c in range(C):
            ms += inp[t, c] * inp[t, c]
        dsq = inv_C * ((-0.5 * power(ms * inv_C + eps, -1.5)) * ds)
        for c in range(C):
            d = dinp[t, c] + s * dout[t, c]
            d = d + inp[t, c] * dsq
            dinp[t, c] = d + inp[t, c] * dsq


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
def matmul_backward(dinp, dw, dout, inp, w, order, which):
    n, I = inp.shape
    O = w.shape[0]
    for t in range(n):
        k = which[t]
        for r in range(O):
            o = order[k, r]
            d = dout[t, o]
            for i in range(I):
                dinp[t, i] += w[o, i] * d
    for t in range(n - 1, -1, -1):
        for o in range(O):
            d = dout[t, o]
            for i in range(I):
                dw[o, i] += d * inp[t, i]


target_last = kernel(model.target_last)


@kernel
def order_target_last(order, targets):
    for t in range(order.shape[0]):
        target_last(order[t], targets[t])


@kernel
def attention_forward(out, att, qkv, pos, a, n, n_head, scale):
    """Causal attention of query rows a..a+n-1, at positions pos (n,), over the key
    rows of their document up to their own: row r's key position s is row r-pos+s."""
    C = qkv.shape[1] // 3
    hd = C // n_head
    for h in range(n_head):
        hs = h * hd
        for i in range(n):
            r, p = a + i, pos[i]
            r0 = r - p                    # the document's first row
            w = att[h, r]
            mx = -math.inf
            for s in range(p + 1):
                acc = 0.0
                for j in range(hd):
                    acc += qkv[r, hs + j] * qkv[r0 + s, C + hs + j]
                w[s] = acc * scale
                mx = max(mx, w[s])
            total = 0.0
            for s in range(p + 1):
                w[s] = math.exp(w[s] - mx)
                total += w[s]
            inv_total = power(total, -1.0)
            for s in range(p + 1):
                w[s] *= inv_total
            for j in range(hd):
                acc = 0.0
                for s in range(p + 1):
                    acc += w[s] * qkv[r0 + s, 2 * C + hs + j]
                out[r, hs + j] = acc


@kernel
def attention_backward(dqkv, dout, qkv, att, pos, n, n_head, scale):
    C = qkv.shape[1] // 3
    hd = C // n_head
    T = att.shape[2]
    e = np.empty(T)                       # the query row's exps, recomputed
    dw = np.empty(T)                      # d(weights)
    dl = np.empty(T)                      # d(q . k), the logit before its scale
    for h in range(n_head):
        hs = h * hd
        for r in range(n - 1, -1, -1):    # last query first: keys and values hear from it first
            p = pos[r]
            r0 = r - p
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
            inv_total = power(total, -1.0)
            dinv = -power(total, -2.0)    # the local gradient of total ** -1
            dtotal = 0.0
            for s in range(p, -1, -1):
                acc = 0.0
                for j in range(hd - 1, -1, -1):
                    acc += qkv[r0 + s, 2 * C + hs + j] * dout[r, hs + j]
                dw[s] = acc
                dtotal += dinv * (e[s] * acc)
            for s in range(p, -1, -1):
                dl[s] = scale * (e[s] * (inv_total * dw[s] + dtotal))
                w = att[h, r, s]
                k = r0 + s
                for j in range(hd):
                    dqkv[r, hs + j] += qkv[k, C + hs + j] * dl[s]
                    dqkv[k, C + hs + j] += qkv[r, hs + j] * dl[s]
                    dqkv[k, 2 * C + hs + j] += w * dout[r, hs + j]


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
        inv_total = power(total, -1.0)
        for c in range(V):
            probs[t, c] *= inv_total


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
def crossentropy_softmax_backward(dlogits, logits, targets, ndoc, inv_batch):
    n, V = logits.shape
    e = np.empty(V)
    for t in range(n):
        mx = -math.inf
        for c in range(V):
            mx = max(mx, logits[t, c])
        total = 0.0
        for c in range(V):
            e[c] = math.exp(logits[t, c] - mx)
            total += e[c]
        inv_total = power(total, -1.0)
        target = targets[t]
        dp = (1 / (e[target] * inv_total)) * -((1 / ndoc[t]) * inv_batch)
        dtotal = -power(total, -2.0) * (e[target] * dp)
        for c in range(V):
            de = inv_total * dp + dtotal if c == target else dtotal
            dlogits[t, c] += e[c] * de


@kernel
def adam_update(params, grads, m, v, lr, beta1, beta2, one_minus_beta1, one_minus_beta2,
                bias1, bias2, eps):
    """The reference's loop body per parameter, with g ** 2 and v_hat ** 0.5 libm's pow.
    pow may return one of two floats (exact.square_candidates, root_candidates): a
    vectorized pass keeps each update where there is only one, and leaves the rest
    undecided; adam_settle then takes both, and asks pow only where they differ."""
    n = params.shape[0]
    undecided = np.empty(n, dtype=np.bool_)
    for i in range(n):
        g = grads[i]
        m[i] = beta1 * m[i] + one_minus_beta1 * g
        sq, sq_alt = square_candidates(g)
        v_new = beta2 * v[i] + one_minus_beta2 * sq
        root, root_alt = root_candidates(v_new / bias2)
        p_new = params[i] - lr * (m[i] / bias1) / (root + eps)
        sure = (v_new == beta2 * v[i] + one_minus_beta2 * sq_alt) & (root_alt == root)
        undecided[i] = not sure
        v[i] = v_new if sure else v[i]
        params[i] = p_new if sure else params[i]
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
