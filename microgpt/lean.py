"""The lean tier: the reference algorithm in pure Python, engineered for memory and speed.

The scalar tier (gpt.py) builds a graph of one Python object per `+` and `*`, each with
a tuple of local gradients, then sorts it topologically: 60k nodes for "olivia", 103k
for "christopher". Here the graph's nodes are whole vector ops instead, fused as a
person would write them out:

- a node is a whole linear layer, rmsnorm, attention over the KV cache, residual add,
  ReLU, or softmax + cross-entropy (whose backward is the textbook p - onehot);
- a node is one tuple on a tape, (its backward function, its saved vectors), so the op
  code *is* the backward function, beside its forward below;
- the tape is in creation order, which is a topological order already: backward pops
  it from the end, with no sort and no recursion, and each node's saved vectors are
  released as soon as its backward has run;
- the loss is accumulated as positions go, a float, not a graph of sums.

The forward pass repeats the reference's float operations in the reference's order
(dot products are added left to right from 0.0), so losses agree to the last bits; the
backward pass sums gradients in another order, which moves them by an ulp or so.
Standard library only.
"""
import math
import random
import sys
from array import array
from functools import reduce
from itertools import repeat
from operator import add, mul

from .config import RMS_EPS, param_shapes


if sys.version_info < (3, 12):
    def dot(w, x):
        """sum(w_j * x_j), added left to right from 0, as the reference's sum() does.
        Before Python 3.12 the builtin sum() adds floats exactly so, in a C double,
        without making a float object for each partial sum."""
        return sum(map(mul, w, x))
else:
    def dot(w, x):
        """sum(w_j * x_j), added left to right from 0.0, as the reference's sum() does.
        (Not the builtin sum(): since Python 3.12 it compensates float rounding.)"""
        return reduce(add, map(mul, w, x), 0.0)


def zeros(n):
    return array('d', bytes(8 * n))


class Vec:
    """A vector in the graph: its values and, once backward reaches it, its gradient."""
    __slots__ = ('data', 'grad')

    def __init__(self, data):
        self.data = data
        self.grad = None            # None: no gradient has arrived (zero)

    def accumulate(self, g):
        self.grad = g if self.grad is None else list(map(add, self.grad, g))


# --------------------------------------------------------------------------------------
# The fused ops. Each forward appends (backward, saved...) to the tape when training;
# each backward reads the output's gradient and accumulates into its inputs'.

def embed(wte, wpe, token_id, pos_id, tape, params_grads):
    x = Vec(list(map(add, wte[token_id], wpe[pos_id])))
    if tape is not None:
        tape.append((embed_backward, x, token_id, pos_id, params_grads))
    return x


def embed_backward(x, token_id, pos_id, grads):
    dwte, dwpe = grads['wte'], grads['wpe']
    dwte[token_id] = list(map(add, dwte[token_id], x.grad))
    dwpe[pos_id] = list(map(add, dwpe[pos_id], x.grad))


def rmsnorm(x, tape):
    ms = dot(x.data, x.data) * len(x.data) ** -1
    scale = (ms + RMS_EPS) ** -0.5
    out = Vec([xi * scale for xi in x.data])
    if tape is not None:
        tape.append((rmsnorm_backward, out, x, scale))
    return out


def rmsnorm_backward(out, x, scale):
    # out = x * s, s = (sum(x^2)/C + eps)^-1/2: d s / d x_j = -s^3 x_j / C
    k = dot(out.grad, x.data) * scale * scale * scale * len(x.data) ** -1
    x.accumulate([g * scale - xi * k for g, xi in zip(out.grad, x.data)])


def linear(x, w, wT, record, tape):
    """w @ x for w a list of rows (wT: its columns, for the backward). `record` is this
    step's ([dy...], [x...]) for the weight: backward adds each position's, and
    weight_grad() sums them."""
    out = Vec([dot(row, x.data) for row in w])
    if tape is not None:
        tape.append((linear_backward, out, x, wT, record))
    return out


def linear_backward(out, x, wT, record):
    x.accumulate([dot(col, out.grad) for col in wT])       # dx = w.T @ dy
    dys, xs = record
    dys.append(out.grad)
    xs.append(x.data)


def outer_sum(us, vs):
    """sum over t of outer(u_t, v_t), as rows; each row one lazy chain of maps over t."""
    rows = []
    for u_i in zip(*us):
        row = map(mul, vs[0], repeat(u_i[0]))
        for u, v in zip(u_i[1:], vs[1:]):
            row = map(add, row, map(mul, v, repeat(u)))
        rows.append(list(row))
    return rows


def weight_grad(record):
    """dw = sum over positions of outer(dy, x), built along its shorter side."""
    dys, xs = record
    if len(dys[0]) <= len(xs[0]):
        return outer_sum(dys, xs)
    return [list(row) for row in zip(*outer_sum(xs, dys))]


