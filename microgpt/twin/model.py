"""The twin: the reference model in matrix form, with a hand-written backward.

Written once, against a kernel namespace `K` that a backend supplies (numpy here, numba
loops in jit/, numba.cuda in gpu/); bind() makes a copy of these functions that calls a
given backend, and for jit/ compiles that copy whole, so a training step is one native
call. Every kernel writes into arrays it is given: forward kernels overwrite their
output, backward kernels *accumulate* into their d-prefixed gradients (llm.c's
convention), so a tensor read by two consumers simply receives both contributions.

Training runs a document's n positions at once under a causal mask, the same
computation as the reference's position-by-position KV cache. Activations live in a
workspace of block_size rows, indexed by absolute position, so sampling reuses the very
same forward: one position at a time, the k and v rows of earlier positions being the
KV cache. Shapes: T = block_size, C = n_embd, V = vocab_size, H = n_head.
"""
import types
from collections import namedtuple

K = None  # the backend's kernels; each bound copy of this module's functions has its own

# Scalars: the sizes, and constants computed in Python exactly as the reference does.
HParams = namedtuple('HParams', 'vocab_size block_size n_embd n_head n_layer '
                                'inv_C rms_eps attn_scale')
# The flat arrays behind everything: parameters, their gradients, Adam's two moments,
# the activations and their gradients. Six arrays are all a compiled step is given.
Flat = namedtuple('Flat', 'params grads m v acts dacts')
# One Adam step's scalars (see TwinGPT.adam_step).
AdamStep = namedtuple('AdamStep', 'lr beta1 beta2 one_minus_beta1 one_minus_beta2 bias1 bias2 eps')

# Parameters (and, same layout, their gradients): views of a flat array. Per-layer
# weights are stacked, layer first: attn_wq[l] is layer l's (C,C) matrix.
Params = namedtuple('Params', [
    'wte', 'wpe', 'lm_head',                       # (V,C), (T,C), (V,C)
    'attn_wq', 'attn_wk', 'attn_wv', 'attn_wo',    # (L,C,C) each
    'mlp_fc1', 'mlp_fc2',                          # (L,4C,C), (L,C,4C)
])
# Activations (and, same layout, their gradients) by absolute position; per layer, stacked.
Acts = namedtuple('Acts', [
    'emb',               # (T,C) wte[token] + wpe[pos]
    'x0', 'rstd0',       # (T,C), (T,) its rmsnorm, the first layer's input, and 1/rms
    'ln1', 'rstd1',      # (L,T,C), (L,T) rmsnorm of the layer input
    'q', 'k', 'v',       # (L,T,C) each; k and v are the KV cache
    'att',               # (L,H,T,T) attention weights, query row by key column
    'atty',              # (L,T,C) attention output, heads side by side
    'attn',              # (L,T,C) its projection by attn_wo
    'res2',              # (L,T,C) attn + layer input: the residual stream after attention
    'ln2', 'rstd2',      # (L,T,C), (L,T) rmsnorm of res2
    'fc1', 'fc1_relu',   # (L,T,4C) before and after ReLU
    'fc2',               # (L,T,C)
    'out',               # (L,T,C) fc2 + res2: the layer's output
    'logits', 'probs',   # (T,V) each
    'losses',            # (T,) -log(probs[target]) per position
    'loss',              # (1,) their mean
])


def take(flat, offset, shape):
    """The view of flat[offset:] with this shape, and the offset just past it."""
    size = 1
    for dim in shape:
        size *= dim
    return flat[offset:offset + size].reshape(shape), offset + size


def params_view(flat, hp):
    V, T, C, L = hp.vocab_size, hp.block_size, hp.n_embd, hp.n_layer
    wte, o = take(flat, 0, (V, C))
    wpe, o = take(flat, o, (T, C))
    lm_head, o = take(flat, o, (V, C))
    attn_wq, o = take(flat, o, (L, C, C))
    attn_wk, o = take(flat, o, (L, C, C))
    attn_wv, o = take(flat, o, (L, C, C))
    attn_wo, o = take(flat, o, (L, C, C))
    mlp_fc1, o = take(flat, o, (L, 4 * C, C))
    mlp_fc2, o = take(flat, o, (L, C, 4 * C))
    return Params(wte, wpe, lm_head, attn_wq, attn_wk, attn_wv, attn_wo, mlp_fc1, mlp_fc2)


