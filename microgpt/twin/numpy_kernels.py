"""The twin's kernels in plain numpy: the readable reference for jit/ and gpu/.

Every kernel writes into arrays it is given. Forward kernels overwrite `out`; backward
kernels accumulate (+=) into their d-prefixed outputs. Each one repeats, float for float,
what the scalar graph (microgpt/gpt.py) computes, so that every tier is bit-identical:

- Every sum is taken in the reference's order, term by term (`ordered_sum`): forward
  sums left to right from the first term; a gradient receives its contributions in the
  order the scalar graph's backward() delivers them (see model.py for that order). BLAS
  (numpy's @) sums in its own blocked order, so no product here goes through it.
- Every `**`, exp and log of the reference is libm's, called per element as Python's
  float calls it (`power`, `exp`, `log`). numpy's own x ** 0.5, x ** -1 and x ** 2 are
  sqrt, 1/x and x*x, which differ from pow in the last bit about once in 1,200 values;
  and on a CPU with AVX-512, np.exp, np.log and np.power run numpy's SIMD
  approximations (measured here, numpy 2.4 on an AMD EPYC with AVX-512: np.exp differed
  from math.exp on 4.6% of two million values, np.power from ** on 5.4%).
- Each local gradient is the Value op's own: softmax is exp, a sum and e * total**-1;
  the loss is -log of the target's probability alone, then a mean as sum * (1/n); the
  attention scale and 1/C are multiplications by constants computed as the reference
  computes them (they arrive precomputed).
"""
import math

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


# Below this many floats a term, np.add.accumulate sums faster than a loop of slices
# (it costs ~10x more per float, the loop ~0.4 us more per term; measured here).
THIN_TERM = 32


def ordered_sum(terms):
    """terms[0] + terms[1] + ... over the first axis, one by one, in that order: a loop
    of elementwise additions of whole terms, or, for thin terms, np.add.accumulate,
    sequential by definition. (np.add.reduce may sum pairwise.)"""
    if terms[0].size < THIN_TERM:
        return np.add.accumulate(terms, axis=0)[-1]
    total = terms[0].copy()
    for term in terms[1:]:
        total += term
    return total


def accumulate_into(dst, terms):
    """dst += terms[0]; dst += terms[1]; ...: one contribution at a time, in order, as
    the scalar graph adds them into a node's gradient. (Overwrites `terms`.)"""
    terms[0] += dst
    dst[...] = ordered_sum(terms)


# The most floats of terms a product materializes at once (32 MB): products sum their
# terms a block at a time, so that a wide layer never needs its n x O x I terms whole.
BLOCK = 2 ** 22