def residual(a, b, tape):
    out = Vec(list(map(add, a.data, b.data)))
    if tape is not None:
        tape.append((residual_backward, out, a, b))
    return out


def residual_backward(out, a, b):
    a.accumulate(out.grad)
    b.accumulate(out.grad)


def relu(x, tape):
    out = Vec([xi if xi > 0 else 0.0 for xi in x.data])
    if tape is not None:
        tape.append((relu_backward, out, x))
    return out


def relu_backward(out, x):
    x.accumulate([g if xi > 0 else 0.0 for g, xi in zip(out.grad, x.data)])


def softmax(logits):
    """On plain floats: max, exp(z - max), and e * total**-1, as the reference."""
    max_val = max(logits)
    exps = [math.exp(z - max_val) for z in logits]
    inv_total = reduce(add, exps, 0.0) ** -1
    return [e * inv_total for e in exps]


def attention(q, keys, values, n_head, tape):
    """Multi-head attention of q over the cached keys and values (lists of Vec)."""
    hd = len(q.data) // n_head
    scale = (hd ** 0.5) ** -1
    out, weights = [], []
    for h in range(n_head):
        hs = h * hd
        q_h = q.data[hs:hs + hd]
        w = softmax([dot(q_h, k.data[hs:hs + hd]) * scale for k in keys])
        weights.append(w)
        for j in range(hs, hs + hd):
            out.append(dot(w, [v.data[j] for v in values]))
    out = Vec(out)
    if tape is not None:
        tape.append((attention_backward, out, q, list(keys), list(values), weights, scale))
    return out


def attention_backward(out, q, keys, values, weights, scale):
    n_head = len(weights)
    hd = len(q.data) // n_head
    dq = [0.0] * len(q.data)
    dks = [[0.0] * len(q.data) for _ in keys]
    dvs = [[0.0] * len(q.data) for _ in values]
    for h, w in enumerate(weights):
        hs = h * hd
        g = out.grad[hs:hs + hd]
        dw = [dot(g, v.data[hs:hs + hd]) for v in values]
        for t, wt in enumerate(w):
            dvs[t][hs:hs + hd] = [wt * gj for gj in g]
        wdot = dot(w, dw)
        for t, (wt, dwt) in enumerate(zip(w, dw)):
            dl = wt * (dwt - wdot) * scale
            k = keys[t].data
            dq[hs:hs + hd] = [a + dl * b for a, b in zip(dq[hs:hs + hd], k[hs:hs + hd])]
            dks[t][hs:hs + hd] = [dl * b for b in q.data[hs:hs + hd]]
    q.accumulate(dq)
    for k, dk in zip(keys, dks):
        k.accumulate(dk)
    for v, dv in zip(values, dvs):
        v.accumulate(dv)


def cross_entropy(logits, target_id, tape):
    """-log softmax(logits)[target], as a one-element Vec: a root of the backward pass."""
    probs = softmax(logits.data)
    out = Vec([-math.log(probs[target_id])])
    if tape is not None:
        tape.append((cross_entropy_backward, out, logits, probs, target_id))
    return out


def cross_entropy_backward(out, logits, probs, target_id):
    # d(-log p_target)/d(logits) = p - onehot(target), times the loss's own gradient
    g = out.grad[0]
    d = [p * g for p in probs]
    d[target_id] = (probs[target_id] - 1.0) * g
    logits.accumulate(d)


# --------------------------------------------------------------------------------------

