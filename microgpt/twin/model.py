"""The twin: the reference model in matrix form, with a hand-written backward.

Written once, against a kernel namespace `K` that a backend supplies (numpy here, numba
loops in jit/, numba.cuda in gpu/); bind() makes a copy of these functions that calls a
given backend, and for jit/ compiles that copy whole, so a training step is one native
call. Every kernel writes into arrays it is given: forward kernels overwrite their
output, backward kernels *accumulate* into their d-prefixed gradients (llm.c's
convention), so a tensor read by two consumers simply receives both contributions.

Training runs a step's documents at once, all their positions packed row after row
(document b's n_b rows after document b-1's): every product runs over all of the
batch's rows together, and attention keeps each row to the earlier rows of its own
document, under a causal mask: the same computation as the reference's position-by-
position KV cache. On a backend with threads, a batch's documents run in parts at once,
and then the parameters' gradients, which sum over every row (train_step). Every float
is the scalar graph's (microgpt/gpt.py), bit for bit, whatever the parts: the kernels
repeat each op and its local gradient, and each gradient receives its contributions in
the order the scalar graph's backward() delivers them. That order is set out, with its
reasons, in microgpt/orders.py (backward_orders below); the kernels' docstrings say how
each sum follows it. Activations live in a workspace of R rows (R = batch_size * block_size when
training; block_size when sampling), and every row carries its position in its document
(`pos`), so sampling reuses the very same forward: one row at a time, the k and v rows
of earlier positions being the KV cache. Shapes: T = block_size, C = n_embd,
V = vocab_size, H = n_head, B = batch_size, R = rows.
"""
import types
from collections import namedtuple

import numpy as np

from ..orders import qkv_orders, rows_last_first

K = None  # the backend's kernels (interface.KERNELS); each bound copy has its own
prange = range  # the loop over parts that may run at once; bind() may give a parallel one

# Scalars: the sizes, and constants computed in Python exactly as the reference does.
HParams = namedtuple('HParams', 'vocab_size block_size n_embd n_head n_layer batch_size '
                                'inv_C rms_eps attn_scale inv_batch')
# The orders in which a linear layer's input gradient receives its output rows'
# contributions (see backward_orders), each a row of: qkv (2,3C), a document's first
# position's and every later one's; rows_C (1,C), rows_4C (1,4C) and rows_V (1,V),
# every position's. A product is given, with its orders, which one each of its rows
# takes (K.matmul_backward_input): batch.later for qkv, and same (R,), all zeros, for
# the others. lm_head's input hears from its target's row last (lm_head_backward_input).
Orders = namedtuple('Orders', 'qkv rows_C rows_4C rows_V same')
# A training step's rows, packed by K.pack_batch: each (R,), the first n in use. tokens
# and targets: the input and next token ids; pos: the row's position in its document;
# ndoc: the number of positions of its document (the n of its mean loss); later: 0 at
# a document's first position, 1 after it (which of qkv's orders the row takes).
Batch = namedtuple('Batch', 'tokens targets pos ndoc later')
# The flat arrays behind everything: parameters, their gradients, Adam's two moments,
# the activations and their gradients. Six arrays are all a compiled step is given.
Flat = namedtuple('Flat', 'params grads m v acts dacts')
# One Adam step's scalars (see TwinGPT.adam_step).
AdamStep = namedtuple('AdamStep', 'lr beta1 beta2 one_minus_beta1 one_minus_beta2 bias1 bias2 eps')

