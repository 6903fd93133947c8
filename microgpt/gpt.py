"""
microGPT, the spec tier: the whole algorithm of Karpathy's reference in one file.

A one-layer GPT (rmsnorm, multi-head attention over a KV cache, ReLU MLP) trained with
Adam on a list of names, one document per step, by a scalar autograd; then it samples
new names. Read it top to bottom: tokenizer, autograd, parameters, model, optimizer,
training loop, sampling. Every float operation happens in the reference's order, so
this file reproduces its losses and samples bit for bit (see ../shared/SPEC.md).
Every other tier of the project is an engineering of this one. Standard library only,
and nothing else from this project: `python microgpt/gpt.py` runs it alone, like the
reference, on input.txt.
"""
import math
import os
import random
import time

RMS_EPS = 1e-5  # rmsnorm's guard: (mean(x^2) + RMS_EPS) ** -0.5, as in the reference
# The reference's data, when there is no input.txt: makemore's names.txt, pinned and checked
NAMES_URL = 'https://raw.githubusercontent.com/karpathy/makemore/988aa59/names.txt'
NAMES_SHA256 = '0a30b5557f192f32ab962680889aac5f6fda0f4cecf40a6d0b5694f58ea8cc4d'


# ---------------------------------------------------------------------------------------
# Documents: one string per non-empty line of the text, as the reference holds them.

class Documents(list):
    """The documents in a list. (The command line's data.Docs offers the same two
    methods, holding 32,033 names in far less memory.)"""

    def shuffle(self):
        random.shuffle(self)

    def chars(self):
        """The set of characters the documents use."""
        return set(''.join(self))


# ---------------------------------------------------------------------------------------
# Tokenizer: each distinct character is a token id; one extra id, BOS, marks the start
# and the end of a document.

class Tokenizer:
    def __init__(self, chars):
        self.uchars = sorted(chars)              # token id -> character
        self.stoi = {ch: i for i, ch in enumerate(self.uchars)}
        self.BOS = len(self.uchars)              # Beginning (and end) Of Sequence
        self.vocab_size = len(self.uchars) + 1

    def encode(self, doc):
        """A document as the model trains on it: [BOS, ids of its characters..., BOS]."""
        return [self.BOS] + [self.stoi[ch] for ch in doc] + [self.BOS]

    def decode(self, ids):
        return ''.join(self.uchars[i] for i in ids)


# ---------------------------------------------------------------------------------------
# Autograd: a Value is one scalar in the computation graph. Each op computes its value
# and, beside it, the local derivative of the result with respect to each input.

class Value:
    __slots__ = ('data', 'grad', '_children', '_local_grads')

    def __init__(self, data, children=(), local_grads=()):
        self.data = data                  # the value, computed in the forward pass
        self.grad = 0                     # d(loss)/d(this), accumulated by backward()
        self._children = children         # the Values this one was computed from
        self._local_grads = local_grads   # d(this)/d(child), one per child

    # The primitive ops.
    def __add__(self, other):             # a + b: local grads 1, 1
        other = other if isinstance(other, Value) else Value(other)
        return Value(self.data + other.data, (self, other), (1, 1))

    def __mul__(self, other):             # a * b: local grads b, a
        other = other if isinstance(other, Value) else Value(other)
        return Value(self.data * other.data, (self, other), (other.data, self.data))

    def __pow__(self, k):                 # a ** k for a plain number k: k * a**(k-1)
        return Value(self.data ** k, (self,), (k * self.data ** (k - 1),))

    def log(self):                        # log(a): 1/a
        return Value(math.log(self.data), (self,), (1 / self.data,))

    def exp(self):                        # exp(a): exp(a)
        e = math.exp(self.data)
        return Value(e, (self,), (e,))

    def relu(self):                       # max(0, a): 1 where a > 0, else 0
        return Value(max(0, self.data), (self,), (float(self.data > 0),))

    # Derived ops, built from the primitives. The exact floats depend on how: a / b is
    # a * b**-1, and x / 16 multiplies by 16**-1, which is not always a true division.
    def __neg__(self): return self * -1
    def __radd__(self, other): return self + other
    def __sub__(self, other): return self + (-other)
    def __rsub__(self, other): return other + (-self)
    def __rmul__(self, other): return self * other
    def __truediv__(self, other): return self * other ** -1
    def __rtruediv__(self, other): return other * self ** -1

    def backward(self):
        """Chain rule over the graph: visit nodes in reverse topological order and push
        each node's gradient to its children, child.grad += local_grad * node.grad."""
        # Depth-first post-order from the loss, children in order: the recursive
        # visit(v) = [visit(c) for c in children], append(v) -- written with an explicit
        # stack so that deep graphs do not hit Python's recursion limit.
        topo, visited = [], {self}
        stack = [(self, iter(self._children))]
        while stack:
            node, children = stack[-1]
            for child in children:
                if child not in visited:
                    visited.add(child)
                    stack.append((child, iter(child._children)))
                    break
            else:
                stack.pop()
                topo.append(node)
        self.grad = 1
        for node in reversed(topo):
            for child, local_grad in zip(node._children, node._local_grads):
                child.grad += local_grad * node.grad