class LeanGPT:
    """The lean tier; the same interface as gpt.ScalarGPT."""

    def __init__(self, config, vocab_size):
        self.config = config
        # {name: rows of floats}, drawn like the scalar tier's (same order, same draws)
        self.state_dict = {name: [[random.gauss(0, config.init_std) for _ in range(cols)]
                                  for _ in range(rows)]
                           for name, (rows, cols) in param_shapes(config, vocab_size)}
        # Gradients: wte's and wpe's accumulate row by row; the others are computed
        # whole at the end of each backward pass (weight_grad)
        self.grads = {name: [[0.0] * len(w[0]) for _ in w] for name, w in self.state_dict.items()}
        # Adam's moments, laid out like the parameters; their rows are arrays of doubles,
        # 8 bytes a number where a list of floats takes 32 (only Adam reads them)
        self.m = {name: [zeros(len(w[0])) for _ in w] for name, w in self.state_dict.items()}
        self.v = {name: [zeros(len(w[0])) for _ in w] for name, w in self.state_dict.items()}
        self.transpose()

    @property
    def num_params(self):
        return sum(len(w) * len(w[0]) for w in self.state_dict.values())

    def export_params(self):
        return {name: [list(row) for row in w] for name, w in self.state_dict.items()}

    def load_params(self, params):
        for name in self.state_dict:
            self.state_dict[name] = [list(row) for row in params[name]]
        self.transpose()

    def new_cache(self):
        n = self.config.n_layer
        return [[] for _ in range(n)], [[] for _ in range(n)]

    def forward(self, token_id, pos_id, keys, values, tape, records=None):
        """Logits (a Vec) for one token at pos_id; appends its k, v to the cache.
        When training, `tape` records the ops and `records` the linear layers' inputs."""
        sd, c = self.state_dict, self.config
        rec = records.get if records is not None else (lambda name: None)
        sdT = self.transposed
        x = embed(sd['wte'], sd['wpe'], token_id, pos_id, tape, self.grads)
        x = rmsnorm(x, tape)
        for li in range(c.n_layer):
            p = f'layer{li}.'
            x_residual = x
            x = rmsnorm(x, tape)
            q = linear(x, sd[p + 'attn_wq'], sdT[p + 'attn_wq'], rec(p + 'attn_wq'), tape)
            keys[li].append(linear(x, sd[p + 'attn_wk'], sdT[p + 'attn_wk'], rec(p + 'attn_wk'), tape))
            values[li].append(linear(x, sd[p + 'attn_wv'], sdT[p + 'attn_wv'], rec(p + 'attn_wv'), tape))
            x = attention(q, keys[li], values[li], c.n_head, tape)
            x = linear(x, sd[p + 'attn_wo'], sdT[p + 'attn_wo'], rec(p + 'attn_wo'), tape)
            x = residual(x, x_residual, tape)
            x_residual = x
            x = rmsnorm(x, tape)
            x = linear(x, sd[p + 'mlp_fc1'], sdT[p + 'mlp_fc1'], rec(p + 'mlp_fc1'), tape)
            x = relu(x, tape)
            x = linear(x, sd[p + 'mlp_fc2'], sdT[p + 'mlp_fc2'], rec(p + 'mlp_fc2'), tape)
            x = residual(x, x_residual, tape)
        return linear(x, sd['lm_head'], sdT['lm_head'], rec('lm_head'), tape)

    def train_step(self, batch, step):
        """Forward every document of the batch onto one tape, then one backward pass and
        one update. A position's loss reaches the step's through its document's mean
        (1/n) and the batch's (1/B: one document's loss is the step's)."""
        tape = []
        records = {name: ([], []) for name in self.transposed}
        inv_batch = 1 / len(batch)
        step_loss = 0.0
        for tokens in batch:
            n = min(self.config.block_size, len(tokens) - 1)
            keys, values = self.new_cache()
            total = 0.0                   # the losses' sum, added as positions go
            for pos_id in range(n):
                logits = self.forward(tokens[pos_id], pos_id, keys, values, tape, records)
                loss_t = cross_entropy(logits, tokens[pos_id + 1], tape)
                total += loss_t.data[0]
                loss_t.grad = [(1 / n) * inv_batch]   # d(step loss)/d(loss_t): backward starts here
            step_loss += total * (1 / n)
            del keys, values
        while tape:                       # backward: reverse creation order
            backward, out, *saved = tape.pop()
            if out.grad is not None:      # no gradient reached it: nothing flows back
                backward(out, *saved)
        for name in list(records):            # each record let go once summed
            self.grads[name] = weight_grad(records.pop(name))
        self.adam_update(step)
        return step_loss * inv_batch

    def adam_update(self, step):
        """The reference's Adam, element by element, a row at a time in place (one
        comprehension per moment and row: far less interpreter work than a loop body,
        and only one row's new values exist besides the old ones at any time)."""
        c = self.config
        b1, b2, eps, ob1, ob2 = c.beta1, c.beta2, c.eps_adam, 1 - c.beta1, 1 - c.beta2
        lr_t = c.learning_rate * (1 - step / c.steps)
        bias1, bias2 = 1 - b1 ** (step + 1), 1 - b2 ** (step + 1)
        for name, w in self.state_dict.items():
            m, v, grads = self.m[name], self.v[name], self.grads[name]
            for i, g in enumerate(grads):
                m[i] = m_i = array('d', [b1 * m + ob1 * g for m, g in zip(m[i], g)])
                v[i] = v_i = array('d', [b2 * v + ob2 * g ** 2 for v, g in zip(v[i], g)])
                w[i] = [p - lr_t * (m / bias1) / ((v / bias2) ** 0.5 + eps)
                        for p, m, v in zip(w[i], m_i, v_i)]
                grads[i] = [0.0] * len(g)
        self.transpose()

    def transpose(self):
        """The linear layers' weights as columns too: dx = w.T @ dy is a dot product
        with each column."""
        self.transposed = {name: list(zip(*w)) for name, w in self.state_dict.items()
                           if name not in ('wte', 'wpe')}

    def next_probs(self, token_id, pos_id, cache, temperature):
        keys, values = cache
        logits = self.forward(token_id, pos_id, keys, values, None)
        inv_t = temperature ** -1
        return softmax([l * inv_t for l in logits.data])
