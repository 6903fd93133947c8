"""Training steps in one launch: the whole of each step (forward, backward, Adam) in one
block of threads, for the small models this project trains.

At the reference's size a step is 54 launches of a few microseconds' work each, so the
launches are the cost. Here the twin model's own code runs on the device:
model.bind() copies the model functions with K = this module and compiles them as
device functions, and train_steps_kernel runs step after step of them in one block.
Each op below is its body from gpu/kernels.py run by the block's threads, then a
barrier (syncthreads), so that the next op reads everything this one wrote. No float
changes: the bodies are the kernels' own, and the products sum in the GEMMs' order
(over k, from zero).

Limits: fp64 only (fp32 and tc run their GEMMs, which need a grid); one block, that is
one multiprocessor, so only models up to tuning.FUSED_MAX_PARAMS parameters take this
path (gpu/tier.py); larger ones launch op by op.
"""
import sys

from numba import cuda

from microgpt.twin import model

from . import kernels as k
from .launch import launch


def in_block(body):
    """An op of the kernel interface (microgpt/twin/interface.py) for code running in
    one block: its body over the block's threads, then a barrier."""
    @cuda.jit(device=True)
    def op(*args):
        body(cuda.threadIdx.x, cuda.blockDim.x, *args)
        cuda.syncthreads()
    return op


encoder_forward = in_block(k.encoder_forward_body)
encoder_backward = in_block(k.encoder_backward_body)
rmsnorm_forward = in_block(k.rmsnorm_forward_body)
rmsnorm_backward = in_block(k.rmsnorm_backward_body)
matmul_forward = in_block(k.matmul_forward_body)
matmul_backward_input = in_block(k.matmul_backward_input_body)
target_logit_aside = in_block(k.target_logit_aside_body)
target_logit_backward = in_block(k.target_logit_backward_body)
attention_forward = in_block(k.attention_forward_body)
attention_backward = in_block(k.attention_backward_body)
relu_forward = in_block(k.relu_forward_body)
relu_backward = in_block(k.relu_backward_body)
residual_forward = in_block(k.residual_forward_body)
residual_backward = in_block(k.residual_backward_body)
softmax_forward = in_block(k.softmax_forward_body)
crossentropy_softmax_backward = in_block(k.crossentropy_softmax_backward_body)
adam_update = in_block(k.adam_update_body)
_crossentropy_losses = in_block(k.crossentropy_forward_body)
_batch_mean = in_block(k.batch_mean_body)


# The ops whose arguments differ from their bodies'
@cuda.jit(device=True)
def zero(x):
    for i in range(cuda.threadIdx.x, x.size, cuda.blockDim.x):
        x.flat[i] = 0
    cuda.syncthreads()


@cuda.jit(device=True)
def pack_batch(batch, tokens, lengths):
    k.pack_batch_body(cuda.threadIdx.x, cuda.blockDim.x, batch.tokens, batch.targets,
                      batch.pos, batch.ndoc, batch.later, tokens, lengths)
    cuda.syncthreads()
    n = 0
    for b in range(lengths.shape[0]):
        n += lengths[b]
    return n


@cuda.jit(device=True)
def matmul_backward_weight(dw, dout, inp, o0, o1):
    k.matmul_backward_weight_body(cuda.threadIdx.x, cuda.blockDim.x, dw[o0:o1], dout, inp, o0)
    cuda.syncthreads()


@cuda.jit(device=True)
def crossentropy_forward(losses, loss, probs, targets, ndoc, inv_batch):
    _crossentropy_losses(losses, probs, targets)
    _batch_mean(loss, losses, ndoc, inv_batch)


# The model functions, calling the ops above, as device functions
_bound = model.bind(sys.modules[__name__], wrap=cuda.jit(device=True))
params_view, acts_view, step_whole = _bound.params_view, _bound.acts_view, _bound.step_whole


@cuda.jit
def train_steps_kernel(params, grads, m, v, acts, dacts, batch, tokens, lengths, schedule,
                       hp, adam, orders, losses):
    """model.train_steps with every step in one part (model.step_whole): step s trains
    on tokens[s] (S,B,T+1), the first lengths[s, b]+1 ids of document b, with Adam's
    scalars schedule[s] (lr, bias1, bias2); its loss goes to losses[s]."""
    flat = model.Flat(params, grads, m, v, acts, dacts)
    R = hp.batch_size * hp.block_size
    P, G = params_view(params, hp), params_view(grads, hp)
    A, dA = acts_view(acts, hp, R), acts_view(dacts, hp, R)
    for s in range(tokens.shape[0]):
        step = model.AdamStep(schedule[s, 0], adam.beta1, adam.beta2, adam.one_minus_beta1,
                              adam.one_minus_beta2, schedule[s, 1], schedule[s, 2], adam.eps)
        n = pack_batch(batch, tokens[s], lengths[s])
        zero(grads)
        step_whole(flat, P, G, A, dA, batch, n, hp, step, orders)
        crossentropy_forward(A.losses[:n], A.loss, A.probs[:n], batch.targets[:n],
                             batch.ndoc[:n], hp.inv_batch)
        if cuda.threadIdx.x == 0:
            losses[s] = A.loss[0]


def train_steps(flat, batch, tokens, lengths, schedule, hp, adam, orders, losses, threads):
    """Launch train_steps_kernel: one block of `threads`; device arrays in."""
    launch(train_steps_kernel, 1, threads, *flat, batch, tokens, lengths, schedule, hp, adam,
           orders, losses)