# ---------------------------------------------------------------------------------------
# Parameters: every weight starts as random.gauss(0, std), matrix by matrix, row by row,
# in the order of param_shapes() -- that order is the RNG stream, so keep it.

def param_shapes(config, vocab_size):
    """The parameters as (name, (rows, cols)), in the order the reference creates them.

    This order is the RNG stream (each matrix draws random.gauss row by row) and the
    flat parameter order Adam walks; every tier uses these names and this order.
    """
    C = config.n_embd
    shapes = [('wte', (vocab_size, C)), ('wpe', (config.block_size, C)), ('lm_head', (vocab_size, C))]
    for i in range(config.n_layer):
        shapes += [(f'layer{i}.attn_wq', (C, C)), (f'layer{i}.attn_wk', (C, C)),
                   (f'layer{i}.attn_wv', (C, C)), (f'layer{i}.attn_wo', (C, C)),
                   (f'layer{i}.mlp_fc1', (4 * C, C)), (f'layer{i}.mlp_fc2', (C, 4 * C))]
    return shapes


def param_count(config, vocab_size):
    """How many parameters param_shapes() makes: 4,192 at the reference's config."""
    return sum(rows * cols for _, (rows, cols) in param_shapes(config, vocab_size))


def init_state_dict(config, vocab_size):
    """{name: matrix}, a matrix being a list of rows of Values: wte (V,C), wpe (T,C),
    lm_head (V,C), and per layer attn_wq/wk/wv/wo (C,C), mlp_fc1 (4C,C), mlp_fc2 (C,4C)."""
    return {name: [[Value(random.gauss(0, config.init_std)) for _ in range(cols)]
                   for _ in range(rows)]
            for name, (rows, cols) in param_shapes(config, vocab_size)}


# ---------------------------------------------------------------------------------------
# The model: GPT-2 with rmsnorm for layernorm, ReLU for GeLU, and no biases.

def linear(x, w):
    """w @ x: one dot product per row of w, each summed left to right from 0."""
    return [sum(wi * xi for wi, xi in zip(row, x)) for row in w]


def softmax(logits):
    max_val = max(val.data for val in logits)   # a plain float: no gradient flows here
    exps = [(val - max_val).exp() for val in logits]
    total = sum(exps)
    return [e / total for e in exps]


def rmsnorm(x):
    ms = sum(xi * xi for xi in x) / len(x)
    scale = (ms + RMS_EPS) ** -0.5
    return [xi * scale for xi in x]


def gpt(state_dict, config, token_id, pos_id, keys, values):
    """Logits over the next token, for one token at position pos_id.

    keys[li] and values[li] are layer li's KV cache: the k and v vectors of every
    earlier position of this sequence. This call appends its own.
    """
    n_head, head_dim = config.n_head, config.head_dim
    tok_emb = state_dict['wte'][token_id]
    pos_emb = state_dict['wpe'][pos_id]
    x = [t + p for t, p in zip(tok_emb, pos_emb)]
    x = rmsnorm(x)  # not redundant: the residual stream starts normalised

    for li in range(config.n_layer):
        # 1) Multi-head attention: this position's query against every cached key.
        x_residual = x
        x = rmsnorm(x)
        q = linear(x, state_dict[f'layer{li}.attn_wq'])
        k = linear(x, state_dict[f'layer{li}.attn_wk'])
        v = linear(x, state_dict[f'layer{li}.attn_wv'])
        keys[li].append(k)
        values[li].append(v)
        x_attn = []
        for h in range(n_head):
            hs = h * head_dim
            q_h = q[hs:hs + head_dim]
            k_h = [ki[hs:hs + head_dim] for ki in keys[li]]
            v_h = [vi[hs:hs + head_dim] for vi in values[li]]
            attn_logits = [sum(q_h[j] * k_h[t][j] for j in range(head_dim)) / head_dim ** 0.5
                           for t in range(len(k_h))]
            attn_weights = softmax(attn_logits)
            head_out = [sum(attn_weights[t] * v_h[t][j] for t in range(len(v_h)))
                        for j in range(head_dim)]
            x_attn.extend(head_out)
        x = linear(x_attn, state_dict[f'layer{li}.attn_wo'])
        x = [a + b for a, b in zip(x, x_residual)]
        # 2) MLP: widen 4x, ReLU, narrow back.
        x_residual = x
        x = rmsnorm(x)
        x = linear(x, state_dict[f'layer{li}.mlp_fc1'])
        x = [xi.relu() for xi in x]
        x = linear(x, state_dict[f'layer{li}.mlp_fc2'])
        x = [a + b for a, b in zip(x, x_residual)]

    return linear(x, state_dict['lm_head'])


