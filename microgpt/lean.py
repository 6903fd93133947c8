"""The lean tier: the reference algorithm in pure Python, engineered for memory and speed.

The scalar tier (gpt.py) builds a graph of one Python object per `+` and `*`, each with
a tuple of local gradients, then sorts it topologically: 60k nodes for "olivia", 103k
for "christopher". Here the graph's nodes are whole vector ops instead, fused as a
person would write them out:

- a node is a whole linear layer (attn_wq, attn_wk and attn_wv as one of 3C rows),
  rmsnorm, attention over the KV cache, residual add, ReLU, or softmax + cross-entropy;
- a node is one tuple on a tape, (its backward function, its saved values), so the op
  code *is* the backward function, beside its forward below;
- the tape is in creation order, which is a topological order already: backward pops
  it from the end, with no sort and no recursion, and each node's saved values are
  released as soon as its backward has run;
- the loss is accumulated as positions go, a float, not a graph of sums.

Every float is the scalar graph's, bit for bit. The forward repeats the reference's
float operations in its order (dot products added left to right from 0.0). The
backward repeats each Value op's local gradient (the loss is -log of the target's
probability alone, the softmax's `e / total` is `e * total**-1`, rmsnorm goes through
`a ** -0.5`), and each vector hears from its consumers in the order the scalar graph's
backward() delivers them (microgpt/orders.py): popping the tape gives positions last to
first, and a residual addition before the rmsnorm that reads the same vector; within an
op, each sum runs in that order, term by term from 0.0, as `child.grad += ...` adds.
The sign of a zero gradient may differ (-0.0 against the graph's 0 + -0.0 = 0.0): it
changes no sum, product or Adam update. Standard library only.
"""
import math
import random
import sys
from array import array
from functools import reduce
from itertools import repeat
from operator import add, mul

from .config import RMS_EPS, param_shapes
from .gpt import param_count
from .orders import qkv_orders, rows_last_first


if sys.version_info < (3, 12):
    def ordered_sum(xs):
        """xs[0] + xs[1] + ..., added left to right from 0, as the reference's sum()
        does. Before Python 3.12 the builtin sum() adds floats exactly so, in a C
        double, without making a float object for each partial sum."""
        return sum(xs)
else:
    def ordered_sum(xs):
        """xs[0] + xs[1] + ..., added left to right from 0.0, as the reference's sum()
        does. (Not the builtin sum(): since Python 3.12 it compensates float rounding.)"""
        return reduce(add, xs, 0.0)


def dot(w, x):
    """sum(w_j * x_j), added left to right from 0 (`ordered_sum`)."""
    return ordered_sum(map(mul, w, x))


def zeros(n):
    return array('d', bytes(8 * n))


class Vec:
    """A vector in the graph: its values and, once backward reaches it, its gradient."""
    __slots__ = ('data', 'grad')

    def __init__(self, data, grad=None):
        self.data = data
        self.grad = grad            # None: no gradient has arrived (zero)

    def accumulate(self, g):
        """grad += g, element by element (one contribution of one consumer)."""
        self.grad = g if self.grad is None else list(map(add, self.grad, g))


# --------------------------------------------------------------------------------------
# The fused ops. Each forward appends (backward, saved...) to the tape when training;
# each backward reads the output's gradient, complete by then, and adds into its
# inputs' gradients. A linear layer's input has that layer as its only consumer, so
# its backward sets the gradient where the others add.

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
    a = dot(x.data, x.data) * len(x.data) ** -1 + RMS_EPS
    scale = a ** -0.5
    out = Vec([xi * scale for xi in x.data])
    if tape is not None:
        tape.append((rmsnorm_backward, out, x, a, scale))
    return out


def rmsnorm_backward(out, x, a, scale):
    """out_i = x_i * s, s = a ** -0.5, a = sum(x_j * x_j) * C**-1 + eps. s hears from
    each out_i (x_i * dout_i), the last i first; a from s (-0.5 * a**-1.5); each x_j * x_j
    from the sum (times C**-1). x_i hears from out_i (s * dout_i), then from x_i * x_i
    twice, x_i being both of its children."""
    g = out.grad
    ds = dot(reversed(x.data), reversed(g))
    dsq = len(x.data) ** -1 * ((-0.5 * a ** -1.5) * ds)
    prev = repeat(0.0) if x.grad is None else x.grad
    x.grad = [((p + scale * gi) + xi * dsq) + xi * dsq for p, gi, xi in zip(prev, g, x.data)]