def sum_in_blocks(out, term, K, accumulate=False):
    """out = term 0 + term 1 + ... + term K-1 (or out += each, in turn, if accumulate),
    in that order, with term(a, b) giving terms a..b-1 as one array: a block of them at
    a time, at most BLOCK floats. The very additions ordered_sum / accumulate_into make."""
    step = max(1, BLOCK // max(1, out.size))
    for a in range(0, K, step):
        terms = term(a, min(K, a + step))
        if a == 0 and not accumulate:
            out[...] = ordered_sum(terms)
        else:
            accumulate_into(out, terms)


# numpy ufuncs that call Python's own float functions (libm) element by element.
LIBM_EXP, LIBM_LOG, LIBM_POW = (np.frompyfunc(f, nargs, 1)
                                for f, nargs in ((math.exp, 1), (math.log, 1), (pow, 2)))


def exp(x):
    """math.exp elementwise (libm's exp, as the reference's Value.exp)."""
    return np.asarray(LIBM_EXP(x), dtype=np.float64)


def log(x):
    """math.log elementwise (libm's log, as the reference's Value.log)."""
    return np.asarray(LIBM_LOG(x), dtype=np.float64)


def power(x, e):
    """x ** e elementwise, as Python's float ** computes it (libm's pow); e a number or
    an array, taken as floats (as Python's float ** takes an int)."""
    return np.asarray(LIBM_POW(x, np.asarray(e, dtype=np.float64)), dtype=np.float64)


def pack_batch(batch, tokens, lengths):
    """A step's documents, tokens (B,T+1) with lengths (B,) positions each, packed into
    the rows of `batch` (model.Batch), one document after another. Returns the rows."""
    T = tokens.shape[1] - 1
    used = np.arange(T)[None, :] < lengths[:, None]           # (B,T), row-major: packed order
    n = int(lengths.sum())
    batch.tokens[:n] = tokens[:, :T][used]
    batch.targets[:n] = tokens[:, 1:][used]
    batch.pos[:n] = np.broadcast_to(np.arange(T), used.shape)[used]
    batch.ndoc[:n] = np.broadcast_to(lengths[:, None], used.shape)[used]
    batch.later[:n] = batch.pos[:n] > 0
    return n


def encoder_forward(out, tokens, pos, wte, wpe):
    """out (n,C) = wte[tokens] + wpe[pos]: each row's token and its position in its
    document."""
    out[...] = wte[tokens] + wpe[pos]


def encoder_backward(dwte, dwpe, dout, tokens, pos):
    """Rows last to first, as the scalar backward visits them: a token (or a position)
    that occurs twice gets its later row's gradient first."""
    np.add.at(dwte, tokens[::-1], dout[::-1])
    np.add.at(dwpe, pos[::-1], dout[::-1])


def rmsnorm_forward(out, rstd, inp, inv_C, eps):
    """out (n,C) = inp * rstd, rstd (n,) = (sum(inp^2) * C**-1 + eps) ** -0.5."""
    ms = ordered_sum((inp * inp).T) * inv_C
    rstd[...] = power(ms + eps, -0.5)
    out[...] = inp * rstd[:, None]


def rmsnorm_backward(dinp, dout, inp, rstd, inv_C, eps):
    """out_i = x_i * s, s = a ** -0.5, a = sum(x_j * x_j) * C**-1 + eps. Into x_i, in
    the scalar graph's order: s * dout_i (from out_i), then x_i * dsq twice (x_i * x_i
    has x_i as both of its children). ds sums x_i * dout_i from the last i to the first."""
    ds = ordered_sum((inp * dout).T[::-1])
    a = ordered_sum((inp * inp).T) * inv_C + eps
    dsq = inv_C * ((-0.5 * power(a, -1.5)) * ds)       # d(a ** -0.5) = -0.5 * a**-1.5
    dinp += rstd[:, None] * dout
    dinp += inp * dsq[:, None]
    dinp += inp * dsq[:, None]


def matmul_forward(out, inp, w):
    """out (n,O) = inp (n,I) @ w.T, w being (O,I) like the reference's rows; each output
    summed over i from the first term to the last."""
    inp_T, w_T = inp.T, w.T
    sum_in_blocks(out, lambda a, b: inp_T[a:b, :, None] * w_T[a:b, None, :], inp.shape[1])


def matmul_backward_input(dinp, dout, w, order, which):
    """dinp[t] += w[o] * dout[t, o] for o in order[which[t]] (order (*,O): the orders a
    row may take, which (n,): the one each row takes), one row at a time in that order."""
    order, dout_T = order[which].T, dout.T                    # (O,n): term r of row t
    def dinp_terms(a, b):                                     # (b-a,n,I)
        return w[order[a:b]] * np.take_along_axis(dout_T, order[a:b], 0)[:, :, None]
    sum_in_blocks(dinp, dinp_terms, w.shape[0], accumulate=True)


def target_logit_aside(dtargets, dlogits, targets):
    """dtargets (n,) = each row's gradient at its target's logit, which is zeroed in
    dlogits (n,V) (model.lm_head_backward_input)."""
    rows = np.arange(len(targets))
    dtargets[...] = dlogits[rows, targets]
    dlogits[rows, targets] = 0.0


def target_logit_backward(dinp, dlogits, w, targets, dtargets):
    """dinp[t] += w[targets[t]] * dtargets[t], the target's term after the others', and
    the target's gradient back into dlogits."""
    dinp += w[targets] * dtargets[:, None]
    dlogits[np.arange(len(targets)), targets] = dtargets


def matmul_backward_weight(dw, dout, inp, o0, o1):
    """dw[o, i] += inp[t, i] * dout[t, o] for t from the last row to the first, for the
    rows o0 <= o < o1 of dw."""
    dout_r, inp_r = dout[::-1, o0:o1], inp[::-1]             # rows last to first
    sum_in_blocks(dw[o0:o1], lambda a, b: dout_r[a:b, :, None] * inp_r[a:b, None, :],
                  inp.shape[0], accumulate=True)


def step_parts(ndoc, n, hp):
    """In how many parts that may run at once a training step goes (model.train_step):
    one here, the whole batch's rows in each kernel."""
    return 1


def moveaxis(x, source, destination):
    """np.moveaxis for one axis, without its argument checks (3 us a call here, 20
    times a step; a transpose is 0.2)."""
    axes = list(range(x.ndim))
    axes.insert(destination % x.ndim, axes.pop(source % x.ndim))
    return x.transpose(axes)


def heads(x, n_head):
    """(..., C) -> (H, ..., hd): head h's columns h*hd .. (h+1)*hd."""
    x = x.reshape(x.shape[:-1] + (n_head, x.shape[-1] // n_head))
    return moveaxis(x, -2, 0)


def key_window(pos, a, T):
    """The key rows of query rows a .. a+n-1 whose positions are pos (n,): row
    a+i - pos[i] + s holds key position s of query i's document, for s = 0 .. T-1.
    Returns those rows (n,T), clipped to a real row where s > pos[i], and the mask of
    the keys each query may see (s <= pos[i])."""
    s = np.arange(T)
    rows = (a + np.arange(len(pos)) - pos)[:, None] + s[None, :]
    visible = s[None, :] <= pos[:, None]
    return np.where(visible, rows, rows[:, :1]), visible


def softmax_total(e):
    """A softmax's denominator, as the forward and the backward both take it from its
    exps e (..., K): their sum over the last axis, in order, and its libm reciprocal
    total ** -1."""
    total = ordered_sum(moveaxis(e, -1, 0))
    return total, power(total, -1.0)


def attention_weights(q, k, visible, scale):
    """Per head, softmax over the visible keys of (q . k) * scale; q (H,n,hd), k
    (H,n,T,hd) each query's key window. Returns the exps e (H,n,T) (zero where not
    visible), their sum and its libm reciprocal total**-1 (H,n)."""
    logits = ordered_sum(moveaxis(q[:, :, None, :] * k, -1, 0)) * scale       # (H,n,T)
    logits[:, ~visible] = -np.inf
    e = exp(logits - logits.max(axis=2, keepdims=True))
    return (e,) + softmax_total(e)


def attention_forward(out, att_exps, qkv, pos, a, n, n_head, scale):
    """Causal multi-head attention for query rows a..a+n-1 (positions pos (n,)) over the
    key rows of their own documents, up to their own.

    qkv (R,3C) holds q, k, v side by side, each with head h in columns h*hd .. (h+1)*hd;
    out is (R,C); att_exps (H,R,T) receives each query row's exps, by key position (the
    weights are these times their total ** -1: the backward needs both).
    """
    C = qkv.shape[1] // 3
    T = att_exps.shape[2]
    rows, visible = key_window(pos, a, T)
    q = heads(qkv[a:a + n, :C], n_head)                        # (H,n,hd)
    k, v = (heads(qkv[rows, i * C:(i + 1) * C], n_head) for i in (1, 2))   # (H,n,T,hd)
    e, total, inv_total = attention_weights(q, k, visible, scale)
    att_exps[:, a:a + n] = e
    w = e * inv_total[..., None]                              # (H,n,T)
    y = ordered_sum(moveaxis(w[..., None] * v, 2, 0))         # (H,n,hd), over keys in order
    out[a:a + n] = moveaxis(y, 0, 1).reshape(n, C)


def attention_backward(dqkv, dout, qkv, att_exps, pos, a, n, n_head, scale):
    """Backward of attention_forward over rows a..a+n-1 (whole documents), accumulating
    into the q, k and v columns of dqkv. Each sum in the scalar graph's order: a
    weight's gradient over the head's columns from the last to the first; the
    reciprocal's and a query's over keys from the last to the first; a key's and a
    value's over the queries of its document that read them, from the last position to
    the first."""
    C = qkv.shape[1] // 3
    H, T = n_head, att_exps.shape[2]
    rows, visible = key_window(pos, a, T)
    q = heads(qkv[a:a + n, :C], H)                            # (H,n,hd)
    k, v = (heads(qkv[rows, i * C:(i + 1) * C], H) for i in (1, 2))   # (H,n,T,hd)
    e = np.where(visible, att_exps[:, a:a + n], 0.0)          # (H,n,T) the forward's exps
    total, inv_total = softmax_total(e)
    w = e * inv_total[..., None]                              # the forward's weights
    dy = heads(dout[a:a + n], H)                              # (H,n,hd)
    # out_pj = sum_t w_pt * v_tj: a weight's gradient, over the head's columns, last first
    dw = ordered_sum(moveaxis(v * dy[:, :, None, :], -1, 0)[::-1])      # (H,n,T)
    # w_pt = e_pt * total_p ** -1, and `e / total` makes a pow node of its own for each
    # key t: total hears from each, -1 * total**-2 * (e_pt * dw_pt), keys last to first
    dtotal = ordered_sum(moveaxis(-power(total, -2.0)[..., None] * (e * dw), -1, 0)[::-1])
    de = inv_total[..., None] * dw + dtotal[..., None]       # from w_pt, then from the sum
    dlogit = scale * (e * de)                                 # e = exp(...), then * scale
    dq = ordered_sum(moveaxis(k * dlogit[..., None], 2, 0)[::-1])      # (H,n,hd)
    # A key (value) row hears from the queries of its document at its position and
    # later, last first: query row r + d reads key row r at window column pos[r].
    d = np.arange(T - 1, -1, -1)                              # query offsets, last first
    readers = np.arange(n)[:, None] + d[None, :]              # (n,T) query rows
    inside = readers < n
    readers = np.where(inside, readers, 0)
    col = np.broadcast_to(pos[:, None], readers.shape)
    reads = inside & (pos[readers] == col + d[None, :])       # the same document
    g_logit = np.where(reads, dlogit[:, readers, col], 0.0)    # (H,n,T)
    g_w = np.where(reads, w[:, readers, col], 0.0)
    dk = ordered_sum(moveaxis(q[:, readers] * g_logit[..., None], 2, 0))
    dv = ordered_sum(moveaxis(g_w[..., None] * dy[:, readers], 2, 0))
    for i, grad in enumerate((dq, dk, dv)):                   # (H,n,hd) -> (n,C)
        dqkv[a:a + n, i * C:(i + 1) * C] += moveaxis(grad, 0, 1).reshape(n, C)


def relu_forward(out, inp):
    np.maximum(inp, 0.0, out=out)


def relu_backward(dinp, dout, inp):
    dinp += dout * (inp > 0)


def residual_forward(out, inp1, inp2):
    np.add(inp1, inp2, out=out)


def residual_backward(dinp1, dinp2, dout):
    dinp1 += dout
    dinp2 += dout


def softmax_parts(logits, inv_temperature):
    """exp(z - max z) for z = logits * inv_temperature, row by row; their sum (n,) and
    its libm reciprocal."""
    z = logits * inv_temperature
    e = exp(z - z.max(axis=1, keepdims=True))
    return (e,) + softmax_total(e)


def softmax_forward(probs, exps, logits, inv_temperature):
    """probs (n,V) = softmax(logits * inv_temperature) row by row, as e * total**-1, with
    e (n,V) = exp(z - max z) into exps."""
    e, total, inv_total = softmax_parts(logits, inv_temperature)
    exps[...] = e
    probs[...] = e * inv_total[:, None]


def crossentropy_forward(losses, loss, probs, targets, ndoc, inv_batch):
    """losses (n,) = -log(probs[t, targets[t]]); a document's loss is the sum of its
    rows' * (1/n_doc), and loss (1,) = the sum of the documents' * inv_batch (1/B)."""
    n = losses.shape[0]
    losses[...] = -log(probs[np.arange(n), targets])
    total, t = 0.0, 0
    while t < n:                                # the batch's documents, in order
        m = ndoc[t]
        total += ordered_sum(losses[t:t + m]) * (1 / m)
        t += m
    loss[0] = total * inv_batch


def crossentropy_softmax_backward(dlogits, exps, targets, ndoc, inv_batch):
    """d(step loss)/d(logits) through the graph the reference builds: loss_t =
    -log(e_T * r), r = total**-1, total = sum_j e_j, e_j = exp(z_j - max z) (exps (n,V),
    the forward's); a row's loss reaches the step's through its document's mean
    (1/n_doc) and the batch's (inv_batch: 1/B, or 1.0 for one document)."""
    e = exps
    total, inv_total = softmax_total(e)
    rows = np.arange(e.shape[0])
    e_target = e[rows, targets]
    dlogp = -((1 / ndoc) * inv_batch)                         # the means, times -1
    dp = (1 / (e_target * inv_total)) * dlogp                 # log's local gradient: 1/p
    dtotal = -power(total, -2.0) * (e_target * dp)
    de = np.broadcast_to(dtotal[:, None], e.shape).copy()
    de[rows, targets] = inv_total * dp + dtotal               # e_T: from p, then from total
    dlogits += e * de


def adam_update(params, grads, m, v, lr, beta1, beta2, one_minus_beta1, one_minus_beta2,
                bias1, bias2, eps):
    """Adam over flat arrays, each element exactly as the reference's loop body, whose
    g ** 2 and v_hat ** 0.5 are libm's pow. A call into libm per element, from Python,
    would cost more than the rest of the step, so, as jit/exact.py explains: pow
    returns the correctly rounded value (g*g, sqrt) or, near halfway, possibly its
    neighbour; the update is computed with both, and pow is called only for the
    elements where they differ (about 1 in 170)."""
    m[...] = beta1 * m + one_minus_beta1 * grads
    sq = grads * grads
    sq_alt = pow_candidate(sq, product_error(grads, grads), 1.0)
    v_new = beta2 * v + one_minus_beta2 * sq
    v_hat = v_new / bias2
    root = np.sqrt(v_hat)
    root_alt = pow_candidate(root, (v_hat - root * root) - product_error(root, root), 2 * root)
    update = lr * (m / bias1)
    p_new = params - update / (root + eps)
    settle = ((v_new != beta2 * v + one_minus_beta2 * sq_alt)
              | (p_new != params - update / (root_alt + eps)))
    v_new[settle] = beta2 * v[settle] + one_minus_beta2 * power(grads[settle], 2.0)
    p_new[settle] = params[settle] - update[settle] / (power(v_new[settle] / bias2, 0.5) + eps)
    v[...] = v_new
    params[...] = p_new


def product_error(a, b):
    """a*b - (a*b rounded), exactly: Dekker's product, with Veltkamp's split of each
    factor into two halves whose products are exact (numpy has no FMA). Exact while the
    error is a normal float: for products above about 1e-290."""
    def split(x):
        c = 134217729.0 * x                   # 2**27 + 1
        high = c - (c - x)
        return high, x - high
    ah, al = split(a)
    bh, bl = split(b)
    return ((ah * bh - a * b) + ah * bl + al * bh) + al * bl


def pow_candidate(r, err, den):
    """The other float pow may return where r is the correctly rounded value of its true
    result t, t - r ~ err / den (den > 0): r's neighbour on t's side where t is within
    0.05 ulp of halfway, else r (jit/exact.candidates). The neighbour is the next float
    that way, so the spacing is the one on t's side, also at a power of two."""
    neighbour = np.nextafter(r, np.where(err > 0, np.inf, -np.inf))
    return np.where(np.abs(err) > 0.45 * np.abs(neighbour - r) * den, neighbour, r)