# ---------------------------------------------------------------------------------------
# Adam, with the learning rate decayed linearly to zero over the run.

def adam_update(params, m, v, step, config):
    """One Adam step over the flat parameter list; zeroes each gradient after use."""
    b1, b2 = config.beta1, config.beta2
    lr_t = config.learning_rate * (1 - step / config.steps)
    for i, p in enumerate(params):
        m[i] = b1 * m[i] + (1 - b1) * p.grad
        v[i] = b2 * v[i] + (1 - b2) * p.grad ** 2
        m_hat = m[i] / (1 - b1 ** (step + 1))
        v_hat = v[i] / (1 - b2 ** (step + 1))
        p.data -= lr_t * m_hat / (v_hat ** 0.5 + config.eps_adam)
        p.grad = 0


class ScalarGPT:
    """The scalar tier. Every tier offers this interface to train() and sample():
    __init__(config, vocab_size) draws the weights; num_params; train_step(batch, step)
    -> loss; new_cache(); next_probs(token_id, pos_id, cache, temperature) -> floats;
    and export_params() / load_params(params) for checkpoints."""

    def __init__(self, config, vocab_size):
        self.config = config
        self.state_dict = init_state_dict(config, vocab_size)
        self.params = [p for mat in self.state_dict.values() for row in mat for p in row]
        self.m = [0.0] * len(self.params)   # Adam's first moments
        self.v = [0.0] * len(self.params)   # Adam's second moments

    @property
    def num_params(self):
        return len(self.params)

    @staticmethod
    def needed_bytes(config, vocab_size):
        """About how much memory training takes here, for the command line to check
        first: ~130 bytes a parameter (a Value and its float) and, while a step's graph
        lives, ~650 a multiply-add of its forward pass (the Values of the products and
        the sums, their tuples of children and local gradients). Measured with
        tracemalloc, Python 3.11, widths 16 to 32."""
        V, T, C, L = vocab_size, config.block_size, config.n_embd, config.n_layer
        macs = config.batch_size * T * (12 * L * C * C + V * C + L * T * C)
        return 130 * param_count(config, vocab_size) + 650 * macs

    def export_params(self):
        """{name: rows of floats}: what a checkpoint holds (see checkpoint.py)."""
        return {name: [[p.data for p in row] for row in mat] for name, mat in self.state_dict.items()}

    def load_params(self, params):
        for name, mat in self.state_dict.items():
            for row, values in zip(mat, params[name]):
                for p, value in zip(row, values):
                    p.data = value

    def new_cache(self):
        n = self.config.n_layer
        return [[] for _ in range(n)], [[] for _ in range(n)]

    def forward_loss(self, tokens):
        """Forward the document position by position; its mean loss, the graph's root."""
        n = min(self.config.block_size, len(tokens) - 1)
        keys, values = self.new_cache()
        losses = []
        for pos_id in range(n):
            token_id, target_id = tokens[pos_id], tokens[pos_id + 1]
            logits = gpt(self.state_dict, self.config, token_id, pos_id, keys, values)
            probs = softmax(logits)
            losses.append(-probs[target_id].log())
        return (1 / n) * sum(losses)   # the mean loss over the document

    def step_loss(self, batch):
        """A training step's loss, the root of its graph, from a batch of documents
        (token lists). One document, as in the reference: its loss. More: the mean of
        theirs, (1 / B) * sum(doc_losses)."""
        doc_losses = [self.forward_loss(tokens) for tokens in batch]
        return doc_losses[0] if len(batch) == 1 else (1 / len(batch)) * sum(doc_losses)

    def train_step(self, batch, step):
        """Forward, backward (one, for the whole batch), update; return the loss."""
        loss = self.step_loss(batch)
        loss.backward()
        adam_update(self.params, self.m, self.v, step, self.config)
        return loss.data

    def next_probs(self, token_id, pos_id, cache, temperature):
        keys, values = cache
        logits = gpt(self.state_dict, self.config, token_id, pos_id, keys, values)
        probs = softmax([l / temperature for l in logits])
        return [p.data for p in probs]


# ---------------------------------------------------------------------------------------
# The run: shuffle, train (one document per step, as the reference, or a batch), then
# sample. Shared by every tier.

def step_batch(docs, tok, step, batch_size):
    """Step `step`'s documents, as token lists: the batch_size documents that follow the
    previous step's, wrapping around. The reference's batch is one: docs[step % len]."""
    return [tok.encode(docs[(step * batch_size + b) % len(docs)]) for b in range(batch_size)]