# Parameters (and, same layout, their gradients): views of a flat array. Per-layer
# weights are stacked, layer first: attn_wo[l] is layer l's (C,C) matrix, attn_qkv[l]
# its attn_wq, attn_wk and attn_wv one above the other.
Params = namedtuple('Params', [
    'wte', 'wpe', 'lm_head',                       # (V,C), (T,C), (V,C)
    'attn_qkv',                                    # (L,3C,C) attn_wq, attn_wk, attn_wv
    'attn_wo',                                     # (L,C,C)
    'mlp_fc1', 'mlp_fc2',                          # (L,4C,C), (L,C,4C)
])
# Activations (and, same layout, their gradients) by row; per layer, stacked.
Acts = namedtuple('Acts', [
    'emb',               # (R,C) wte[token] + wpe[pos]
    'x0', 'rstd0',       # (R,C), (R,) its rmsnorm, the first layer's input, and 1/rms
    'ln1', 'rstd1',      # (L,R,C), (L,R) rmsnorm of the layer input
    'qkv',               # (L,R,3C) q, k, v side by side; k and v are the KV cache
    'att_exps',          # (L,H,R,T) attention's exps, exp(q.k * scale - max), query row
                         # by its key's position: its weights are these times their
                         # total ** -1; kept for the backward, which needs both
    'atty',              # (L,R,C) attention output, heads side by side
    'attn',              # (L,R,C) its projection by attn_wo
    'res2',              # (L,R,C) attn + layer input: the residual stream after attention
    'ln2', 'rstd2',      # (L,R,C), (L,R) rmsnorm of res2
    'fc1', 'fc1_relu',   # (L,R,4C) before and after ReLU
    'fc2',               # (L,R,C)
    'out',               # (L,R,C) fc2 + res2: the layer's output
    'logits', 'exps', 'probs',   # (R,V) each; exps: exp(logits - max), as softmax() has
    'losses',            # (R,) -log(probs[target]) per row
    'loss',              # (1,) the step's loss: the mean over documents of their means
    'target_logit',      # (R,) in dA: the target logit's gradient, set aside while lm_head's
                         # input hears from the other rows (lm_head_backward_input)
])


def model_function(f):
    """Mark f as a model function: bind() copies it for a backend (MODEL_FUNCTIONS)."""
    f.model_function = 'serial'
    return f


def parallel_model_function(f):
    """Mark f as a model function with a loop over `prange`, whose parts a backend's
    threads may run at once (PARALLEL_FUNCTIONS)."""
    f.model_function = 'parallel'
    return f


@model_function
def take(flat, offset, shape):
    """The view of flat[offset:] with this shape, and the offset just past it."""
    size = 1
    for dim in shape:
        size *= dim
    return flat[offset:offset + size].reshape(shape), offset + size


@model_function
def params_view(flat, hp):
    V, T, C, L = hp.vocab_size, hp.block_size, hp.n_embd, hp.n_layer
    wte, o = take(flat, 0, (V, C))
    wpe, o = take(flat, o, (T, C))
    lm_head, o = take(flat, o, (V, C))
    attn_qkv, o = take(flat, o, (L, 3 * C, C))
    attn_wo, o = take(flat, o, (L, C, C))
    mlp_fc1, o = take(flat, o, (L, 4 * C, C))
    mlp_fc2, o = take(flat, o, (L, C, 4 * C))
    return Params(wte, wpe, lm_head, attn_qkv, attn_wo, mlp_fc1, mlp_fc2)


def params_size(hp):
    V, T, C, L = hp.vocab_size, hp.block_size, hp.n_embd, hp.n_layer
    return (2 * V + T) * C + L * 12 * C * C


@model_function
def acts_view(flat, hp, R):
    """The activations of R rows, as views of `flat`."""
    V, T, C, H, L = hp.vocab_size, hp.block_size, hp.n_embd, hp.n_head, hp.n_layer
    emb, o = take(flat, 0, (R, C))
    x0, o = take(flat, o, (R, C))
    rstd0, o = take(flat, o, (R,))
    ln1, o = take(flat, o, (L, R, C))
    rstd1, o = take(flat, o, (L, R))
    qkv, o = take(flat, o, (L, R, 3 * C))
    att_exps, o = take(flat, o, (L, H, R, T))
    atty, o = take(flat, o, (L, R, C))
    attn, o = take(flat, o, (L, R, C))
    res2, o = take(flat, o, (L, R, C))
    ln2, o = take(flat, o, (L, R, C))
    rstd2, o = take(flat, o, (L, R))
    fc1, o = take(flat, o, (L, R, 4 * C))
    fc1_relu, o = take(flat, o, (L, R, 4 * C))
    fc2, o = take(flat, o, (L, R, C))
    out, o = take(flat, o, (L, R, C))
    logits, o = take(flat, o, (R, V))
    exps, o = take(flat, o, (R, V))
    probs, o = take(flat, o, (R, V))
    losses, o = take(flat, o, (R,))
    loss, o = take(flat, o, (1,))
    target_logit, o = take(flat, o, (R,))
    return Acts(emb, x0, rstd0, ln1, rstd1, qkv, att_exps, atty, attn, res2, ln2, rstd2,
                fc1, fc1_relu, fc2, out, logits, exps, probs, losses, loss, target_logit)