def linear(x, w, columns, record, tape):
    """w @ x for w a list of rows. `columns` is (order, w's columns with their rows in
    that order): the order in which x hears from the rows (microgpt/orders.py).
    `record` is this step's ([dy...], [x...]) for the weight: backward adds each
    position's, and weight_grad() sums them."""
    out = Vec([dot(row, x.data) for row in w])
    if tape is not None:
        tape.append((linear_backward, out, x, columns, record))
    return out


def linear_backward(out, x, columns, record):
    order, cols = columns
    dy = list(map(out.grad.__getitem__, order))
    x.grad = [dot(col, dy) for col in cols]                 # dx = w.T @ dy, in order
    dys, xs = record
    dys.append(out.grad)
    xs.append(x.data)


def lm_head(x, w, columns, target_id, record, tape):
    """The logits, w @ x, as linear(); x hears from the rows last to first, but the
    target's comes last (orders.lm_head_order)."""
    out = Vec([dot(row, x.data) for row in w])
    if tape is not None:
        tape.append((lm_head_backward, out, x, w[target_id], columns, target_id, record))
    return out


def lm_head_backward(out, x, w_target, columns, target_id, record):
    # The rows last to first with the target's term made zero, which leaves every
    # partial sum as it is (a sum from 0.0 is never -0.0, and s + 0.0 == s), then the
    # target's term: the order lm_head_order() gives, without a transpose per target.
    cols = columns[1]                                       # rows last to first
    dy = out.grad[::-1]
    g_target = dy[len(dy) - 1 - target_id]
    dy[len(dy) - 1 - target_id] = 0.0
    x.grad = [dot(col, dy) + wt * g_target for col, wt in zip(cols, w_target)]
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
    """dw = sum over positions of outer(dy, x), built along its shorter side; the
    positions in the record's order, which is backward's: last to first."""
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
    x.grad = [g * (xi > 0) for g, xi in zip(out.grad, x.data)]   # float(x > 0) * g


def softmax_parts(logits):
    """On plain floats, as the reference: exp(z - max) each, and their sum."""
    max_val = max(logits)
    exps = [math.exp(z - max_val) for z in logits]
    return exps, ordered_sum(exps)


def softmax(logits):
    """e * total**-1 for each exp e (the reference's e / total)."""
    exps, total = softmax_parts(logits)
    inv_total = total ** -1
    return [e * inv_total for e in exps]


def attention(qkv, cache, n_head, tape):
    """Multi-head attention of this position's q over the cached keys and values.
    qkv and each of `cache` (this document's positions so far, this one last) are Vecs
    of 3C: q, k, v side by side, head h in columns h*hd .. (h+1)*hd of each."""
    C = len(qkv.data) // 3
    hd = C // n_head
    scale = (hd ** 0.5) ** -1
    q = qkv.data
    out, heads = [], []
    for h in range(n_head):
        hs = h * hd
        q_h = q[hs:hs + hd]
        exps, total = softmax_parts([dot(q_h, kv.data[C + hs:C + hs + hd]) * scale
                                     for kv in cache])
        inv_total = total ** -1
        w = [e * inv_total for e in exps]
        heads.append((exps, total, inv_total, w))
        for j in range(2 * C + hs, 2 * C + hs + hd):
            out.append(dot(w, [kv.data[j] for kv in cache]))
    out = Vec(out)
    if tape is not None:
        tape.append((attention_backward, out, qkv, list(cache), heads, scale))
    return out


