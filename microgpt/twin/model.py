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

# Parameters (and, with the same layout, their gradients): views of one flat array in
# the reference's order, so Adam runs over flat arrays and init fills them in RNG order.
Layer = namedtuple('Layer', 'attn_wq attn_wk attn_wv attn_wo mlp_fc1 mlp_fc2')
# attn_w* are (C,C), mlp_fc1 is (4C,C), mlp_fc2 is (C,4C)
Params = namedtuple('Params', 'wte wpe lm_head layers')  # (V,C) (T,C) (V,C) tuple[Layer]

# Activations (and, with the same layout, their gradients), by absolute position.
LayerActs = namedtuple('LayerActs', [
    'ln1', 'rstd1',      # (T,C) rmsnorm of the layer input, (T,) its 1/rms
    'q', 'k', 'v',       # (T,C) each; k and v are this layer's KV cache
    'att',               # (H,T,T) attention weights, query row by key column
    'atty',              # (T,C) attention output, heads side by side
    'attn',              # (T,C) its projection by attn_wo
    'res2',              # (T,C) attn + layer input: the residual stream after attention
    'ln2', 'rstd2',      # (T,C), (T,) rmsnorm of res2
    'fc1', 'fc1_relu',   # (T,4C) before and after ReLU
    'fc2',               # (T,C)
    'out',               # (T,C) fc2 + res2: the layer's output
])
Acts = namedtuple('Acts', [
    'emb',               # (T,C) wte[token] + wpe[pos]
    'x0', 'rstd0',       # (T,C), (T,) its rmsnorm: the first layer's input
    'layers',            # tuple[LayerActs]
    'logits', 'probs',   # (T,V) each
    'losses',            # (T,) -log(probs[target]) per position
    'loss',              # (1,) their mean
])
# Scalars the kernels need, computed in Python exactly as the reference computes them.
HParams = namedtuple('HParams', 'n_head inv_C rms_eps attn_scale')
# The flat arrays behind the views: parameters, their gradients, Adam's two moments,
# and the gradients of the activations (zeroed together at each step).
Flat = namedtuple('Flat', 'params grads m v dacts')
# One Adam step's scalars (see TwinGPT.train_step).
AdamStep = namedtuple('AdamStep', 'lr beta1 beta2 one_minus_beta1 one_minus_beta2 bias1 bias2 eps')


def forward(P, A, tokens, pos0, n, hp):
    """Logits for positions pos0 .. pos0+n-1, whose input token ids are `tokens` (n,).

    Writes their rows of every activation; attention reads the k and v rows of all
    positions up to each query's own (rows below pos0 must hold earlier positions).
    """
    a, b = pos0, pos0 + n
    K.encoder_forward(A.emb[a:b], tokens, pos0, P.wte, P.wpe)
    K.rmsnorm_forward(A.x0[a:b], A.rstd0[a:b], A.emb[a:b], hp.inv_C, hp.rms_eps)
    x = A.x0
    for l in range(len(P.layers)):
        W, L = P.layers[l], A.layers[l]
        # 1) Multi-head causal attention
        K.rmsnorm_forward(L.ln1[a:b], L.rstd1[a:b], x[a:b], hp.inv_C, hp.rms_eps)
        K.matmul_forward(L.q[a:b], L.ln1[a:b], W.attn_wq)
        K.matmul_forward(L.k[a:b], L.ln1[a:b], W.attn_wk)
        K.matmul_forward(L.v[a:b], L.ln1[a:b], W.attn_wv)
        K.attention_forward(L.atty, L.att, L.q, L.k, L.v, pos0, n, hp.n_head, hp.attn_scale)
        K.matmul_forward(L.attn[a:b], L.atty[a:b], W.attn_wo)
        K.residual_forward(L.res2[a:b], L.attn[a:b], x[a:b])
        # 2) MLP
        K.rmsnorm_forward(L.ln2[a:b], L.rstd2[a:b], L.res2[a:b], hp.inv_C, hp.rms_eps)
        K.matmul_forward(L.fc1[a:b], L.ln2[a:b], W.mlp_fc1)
        K.relu_forward(L.fc1_relu[a:b], L.fc1[a:b])
        K.matmul_forward(L.fc2[a:b], L.fc1_relu[a:b], W.mlp_fc2)
        K.residual_forward(L.out[a:b], L.fc2[a:b], L.res2[a:b])
        x = L.out
    K.matmul_forward(A.logits[a:b], x[a:b], P.lm_head)