def acts_size(hp, R):
    V, T, C, H, L = hp.vocab_size, hp.block_size, hp.n_embd, hp.n_head, hp.n_layer
    return (2 * R * C + R + L * (2 * R + 10 * R * C + 2 * R * 4 * C + H * R * T) + 3 * R * V
            + 2 * R + 1)


@model_function
def forward(P, A, tokens, pos, a, n, hp):
    """Logits for rows a .. a+n-1, whose input token ids are `tokens` (n,) and whose
    positions in their documents are `pos` (n,).

    Writes those rows of every activation; attention reads the k and v rows of a row's
    document up to the row itself (the rows pos[i] before row a+i, which must hold them).
    """
    b = a + n
    K.encoder_forward(A.emb[a:b], tokens, pos, P.wte, P.wpe)
    K.rmsnorm_forward(A.x0[a:b], A.rstd0[a:b], A.emb[a:b], hp.inv_C, hp.rms_eps)
    x = A.x0
    for l in range(hp.n_layer):
        # 1) Multi-head causal attention
        K.rmsnorm_forward(A.ln1[l, a:b], A.rstd1[l, a:b], x[a:b], hp.inv_C, hp.rms_eps)
        K.matmul_forward(A.qkv[l, a:b], A.ln1[l, a:b], P.attn_qkv[l])
        K.attention_forward(A.atty[l], A.att_exps[l], A.qkv[l], pos, a, n, hp.n_head,
                            hp.attn_scale)
        K.matmul_forward(A.attn[l, a:b], A.atty[l, a:b], P.attn_wo[l])
        K.residual_forward(A.res2[l, a:b], A.attn[l, a:b], x[a:b])
        # 2) MLP
        K.rmsnorm_forward(A.ln2[l, a:b], A.rstd2[l, a:b], A.res2[l, a:b], hp.inv_C, hp.rms_eps)
        K.matmul_forward(A.fc1[l, a:b], A.ln2[l, a:b], P.mlp_fc1[l])
        K.relu_forward(A.fc1_relu[l, a:b], A.fc1[l, a:b])
        K.matmul_forward(A.fc2[l, a:b], A.fc1_relu[l, a:b], P.mlp_fc2[l])
        K.residual_forward(A.out[l, a:b], A.fc2[l, a:b], A.res2[l, a:b])
        x = A.out[l]
    K.matmul_forward(A.logits[a:b], x[a:b], P.lm_head)


def backward_orders(hp):
    """The order in which each linear layer's input gradient receives its output rows'
    contributions in the scalar graph (microgpt/orders.py says why), as Orders: each the
    distinct orders a position may take, as rows of output indices."""
    C, H, V = hp.n_embd, hp.n_head, hp.vocab_size
    def as_rows(*orders):
        return np.array(orders, dtype=np.int64)
    return Orders(qkv=as_rows(*qkv_orders(C, H)), rows_C=as_rows(rows_last_first(C)),
                  rows_4C=as_rows(rows_last_first(4 * C)), rows_V=as_rows(rows_last_first(V)),
                  same=np.zeros(hp.batch_size * hp.block_size, dtype=np.int64))


@model_function
def lm_head_backward_input(dinp, dlogits, w, targets, dtargets, orders, same):
    """lm_head's input gradient: the vocabulary's rows last to first, but the target's
    last (orders.lm_head_order), with one order for every row, not one per target (a
    V x V table). The target's gradient is set aside (dtargets), its place in dlogits
    zeroed, so that the rows last to first add 0.0 for it, which leaves every partial
    sum as it is (a sum from 0.0 is never -0.0, and s + 0.0 == s); then the target's
    term comes last, and its gradient goes back into dlogits."""
    K.target_logit_aside(dtargets, dlogits, targets)
    K.matmul_backward_input(dinp, dlogits, w, orders.rows_V, same)
    K.target_logit_backward(dinp, dlogits, w, targets, dtargets)