def attention_backward(out, qkv, cache, heads, scale):
    """Per head, with e_t the exps, r = total**-1 and w_t = e_t * r (a pow node of its
    own per key, as `e / total` makes one), in the scalar graph's order:
    - w_t hears from each output column, last column first: v_tj * dy_j;
    - total from each key's pow node, last key first: -total**-2 * (e_t * dw_t);
    - e_t from w_t (r * dw_t), then from the sum (dtotal); its logit gets e_t times that,
      and the dot product before `* scale` gets scale times the logit's;
    - q_j from each key, last first: k_tj * dlogit_t; k_tj and v_tj from this query
      (q_j * dlogit_t, w_t * dy_j), after the later queries of the document (the tape)."""
    C = len(qkv.data) // 3
    hd = C // len(heads)
    q, dq = qkv.data, qkv.grad
    for h, (exps, total, inv_total, w) in enumerate(heads):
        hs, ks, vs = h * hd, C + h * hd, 2 * C + h * hd
        dy = out.grad[hs:hs + hd]
        dy_last_first = dy[::-1]
        dw = [dot(reversed(kv.data[vs:vs + hd]), dy_last_first) for kv in cache]
        dr_total = -(total ** -2)
        dtotal = dot(repeat(dr_total), reversed(list(map(mul, exps, dw))))
        dlogits = [scale * (e * (inv_total * dwt + dtotal)) for e, dwt in zip(exps, dw)]
        dq_h = repeat(0.0, hd)
        for kv, dl in zip(reversed(cache), reversed(dlogits)):
            dq_h = map(add, dq_h, map(mul, kv.data[ks:ks + hd], repeat(dl)))
        dq[hs:hs + hd] = map(add, dq[hs:hs + hd], dq_h)
        q_h = q[hs:hs + hd]
        for kv, dl, wt in zip(cache, dlogits, w):
            g = kv.grad
            g[ks:ks + hd] = map(add, g[ks:ks + hd], map(mul, q_h, repeat(dl)))
            g[vs:vs + hd] = map(add, g[vs:vs + hd], map(mul, dy, repeat(wt)))


def cross_entropy(logits, target_id, tape):
    """-log softmax(logits)[target], as a one-element Vec: a root of the backward pass.
    Only the target's probability is on the graph: e_T * total**-1."""
    exps, total = softmax_parts(logits.data)
    inv_total = total ** -1
    out = Vec([-math.log(exps[target_id] * inv_total)])
    if tape is not None:
        tape.append((cross_entropy_backward, out, logits, exps, total, inv_total, target_id))
    return out