def backward(P, G, A, dA, tokens, n, hp):
    """Gradients of the mean loss over positions 0..n-1, accumulated into G (and dA)."""
    K.crossentropy_softmax_backward(dA.logits[:n], A.probs[:n], tokens[1:n + 1], n)
    last = len(P.layers) - 1
    K.matmul_backward(dA.layers[last].out[:n], G.lm_head, dA.logits[:n],
                      A.layers[last].out[:n], P.lm_head)
    for l in range(last, -1, -1):
        W, dW, L, dL = P.layers[l], G.layers[l], A.layers[l], dA.layers[l]
        x = A.x0 if l == 0 else A.layers[l - 1].out
        dx = dA.x0 if l == 0 else dA.layers[l - 1].out
        # 2) MLP, backwards
        K.residual_backward(dL.fc2[:n], dL.res2[:n], dL.out[:n])
        K.matmul_backward(dL.fc1_relu[:n], dW.mlp_fc2, dL.fc2[:n], L.fc1_relu[:n], W.mlp_fc2)
        K.relu_backward(dL.fc1[:n], dL.fc1_relu[:n], L.fc1[:n])
        K.matmul_backward(dL.ln2[:n], dW.mlp_fc1, dL.fc1[:n], L.ln2[:n], W.mlp_fc1)
        K.rmsnorm_backward(dL.res2[:n], dL.ln2[:n], L.res2[:n], L.rstd2[:n], hp.inv_C)
        # 1) attention, backwards
        K.residual_backward(dL.attn[:n], dx[:n], dL.res2[:n])
        K.matmul_backward(dL.atty[:n], dW.attn_wo, dL.attn[:n], L.atty[:n], W.attn_wo)
        K.attention_backward(dL.q, dL.k, dL.v, dL.atty, L.q, L.k, L.v, L.att, n, hp.n_head,
                             hp.attn_scale)
        K.matmul_backward(dL.ln1[:n], dW.attn_wq, dL.q[:n], L.ln1[:n], W.attn_wq)
        K.matmul_backward(dL.ln1[:n], dW.attn_wk, dL.k[:n], L.ln1[:n], W.attn_wk)
        K.matmul_backward(dL.ln1[:n], dW.attn_wv, dL.v[:n], L.ln1[:n], W.attn_wv)
        K.rmsnorm_backward(dx[:n], dL.ln1[:n], x[:n], L.rstd1[:n], hp.inv_C)
    K.rmsnorm_backward(dA.emb[:n], dA.x0[:n], A.emb[:n], A.rstd0[:n], hp.inv_C)
    K.encoder_backward(G.wte, G.wpe, dA.emb[:n], tokens[:n])


def train_step(P, G, A, dA, flat, tokens, n, hp, adam):
    """One training step on one document, tokens (n+1,): forward over its n positions,
    backward, Adam. Returns the mean loss as a float."""
    forward(P, A, tokens[:n], 0, n, hp)
    K.softmax_forward(A.probs[:n], A.logits[:n], 1.0)
    K.crossentropy_forward(A.losses[:n], A.loss, A.probs[:n], tokens[1:n + 1])
    K.zero(flat.grads)
    K.zero(flat.dacts)
    backward(P, G, A, dA, tokens, n, hp)
    K.adam_update(flat.params, flat.grads, flat.m, flat.v, adam.lr, adam.beta1, adam.beta2,
                  adam.one_minus_beta1, adam.one_minus_beta2, adam.bias1, adam.bias2, adam.eps)
    return A.loss[0]


def sample_step(P, A, token, pos, hp, inv_temperature):
    """Next-token probabilities after `token` (1,) at position pos, into A.probs[pos];
    A's k and v rows 0..pos-1 are the KV cache of this sample's earlier positions."""
    forward(P, A, token, pos, 1, hp)
    K.softmax_forward(A.probs[pos:pos + 1], A.logits[pos:pos + 1], inv_temperature)


MODEL_FUNCTIONS = ('forward', 'backward', 'train_step', 'sample_step')


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