@model_function
def backward_rows(P, A, dA, batch, a, b, hp, orders):
    """The activations' gradients of rows a..b-1, whole documents, accumulated into dA,
    each node's contributions added in the scalar graph's order (backward_orders). No
    parameter's gradient: those sum over every row (backward_weights), and no
    activation's gradient depends on them."""
    n = b - a
    pos = batch.pos[a:b]
    same = orders.same[a:b]
    K.crossentropy_softmax_backward(dA.logits[a:b], A.exps[a:b], batch.targets[a:b],
                                    batch.ndoc[a:b], hp.inv_batch)
    last = hp.n_layer - 1
    lm_head_backward_input(dA.out[last, a:b], dA.logits[a:b], P.lm_head, batch.targets[a:b],
                           dA.target_logit[a:b], orders, same)
    for l in range(last, -1, -1):
        x = A.x0 if l == 0 else A.out[l - 1]     # the layer's input and its gradient
        dx = dA.x0 if l == 0 else dA.out[l - 1]
        # 2) MLP, backwards. The layer's output gradient is complete; res2 hears from
        # the residual first, then from its rmsnorm.
        K.residual_backward(dA.fc2[l, a:b], dA.res2[l, a:b], dA.out[l, a:b])
        K.matmul_backward_input(dA.fc1_relu[l, a:b], dA.fc2[l, a:b], P.mlp_fc2[l],
                                orders.rows_C, same)
        K.relu_backward(dA.fc1[l, a:b], dA.fc1_relu[l, a:b], A.fc1[l, a:b])
        K.matmul_backward_input(dA.ln2[l, a:b], dA.fc1[l, a:b], P.mlp_fc1[l], orders.rows_4C,
                                same)
        K.rmsnorm_backward(dA.res2[l, a:b], dA.ln2[l, a:b], A.res2[l, a:b], A.rstd2[l, a:b],
                           hp.inv_C, hp.rms_eps)
        # 1) attention, backwards; likewise the layer input hears from the residual first
        K.residual_backward(dA.attn[l, a:b], dx[a:b], dA.res2[l, a:b])
        K.matmul_backward_input(dA.atty[l, a:b], dA.attn[l, a:b], P.attn_wo[l], orders.rows_C,
                                same)
        K.attention_backward(dA.qkv[l], dA.atty[l], A.qkv[l], A.att_exps[l], pos, a, n,
                             hp.n_head, hp.attn_scale)
        K.matmul_backward_input(dA.ln1[l, a:b], dA.qkv[l, a:b], P.attn_qkv[l], orders.qkv,
                                batch.later[a:b])
        K.rmsnorm_backward(dx[a:b], dA.ln1[l, a:b], x[a:b], A.rstd1[l, a:b], hp.inv_C,
                           hp.rms_eps)
    K.rmsnorm_backward(dA.emb[a:b], dA.x0[a:b], A.emb[a:b], A.rstd0[a:b], hp.inv_C, hp.rms_eps)


@model_function
def part_rows(size, part, parts):
    """Part `part` of `parts` near-equal ranges of range(size): (start, stop)."""
    return part * size // parts, (part + 1) * size // parts


@model_function
def backward_weights(G, A, dA, batch, n, hp, part, parts):
    """The parameters' gradients over rows 0..n-1, whose activations' gradients are
    complete, accumulated into G: part `part` of `parts`, a range of each weight's rows
    (its outputs). Each element hears from the rows last to first (backward_orders),
    whichever part computes it; the embeddings' gradients go to the last part."""
    last = hp.n_layer - 1
    V, C = hp.vocab_size, hp.n_embd
    v0, v1 = part_rows(V, part, parts)
    c0, c1 = part_rows(C, part, parts)
    f0, f1 = part_rows(4 * C, part, parts)
    q0, q1 = part_rows(3 * C, part, parts)
    K.matmul_backward_weight(G.lm_head, dA.logits[:n], A.out[last, :n], v0, v1)
    for l in range(last, -1, -1):
        K.matmul_backward_weight(G.mlp_fc2[l], dA.fc2[l, :n], A.fc1_relu[l, :n], c0, c1)
        K.matmul_backward_weight(G.mlp_fc1[l], dA.fc1[l, :n], A.ln2[l, :n], f0, f1)
        K.matmul_backward_weight(G.attn_wo[l], dA.attn[l, :n], A.atty[l, :n], c0, c1)
        K.matmul_backward_weight(G.attn_qkv[l], dA.qkv[l, :n], A.ln1[l, :n], q0, q1)
    if part == parts - 1:
        K.encoder_backward(G.wte, G.wpe, dA.emb[:n], batch.tokens[:n], batch.pos[:n])


