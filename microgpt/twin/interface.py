"""The kernel interface: what a backend supplies to the twin model as `K`.

model.py is written once against K; a backend (numpy_kernels here, jit/kernels.py,
gpu/kernels.py's CudaKernels) is any namespace with every name below, a function each.
Conventions (llm.c's): forward kernels overwrite their output; backward kernels add
(+=) into their d-prefixed gradients, each sum in the scalar graph's order
(microgpt/orders.py); every float is the scalar graph's. Shapes: n rows of the step's
packed rows, C = n_embd, V = vocab_size, H = n_head, T = block_size.

How model.bind() uses it: each model function (model.py marks them with @model_function)
is copied with a globals dict in which K is the backend, so one model serves every
backend; a compiling backend (jit) then compiles the copies whole.
"""

KERNELS = {
    # memory: where the model's arrays live
    'zeros': "zeros(size) -> a float array of zeros, the backend's own (host or device)",
    'to_device': "to_device(host) -> the backend's copy of a numpy array",
    'to_host': "to_host(array) -> a numpy array of the backend's array",
    'zero': "zero(x): x[...] = 0.0",
    # a step's rows
    'pack_batch': "pack_batch(batch, tokens (B,T+1), lengths (B,)) -> n: a step's "
                  "documents packed into the rows of a model.Batch",
    'step_parts': "step_parts(ndoc, n, hp) -> how many parts of whole documents a step "
                  "runs in at once (1: no threads)",
    # forward
    'encoder_forward': "encoder_forward(out (n,C), tokens, pos, wte, wpe): wte[token] + "
                       "wpe[pos]",
    'rmsnorm_forward': "rmsnorm_forward(out, rstd (n,), inp, inv_C, eps): inp * "
                       "(sum(inp^2) * inv_C + eps) ** -0.5, rstd the factor",
    'matmul_forward': "matmul_forward(out (n,O), inp (n,I), w (O,I)): inp @ w.T, each sum "
                      "in order",
    'attention_forward': "attention_forward(out, att_exps (H,R,T), qkv (R,3C), pos, a, n, "
                         "n_head, scale): causal attention of rows a..a+n-1 within their "
                         "documents, keeping the exps",
    'residual_forward': "residual_forward(out, inp1, inp2): inp1 + inp2",
    'relu_forward': "relu_forward(out, inp): max(inp, 0)",
    'softmax_forward': "softmax_forward(probs (n,V), exps, logits, inv_temperature): "
                       "e * total ** -1, e = exp(z - max z), z = logits * inv_temperature",
    'crossentropy_forward': "crossentropy_forward(losses (n,), loss (1,), probs, targets, "
                            "ndoc, inv_batch): -log p[target]; the mean of the documents' "
                            "means",
    # backward
    'crossentropy_softmax_backward': "crossentropy_softmax_backward(dlogits, exps, "
                                     "targets, ndoc, inv_batch): through -log(e_T * "
                                     "total ** -1)",
    'matmul_backward_input': "matmul_backward_input(dinp, dout, w, order, which): dinp[t] "
                             "+= w[o] * dout[t, o] for o in order[which[t]]",
    'target_logit_aside': "target_logit_aside(dtargets (n,), dlogits, targets): set each "
                          "row's target gradient aside, zeroed in dlogits",
    'target_logit_backward': "target_logit_backward(dinp, dlogits, w, targets, dtargets): "
                             "the target's term last, and its gradient back",
    'matmul_backward_weight': "matmul_backward_weight(dw, dout, inp, o0, o1): dw[o] += "
                              "dout[t, o] * inp[t], rows t last to first, for o0 <= o < o1",
    'residual_backward': "residual_backward(dinp1, dinp2, dout): each += dout",
    'relu_backward': "relu_backward(dinp, dout, inp): dinp += dout * (inp > 0)",
    'attention_backward': "attention_backward(dqkv, dout, qkv, att_exps, pos, a, n, "
                          "n_head, scale): into the q, k and v columns of dqkv",
    'rmsnorm_backward': "rmsnorm_backward(dinp, dout, inp, rstd, inv_C, eps): through "
                        "a ** -0.5, as the Value ops compute it",
    'encoder_backward': "encoder_backward(dwte, dwpe, dout, tokens, pos): rows last to first",
    'adam_update': "adam_update(params, grads, m, v, lr, beta1, beta2, one_minus_beta1, "
                   "one_minus_beta2, bias1, bias2, eps): the reference's loop body",
}
# A backend may also supply `prange`, the range its threads share (numba's); without
# it, a step's parts run one after another.
OPTIONAL = ('prange',)


def missing(backend):
    """The names of KERNELS that `backend` does not supply as callables."""
    return [name for name in KERNELS if not callable(getattr(backend, name, None))]