def cross_entropy_backward(out, logits, exps, total, inv_total, target_id):
    """loss = log(p) * -1, p = e_T * r, r = total**-1, total = sum_j e_j, e_j =
    exp(z_j - max): log's local gradient is 1/p; r's node hears e_T * dp and passes
    -total**-2 times it to total; e_T hears from p (r * dp), then from the sum."""
    e_t = exps[target_id]
    dp = (1 / (e_t * inv_total)) * -out.grad[0]
    dtotal = -(total ** -2) * (e_t * dp)
    d = [e * dtotal for e in exps]
    d[target_id] = e_t * (inv_total * dp + dtotal)
    logits.grad = d


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
        # The orders in which a linear layer's input hears from its rows
        C, V = config.n_embd, vocab_size
        self.orders = {'qkv': qkv_orders(C, config.n_head), 'C': rows_last_first(C),
                       '4C': rows_last_first(4 * C), 'V': rows_last_first(V)}
        self.transpose()

    @property
    def num_params(self):
        return sum(len(w) * len(w[0]) for w in self.state_dict.values())

    @staticmethod
    def needed_bytes(config, vocab_size):
        """About how much memory training takes (for the command line to check first):
        ~130 bytes a parameter (weights, their columns, gradients, Adam's moments) and
        ~2,500 a position and unit of width (the tape's saved vectors). Measured with
        tracemalloc, Python 3.11, widths 16 to 32, block sizes 16 to 32."""
        positions = config.batch_size * config.block_size
        return (130 * param_count(config, vocab_size)
                + 2500 * positions * (config.n_layer * config.n_embd + vocab_size))

    def export_params(self):
        return {name: [list(row) for row in w] for name, w in self.state_dict.items()}

    def load_params(self, params):
        for name in self.state_dict:
            self.state_dict[name] = [list(row) for row in params[name]]
        self.transpose()

    def new_cache(self):
        """Per layer, the qkv Vecs of the positions so far: the KV cache."""
        return [[] for _ in range(self.config.n_layer)]

    def forward(self, token_id, pos_id, cache, tape, records=None, target_id=None):
        """Logits (a Vec) for one token at pos_id; appends its qkv to the cache. When
        training, `tape` records the ops, `records` the linear layers' inputs, and
        target_id is the next token."""
        sd, c, cols = self.state_dict, self.config, self.columns
        rec = records.get if records is not None else (lambda name: None)
        x = embed(sd['wte'], sd['wpe'], token_id, pos_id, tape, self.grads)
        x = rmsnorm(x, tape)
        for li in range(c.n_layer):
            p = f'layer{li}.'
            x_residual = x
            x = rmsnorm(x, tape)
            qkv = linear(x, self.qkv[li], cols[p + 'attn_qkv'][pos_id > 0], rec(p + 'attn_qkv'),
                         tape)
            if tape is not None:
                qkv.grad = [0.0] * len(qkv.data)    # heard from by attention, in place
            cache[li].append(qkv)
            x = attention(qkv, cache[li], c.n_head, tape)
            x = linear(x, sd[p + 'attn_wo'], cols[p + 'attn_wo'], rec(p + 'attn_wo'), tape)
            x = residual(x, x_residual, tape)
            x_residual = x
            x = rmsnorm(x, tape)
            x = linear(x, sd[p + 'mlp_fc1'], cols[p + 'mlp_fc1'], rec(p + 'mlp_fc1'), tape)
            x = relu(x, tape)
            x = linear(x, sd[p + 'mlp_fc2'], cols[p + 'mlp_fc2'], rec(p + 'mlp_fc2'), tape)
            x = residual(x, x_residual, tape)
        return lm_head(x, sd['lm_head'], cols['lm_head'], target_id, rec('lm_head'), tape)

    def train_step(self, batch, step):
        """Forward every document of the batch onto one tape, then one backward pass and
        one update. A position's loss reaches the step's through its document's mean
        (1/n) and the batch's (1/B: one document's loss is the step's)."""
        tape = []
        records = {name: ([], []) for name in self.columns}
        inv_batch = 1 / len(batch)
        step_loss = 0.0
        for tokens in batch:
            n = min(self.config.block_size, len(tokens) - 1)
            cache = self.new_cache()
            total = 0.0                   # the losses' sum, added as positions go
            for pos_id in range(n):
                target_id = tokens[pos_id + 1]
                logits = self.forward(tokens[pos_id], pos_id, cache, tape, records, target_id)
                loss_t = cross_entropy(logits, target_id, tape)
                total += loss_t.data[0]
                loss_t.grad = [(1 / n) * inv_batch]   # d(step loss)/d(loss_t): backward starts here
            step_loss += total * (1 / n)
            del cache
        while tape:                       # backward: reverse creation order
            backward, out, *saved = tape.pop()
            backward(out, *saved)
        for name in list(records):        # each record let go once summed
            dw = weight_grad(records.pop(name))
            if name.endswith('attn_qkv'):   # attn_wq, attn_wk, attn_wv: C rows each
                layer, C = name[:-len('attn_qkv')], len(dw) // 3
                for i, part in enumerate(('attn_wq', 'attn_wk', 'attn_wv')):
                    self.grads[layer + part] = dw[i * C:(i + 1) * C]
            else:
                self.grads[name] = dw
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
        """Each layer's attn_wq, attn_wk and attn_wv rows as one list (qkv), and the
        linear layers' columns, their rows in the order in which the input hears from
        them (dx = w.T @ dy: a dot product with each column). qkv has two orders, a
        document's first position's and the later ones'."""
        sd, orders = self.state_dict, self.orders
        def columns(w, order):
            return order, list(zip(*map(w.__getitem__, order)))
        self.qkv, self.columns = [], {'lm_head': columns(sd['lm_head'], orders['V'])}
        for li in range(self.config.n_layer):
            p = f'layer{li}.'
            qkv = sd[p + 'attn_wq'] + sd[p + 'attn_wk'] + sd[p + 'attn_wv']
            self.qkv.append(qkv)
            self.columns[p + 'attn_qkv'] = [columns(qkv, order) for order in orders['qkv']]
            self.columns[p + 'attn_wo'] = columns(sd[p + 'attn_wo'], orders['C'])
            self.columns[p + 'mlp_fc1'] = columns(sd[p + 'mlp_fc1'], orders['4C'])
            self.columns[p + 'mlp_fc2'] = columns(sd[p + 'mlp_fc2'], orders['C'])

    def next_probs(self, token_id, pos_id, cache, temperature):
        logits = self.forward(token_id, pos_id, cache, None)
        inv_t = temperature ** -1
        return softmax([l * inv_t for l in logits.data])