@model_function
def zero_activation_grads(dA, a, b, hp):
    """Zero the activation gradients backward_rows() accumulates into, in rows a..b-1:
    of a batch's workspace of R rows, a step uses n (fewer when its documents are
    short), and no gradient is taken of the exps, probs, losses or 1/rms."""
    K.zero(dA.emb[a:b])
    K.zero(dA.x0[a:b])
    for l in range(hp.n_layer):
        K.zero(dA.ln1[l, a:b])
        K.zero(dA.qkv[l, a:b])
        K.zero(dA.atty[l, a:b])
        K.zero(dA.attn[l, a:b])
        K.zero(dA.res2[l, a:b])
        K.zero(dA.ln2[l, a:b])
        K.zero(dA.fc1[l, a:b])
        K.zero(dA.fc1_relu[l, a:b])
        K.zero(dA.fc2[l, a:b])
        K.zero(dA.out[l, a:b])
    K.zero(dA.logits[a:b])


@model_function
def step_rows(P, A, dA, batch, a, b, hp, orders):
    """Rows a..b-1 of a training step, whole documents: the forward, the softmax and the
    activations' gradients, all of which stay within a document."""
    forward(P, A, batch.tokens[a:b], batch.pos[a:b], a, b - a, hp)
    K.softmax_forward(A.probs[a:b], A.exps[a:b], A.logits[a:b], 1.0)
    zero_activation_grads(dA, a, b, hp)
    backward_rows(P, A, dA, batch, a, b, hp, orders)


@model_function
def adam_update(flat, adam, a, b):
    """Adam's update of parameters a..b-1."""
    K.adam_update(flat.params[a:b], flat.grads[a:b], flat.m[a:b], flat.v[a:b], adam.lr,
                  adam.beta1, adam.beta2, adam.one_minus_beta1, adam.one_minus_beta2,
                  adam.bias1, adam.bias2, adam.eps)


@model_function
def part_bounds(ndoc, n, parts):
    """Rows 0..n-1, documents of ndoc[t] rows each (row t's document), in `parts` parts
    of whole documents, near-equal in rows: bounds (parts+1,), part p the rows
    bounds[p]..bounds[p+1]-1, cut at the document ends nearest p*n/parts. Plain loops,
    for a compiling backend; `parts` is at most the number of documents."""
    starts = np.empty(n + 1, dtype=np.int64)      # where each document's rows start
    docs = t = 0
    while t < n:
        starts[docs] = t
        docs += 1
        t += ndoc[t]
    starts[docs] = n
    bounds = np.empty(parts + 1, dtype=np.int64)
    bounds[0], bounds[parts] = 0, n
    j = 0
    for p in range(1, parts):
        share = p * n // parts
        j += 1                                    # a document at least in each part
        while j < docs - (parts - p) and abs(starts[j + 1] - share) < abs(starts[j] - share):
            j += 1
        bounds[p] = starts[j]
    return bounds


@parallel_model_function
def rows_in_parts(P, A, dA, batch, n, parts, hp, orders):
    """step_rows() in `parts` parts of whole documents (part_bounds), at once."""
    bounds = part_bounds(batch.ndoc, n, parts)
    for p in prange(parts):
        step_rows(P, A, dA, batch, bounds[p], bounds[p + 1], hp, orders)


@parallel_model_function
def weights_in_parts(G, A, dA, batch, n, hp, parts):
    """backward_weights() in `parts` parts at once."""
    for p in prange(parts):
        backward_weights(G, A, dA, batch, n, hp, p, parts)


@parallel_model_function
def adam_in_parts(flat, adam, parts):
    """Adam's update in `parts` ranges of the parameters at once."""
    for p in prange(parts):
        a, b = part_rows(flat.params.shape[0], p, parts)
        adam_update(flat, adam, a, b)


@model_function
def step_whole(flat, P, G, A, dA, batch, n, hp, adam, orders):
    """A training step in one part, less its loss: forward, backward, Adam."""
    forward(P, A, batch.tokens[:n], batch.pos[:n], 0, n, hp)
    K.softmax_forward(A.probs[:n], A.exps[:n], A.logits[:n], 1.0)
    zero_activation_grads(dA, 0, n, hp)
    backward_rows(P, A, dA, batch, 0, n, hp, orders)
    backward_weights(G, A, dA, batch, n, hp, 0, 1)
    adam_update(flat, adam, 0, flat.params.shape[0])