def params_size(hp):
    V, T, C, L = hp.vocab_size, hp.block_size, hp.n_embd, hp.n_layer
    return (2 * V + T) * C + L * 12 * C * C


def acts_view(flat, hp):
    V, T, C, H, L = hp.vocab_size, hp.block_size, hp.n_embd, hp.n_head, hp.n_layer
    emb, o = take(flat, 0, (T, C))
    x0, o = take(flat, o, (T, C))
    rstd0, o = take(flat, o, (T,))
    ln1, o = take(flat, o, (L, T, C))
    rstd1, o = take(flat, o, (L, T))
    q, o = take(flat, o, (L, T, C))
    k, o = take(flat, o, (L, T, C))
    v, o = take(flat, o, (L, T, C))
    att, o = take(flat, o, (L, H, T, T))
    atty, o = take(flat, o, (L, T, C))
    attn, o = take(flat, o, (L, T, C))
    res2, o = take(flat, o, (L, T, C))
    ln2, o = take(flat, o, (L, T, C))
    rstd2, o = take(flat, o, (L, T))
    fc1, o = take(flat, o, (L, T, 4 * C))
    fc1_relu, o = take(flat, o, (L, T, 4 * C))
    fc2, o = take(flat, o, (L, T, C))
    out, o = take(flat, o, (L, T, C))
    logits, o = take(flat, o, (T, V))
    probs, o = take(flat, o, (T, V))
    losses, o = take(flat, o, (T,))
    loss, o = take(flat, o, (1,))
    return Acts(emb, x0, rstd0, ln1, rstd1, q, k, v, att, atty, attn, res2, ln2, rstd2,
                fc1, fc1_relu, fc2, out, logits, probs, losses, loss)


def acts_size(hp):
    V, T, C, H, L = hp.vocab_size, hp.block_size, hp.n_embd, hp.n_head, hp.n_layer
    return 2 * T * C + T + L * (2 * T + 10 * T * C + 2 * T * 4 * C + H * T * T) + 2 * T * V + T + 1