def train(model, docs, tok, config, on_step=None):
    """Train for config.steps steps, printing each loss like the reference; return them.
    on_step(losses), if given, is called after each step with the losses so far; it
    returns True to stop."""
    losses = []
    for step in range(config.steps):
        loss = model.train_step(step_batch(docs, tok, step, config.batch_size), step)
        losses.append(loss)
        print_step(step, config.steps, loss)
        if on_step is not None and on_step(losses):
            break
    return losses


def step_line(step, steps, loss):
    # %-formatting, not an f-string: the same text, and the twin tiers print a thousand
    # of these lines at a time, where it is 0.53 against 0.73 us a line (timeit)
    return 'step %4d / %4d | loss %.4f' % (step + 1, steps, loss)


def print_step(step, steps, loss):
    print(step_line(step, steps, loss), end='\r')


def sample(model, tok, config, prompt='', samples=None):
    """Sample config.num_samples names, one token at a time through a fresh KV cache.
    A prompt's characters are fed through the cache first; each name continues it.
    Each name is appended to `samples` (a new list if None) as it is drawn."""
    samples = [] if samples is None else samples
    print("\n--- inference (new, hallucinated names) ---")
    feed = [tok.BOS] + [tok.stoi[ch] for ch in prompt]   # fed, not drawn
    for sample_idx in range(config.num_samples):
        cache = model.new_cache()
        token_id, ids = tok.BOS, feed[1:]
        for pos_id in range(config.block_size):
            probs = model.next_probs(token_id, pos_id, cache, config.temperature)
            if pos_id + 1 < len(feed):
                token_id = feed[pos_id + 1]
                continue
            token_id = random.choices(range(tok.vocab_size), weights=probs)[0]
            if token_id == tok.BOS:
                break
            ids.append(token_id)
        samples.append(tok.decode(ids))
        print(f"sample {sample_idx+1:2d}: {samples[-1]}")
    return samples


def run(config, docs, Model=ScalarGPT, on_step=None, train=train, on_trained=None):
    """The reference program: seed, shuffle, tokenize, init, train, sample.

    `docs` is a Documents (or the command line's data.Docs); `Model` is a tier's model
    class; `train` the training loop (the twin tiers bring one that makes fewer calls
    into the model, printing the same). Prints exactly what the reference prints;
    returns the losses, the samples and the timings. If on_step stops training early,
    there is no sampling. on_trained(result), if given, is called as soon as training
    ends, before sampling, with the result so far (its samples fill in as they are
    drawn): the command line saves the trained model there.
    """
    random.seed(config.seed)
    docs.shuffle()
    print(f"num docs: {len(docs)}")
    tok = Tokenizer(docs.chars())
    print(f"vocab size: {tok.vocab_size}")
    model = Model(config, tok.vocab_size)
    print(f"num params: {model.num_params}")
    t0 = time.perf_counter()
    losses = train(model, docs, tok, config, on_step)
    t1 = time.perf_counter()
    result = {'model': model, 'tokenizer': tok, 'losses': losses, 'samples': [],
              'finished': len(losses) == config.steps, 'train_seconds': t1 - t0}
    if on_trained is not None:
        on_trained(result)
    t2 = time.perf_counter()
    if result['finished']:
        sample(model, tok, config, samples=result['samples'])
    result['sample_seconds'] = time.perf_counter() - t2
    return result


# ---------------------------------------------------------------------------------------
# Run alone, this file is the reference program: its hyperparameters, on input.txt.

REFERENCE = dict(seed=42, steps=1000, batch_size=1, n_layer=1, n_embd=16, n_head=4,
                 block_size=16, temperature=0.5, num_samples=20, init_std=0.08, learning_rate=0.01,
                 beta1=0.85, beta2=0.99, eps_adam=1e-8)   # config.GPTConfig's defaults


def read_input():
    """input.txt's documents, as the reference reads them; like the reference, fetch
    names.txt into input.txt first if there is none (checked against its sha256)."""
    if not os.path.exists('input.txt'):
        import hashlib
        import urllib.request
        with urllib.request.urlopen(NAMES_URL, timeout=30) as r:
            payload = r.read()
        if hashlib.sha256(payload).hexdigest() != NAMES_SHA256:
            raise SystemExit(f"{NAMES_URL} did not match its sha256")
        with open('input.txt.part', 'wb') as f:
            f.write(payload)
        os.replace('input.txt.part', 'input.txt')
    with open('input.txt', encoding='utf-8') as f:
        return Documents(line.strip() for line in f.read().strip().split('\n') if line.strip())


if __name__ == '__main__':
    from types import SimpleNamespace
    config = SimpleNamespace(**REFERENCE, head_dim=REFERENCE['n_embd'] // REFERENCE['n_head'])
    run(config, read_input())