@model_function
def train_step(flat, P, G, A, dA, batch, n, hp, adam, orders):
    """One training step on a batch of documents, packed into n rows (Batch): forward,
    backward, Adam. P, G, A and dA are views of flat's parameters, gradients,
    activations and their gradients. Returns the step's loss as a float.

    The step goes in parts that may run at once (K.step_parts says how many; `prange`
    runs them on a backend's threads): first its documents, each part whole documents
    (part_bounds), since all of a step but the parameters' gradients stays within a
    document; then the parameters' gradients, part p a range of every weight's rows;
    then Adam, part p a range of the parameters. No float depends on the parts: each
    is computed whole by one of them, its sums in order. Each of the three is a
    function of its own, so that no compiler can fuse their loops (numba would, and
    run Adam on gradients not yet complete). One part runs on the calling thread,
    without a parallel region (step_whole): a default step is some 35 us, and a region
    costs it a little. gpu/fused.py runs step_whole() in one launch.
    """
    K.zero(flat.grads)
    parts = K.step_parts(batch.ndoc, n, hp)
    if parts == 1:
        step_whole(flat, P, G, A, dA, batch, n, hp, adam, orders)
    else:
        rows_in_parts(P, A, dA, batch, n, parts, hp, orders)
        weights_in_parts(G, A, dA, batch, n, hp, parts)
        adam_in_parts(flat, adam, parts)
    K.crossentropy_forward(A.losses[:n], A.loss, A.probs[:n], batch.targets[:n],
                           batch.ndoc[:n], hp.inv_batch)
    return A.loss[0]


@model_function
def train_steps(flat, batch, tokens, lengths, schedule, hp, adam, orders, losses):
    """Training steps one after another, in one call: step s trains on the documents
    tokens[s] (S,B,T+1), the first lengths[s, b]+1 ids of document b, packed into
    `batch` (a Batch workspace); with Adam's per-step scalars schedule[s] (lr, bias1,
    bias2; the rest as in `adam`). Its loss goes to losses[s]."""
    R = hp.batch_size * hp.block_size
    P, G = params_view(flat.params, hp), params_view(flat.grads, hp)
    A, dA = acts_view(flat.acts, hp, R), acts_view(flat.dacts, hp, R)
    for s in range(tokens.shape[0]):
        step = AdamStep(schedule[s, 0], adam.beta1, adam.beta2, adam.one_minus_beta1,
                        adam.one_minus_beta2, schedule[s, 1], schedule[s, 2], adam.eps)
        n = K.pack_batch(batch, tokens[s], lengths[s])
        losses[s] = train_step(flat, P, G, A, dA, batch, n, hp, step, orders)


@model_function
def sample_step(params, acts, token, pos, hp, inv_temperature):
    """Next-token probabilities after `token` (1,) at position pos[0] (pos (1,)), into
    that row's probs in the activations (block_size rows: one document); their k and v
    rows before it are this sample's KV cache."""
    A = acts_view(acts, hp, hp.block_size)
    p = pos[0]
    forward(params_view(params, hp), A, token, pos, p, 1, hp)
    K.softmax_forward(A.probs[p:p + 1], A.exps[p:p + 1], A.logits[p:p + 1], inv_temperature)


# The functions bind() copies, marked above (@model_function); those with a loop over
# `prange`, whose parts a backend's threads run (@parallel_model_function).
MODEL_FUNCTIONS = tuple(name for name, f in list(globals().items())
                        if getattr(f, 'model_function', None))
PARALLEL_FUNCTIONS = tuple(name for name in MODEL_FUNCTIONS
                           if globals()[name].model_function == 'parallel')


def bind(kernels, wrap=None, wrap_parallel=None):
    """This module's model functions, calling `kernels` as K.

    Each function is copied with a globals dict in which K is `kernels` and the model
    functions are the bound copies, so train_step's call to forward() stays within the
    copy. `wrap` (numba's njit, say) is applied to every copy, `wrap_parallel` (njit
    with parallel=True) to those of PARALLEL_FUNCTIONS, whose `prange` is then the
    kernels' own: called from compiled code, they compile into one native train_step.
    Without them, prange is range: the parts run one after the other.
    """
    prange = getattr(kernels, 'prange', range) if wrap_parallel else range
    ns = dict(globals(), K=kernels, prange=prange)
    for name in MODEL_FUNCTIONS:
        f = globals()[name]
        copy = types.FunctionType(f.__code__, ns, f.__name__, f.__defaults__, f.__closure__)
        use = wrap_parallel if name in PARALLEL_FUNCTIONS and wrap_parallel else wrap
        ns[name] = use(copy) if use else copy
    return types.SimpleNamespace(**{name: ns[name] for name in MODEL_FUNCTIONS})