def forward(P, A, tokens, pos0, n, hp):
    """Logits for positions pos0 .. pos0+n-1, whose input token ids are `tokens` (n,).

    Writes their rows of every activation; attention reads the k and v rows of all
    positions up to each query's own (rows below pos0 must hold earlier positions).
    """
    a, b = pos0, pos0 + n
    K.encoder_forward(A.emb[a:b], tokens, pos0, P.wte, P.wpe)
    K.rmsnorm_forward(A.x0[a:b], A.rstd0[a:b], A.emb[a:b], hp.inv_C, hp.rms_eps)
    x = A.x0
    for l in range(hp.n_layer):
        # 1) Multi-head causal attention
        K.rmsnorm_forward(A.ln1[l, a:b], A.rstd1[l, a:b], x[a:b], hp.inv_C, hp.rms_eps)
        K.matmul_forward(A.q[l, a:b], A.ln1[l, a:b], P.attn_wq[l])
        K.matmul_forward(A.k[l, a:b], A.ln1[l, a:b], P.attn_wk[l])
        K.matmul_forward(A.v[l, a:b], A.ln1[l, a:b], P.attn_wv[l])
        K.attention_forward(A.atty[l], A.att[l], A.q[l], A.k[l], A.v[l], pos0, n, hp.n_head,
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


def backward(P, G, A, dA, tokens, n, hp):
    """Gradients of the mean loss over positions 0..n-1, accumulated into G (and dA)."""
    K.crossentropy_softmax_backward(dA.logits[:n], A.probs[:n], tokens[1:n + 1], n)
    last = hp.n_layer - 1
    K.matmul_backward(dA.out[last, :n], G.lm_head, dA.logits[:n], A.out[last, :n], P.lm_head)
    for l in range(last, -1, -1):
        x = A.x0 if l == 0 else A.out[l - 1]     # the layer's input and its gradient
        dx = dA.x0 if l == 0 else dA.out[l - 1]
        # 2) MLP, backwards
        K.residual_backward(dA.fc2[l, :n], dA.res2[l, :n], dA.out[l, :n])
        K.matmul_backward(dA.fc1_relu[l, :n], G.mlp_fc2[l], dA.fc2[l, :n], A.fc1_relu[l, :n],
                          P.mlp_fc2[l])
        K.relu_backward(dA.fc1[l, :n], dA.fc1_relu[l, :n], A.fc1[l, :n])
        K.matmul_backward(dA.ln2[l, :n], G.mlp_fc1[l], dA.fc1[l, :n], A.ln2[l, :n], P.mlp_fc1[l])
        K.rmsnorm_backward(dA.res2[l, :n], dA.ln2[l, :n], A.res2[l, :n], A.rstd2[l, :n], hp.inv_C)
        # 1) attention, backwards
        K.residual_backward(dA.attn[l, :n], dx[:n], dA.res2[l, :n])
        K.matmul_backward(dA.atty[l, :n], G.attn_wo[l], dA.attn[l, :n], A.atty[l, :n],
                          P.attn_wo[l])
        K.attention_backward(dA.q[l], dA.k[l], dA.v[l], dA.atty[l], A.q[l], A.k[l], A.v[l],
                             A.att[l], n, hp.n_head, hp.attn_scale)
        K.matmul_backward(dA.ln1[l, :n], G.attn_wq[l], dA.q[l, :n], A.ln1[l, :n], P.attn_wq[l])
        K.matmul_backward(dA.ln1[l, :n], G.attn_wk[l], dA.k[l, :n], A.ln1[l, :n], P.attn_wk[l])
        K.matmul_backward(dA.ln1[l, :n], G.attn_wv[l], dA.v[l, :n], A.ln1[l, :n], P.attn_wv[l])
        K.rmsnorm_backward(dx[:n], dA.ln1[l, :n], x[:n], A.rstd1[l, :n], hp.inv_C)
    K.rmsnorm_backward(dA.emb[:n], dA.x0[:n], A.emb[:n], A.rstd0[:n], hp.inv_C)
    K.encoder_backward(G.wte, G.wpe, dA.emb[:n], tokens[:n])


def train_step(flat, tokens, n, hp, adam):
    """One training step on one document, tokens (n+1,): forward over its n positions,
    backward, Adam. Returns the mean loss as a float."""
    P, G = params_view(flat.params, hp), params_view(flat.grads, hp)
    A, dA = acts_view(flat.acts, hp), acts_view(flat.dacts, hp)
    forward(P, A, tokens[:n], 0, n, hp)
    K.softmax_forward(A.probs[:n], A.logits[:n], 1.0)
    K.crossentropy_forward(A.losses[:n], A.loss, A.probs[:n], tokens[1:n + 1])
    K.zero(flat.grads)
    K.zero(flat.dacts)
    backward(P, G, A, dA, tokens, n, hp)
    K.adam_update(flat.params, flat.grads, flat.m, flat.v, adam.lr, adam.beta1, adam.beta2,
                  adam.one_minus_beta1, adam.one_minus_beta2, adam.bias1, adam.bias2, adam.eps)
    return A.loss[0]


def sample_step(params, acts, token, pos, hp, inv_temperature):
    """Next-token probabilities after `token` (1,) at position pos, into probs[pos] of
    the activations; their k and v rows 0..pos-1 are this sample's KV cache."""
    A = acts_view(acts, hp)
    forward(params_view(params, hp), A, token, pos, token.shape[0], hp)
    K.softmax_forward(A.probs[pos:pos + 1], A.logits[pos:pos + 1], inv_temperature)


MODEL_FUNCTIONS = ('take', 'params_view', 'acts_view', 'forward', 'backward', 'train_step',
                   'sample_step')


def bind(kernels, wrap=None):
    """This module's model functions, calling `kernels` as K.

    Each function is copied with a globals dict in which K is `kernels` and the model
    functions are the bound copies, so train_step's call to forward() stays within the
    copy. `wrap` (numba's njit, say) is applied to every copy: called from compiled
    code, they compile into one native train_step.
    """
    ns = dict(globals(), K=kernels)
    for name in MODEL_FUNCTIONS:
        f = globals()[name]
        copy = types.FunctionType(f.__code__, ns, f.__name__, f.__defaults__, f.__closure__)
        ns[name] = wrap(copy) if wrap else copy
    return types.SimpleNamespace(**{name: ns[name] for name in MODEL_FUNCTIONS})
