"""Each twin kernel's backward against central finite differences of its forward, and
the jit kernels against the numpy kernels (bit for bit), on random inputs of awkward
shapes."""
import importlib
import math

import numpy as np
import pytest

from check import check_tensor

BACKENDS = ['microgpt.twin.numpy_kernels', 'jit.kernels']
n, C, H, V, O = 5, 6, 2, 7, 9          # rows, width, heads (of 3), vocab, outputs
# The n rows hold two documents, packed: 3 positions, then 2.
POS = np.array([0, 1, 2, 0, 1], dtype=np.int64)
NDOC = np.array([3, 3, 3, 2, 2], dtype=np.int64)
H_STEP = 1e-6
# Central differences: truncation ~h^2 * f''' and rounding ~eps * |L| / h ~ 1e-10, against
# gradients of order 0.1 to 1; 1e-6 relative separates that noise from any real error.
FD_RTOL = 1e-6


def rand(rng, *shape):
    return rng.standard_normal(shape)


# Each op: inputs(rng) -> dict of arrays; forward(K, x) -> output array (a fresh one);
# backward(K, x, dout) -> {input name: gradient}. Backward kernels accumulate, so their
# gradients start from zeros.
def encoder_op():
    tokens = np.array([3, 1, 3, 6, 0], dtype=np.int64)     # token 3 twice: accumulation
    def inputs(rng):                                       # (positions 0 and 1 twice too)
        return {'wte': rand(rng, V, C), 'wpe': rand(rng, n + 2, C)}
    def forward(K, x):
        out = np.empty((n, C))
        K.encoder_forward(out, tokens, POS, x['wte'], x['wpe'])
        return out
    def backward(K, x, dout):
        d = {k: np.zeros_like(v) for k, v in x.items()}
        K.encoder_backward(d['wte'], d['wpe'], dout, tokens, POS)
        return d
    return inputs, forward, backward


def rmsnorm_op():
    def inputs(rng):
        return {'inp': rand(rng, n, C)}
    def forward(K, x):
        out, rstd = np.empty((n, C)), np.empty(n)
        K.rmsnorm_forward(out, rstd, x['inp'], C ** -1, 1e-5)
        return out
    def backward(K, x, dout):
        out, rstd = np.empty((n, C)), np.empty(n)
        K.rmsnorm_forward(out, rstd, x['inp'], C ** -1, 1e-5)
        d = {'inp': np.zeros((n, C))}
        K.rmsnorm_backward(d['inp'], dout, x['inp'], rstd, C ** -1, 1e-5)
        return d
    return inputs, forward, backward


def matmul_op():
    # The order in which each input row hears from the outputs: any permutation; three of
    # them, and which one each row takes.
    order = np.array([np.random.default_rng(k).permutation(O) for k in range(3)])
    which = np.array([2, 0, 1, 1, 2], dtype=np.int64)
    def inputs(rng):
        return {'inp': rand(rng, n, C), 'w': rand(rng, O, C)}
    def forward(K, x):
        out = np.empty((n, O))
        K.matmul_forward(out, x['inp'], x['w'])
        return out
    def backward(K, x, dout):
        d = {k: np.zeros_like(v) for k, v in x.items()}
        K.matmul_backward_input(d['inp'], dout, x['w'], order, which)
        K.matmul_backward_weight(d['w'], dout, x['inp'], 0, O)
        return d
    return inputs, forward, backward


def attention_op():
    R, T = n + 2, 4                          # workspace rows beyond the n in use; block_size
    def inputs(rng):
        return {'qkv': rand(rng, R, 3 * C)}
    def run(K, x):
        out, att_exps = np.zeros((R, C)), np.zeros((H, R, T))
        K.attention_forward(out, att_exps, x['qkv'], POS, 0, n, H, (3 ** 0.5) ** -1)
        return out, att_exps
    def forward(K, x):
        return run(K, x)[0][:n]
    def backward(K, x, dout):
        _, att_exps = run(K, x)
        d = {'qkv': np.zeros_like(x['qkv'])}
        dout_full = np.zeros((R, C))
        dout_full[:n] = dout
        K.attention_backward(d['qkv'], dout_full, x['qkv'], att_exps, POS, 0, n, H,
                             (3 ** 0.5) ** -1)
        return d
    return inputs, forward, backward


def relu_op():
    def inputs(rng):
        x = rand(rng, n, 4 * C)
        x[np.abs(x) < 1e-3] = 0.5            # keep away from the kink
        return {'inp': x}
    def forward(K, x):
        out = np.empty_like(x['inp'])
        K.relu_forward(out, x['inp'])
        return out
    def backward(K, x, dout):
        d = {'inp': np.zeros_like(x['inp'])}
        K.relu_backward(d['inp'], dout, x['inp'])
        return d
    return inputs, forward, backward


def residual_op():
    def inputs(rng):
        return {'inp1': rand(rng, n, C), 'inp2': rand(rng, n, C)}
    def forward(K, x):
        out = np.empty((n, C))
        K.residual_forward(out, x['inp1'], x['inp2'])
        return out
    def backward(K, x, dout):
        d = {k: np.zeros_like(v) for k, v in x.items()}
        K.residual_backward(d['inp1'], d['inp2'], dout)
        return d
    return inputs, forward, backward


def crossentropy_op():
    targets = np.array([2, 0, 6, 2, 5], dtype=np.int64)
    def inputs(rng):
        return {'logits': rand(rng, n, V)}
    def run(K, x):
        probs, exps, losses, loss = np.empty((n, V)), np.empty((n, V)), np.empty(n), np.empty(1)
        K.softmax_forward(probs, exps, x['logits'], 1.0)
        K.crossentropy_forward(losses, loss, probs, targets, NDOC, 1 / 2)
        return loss, exps
    def forward(K, x):          # the batch's mean loss, a (1,) array
        return run(K, x)[0]
    def backward(K, x, dout):
        _, exps = run(K, x)
        d = {'logits': np.zeros((n, V))}
        K.crossentropy_softmax_backward(d['logits'], exps, targets, NDOC, 1 / 2)
        d['logits'] *= dout[0]
        return d
    return inputs, forward, backward


OPS = {'encoder': encoder_op, 'rmsnorm': rmsnorm_op, 'matmul': matmul_op,
       'attention': attention_op, 'relu': relu_op, 'residual': residual_op,
       'softmax_crossentropy': crossentropy_op}


@pytest.mark.parametrize('backend', BACKENDS)
@pytest.mark.parametrize('op', OPS)
def test_backward_against_finite_differences(backend, op):
    K = importlib.import_module(backend)
    inputs, forward, backward = OPS[op]()
    rng = np.random.default_rng(sum(map(ord, op)))
    x = inputs(rng)
    dout = rand(rng, *forward(K, x).shape)          # L = sum(out * dout)
    analytic = backward(K, x, dout)
    for name, arr in x.items():
        numeric = np.zeros_like(arr)
        for idx in np.ndindex(arr.shape):
            saved = arr[idx]
            arr[idx] = saved + H_STEP
            up = float((forward(K, x) * dout).sum())
            arr[idx] = saved - H_STEP
            down = float((forward(K, x) * dout).sum())
            arr[idx] = saved
            numeric[idx] = (up - down) / (2 * H_STEP)
        assert np.abs(numeric).max() > 1e-3, f"{op}: d{name} is all ~0: the test would be empty"
        check_tensor(f'{op}: d{name}', analytic[name], numeric, FD_RTOL)


@pytest.mark.parametrize('op', OPS)
def test_jit_kernels_match_numpy_kernels(op):
    import jit.kernels
    from microgpt.twin import numpy_kernels
    inputs, forward, backward = OPS[op]()
    rng = np.random.default_rng(7 + len(op))
    x = inputs(rng)
    dout = rand(rng, *forward(numpy_kernels, x).shape)
    # The same floats: the same operations, every sum in the same order.
    check_tensor(f'{op} forward', forward(jit.kernels, x), forward(numpy_kernels, x), 0.0)
    got, expected = backward(jit.kernels, x, dout), backward(numpy_kernels, x, dout)
    for name in x:
        check_tensor(f'{op}: d{name}', got[name], expected[name], 0.0)


@pytest.mark.parametrize('rows, I, O', [(1, 6, 9), (2, 6, 9), (3, 7, 13), (4, 6, 9),
                                         (1, 1001, 301)])    # the last: parallel dot products
def test_jit_forward_products_of_few_rows_are_numpys_floats(rows, I, O):
    """Below jit.tuning.DOT_MAX_ROWS rows (sampling's one), a dot product per output
    instead of a transposed copy: the same floats either way."""
    import jit.kernels
    from microgpt.twin import numpy_kernels
    rng = np.random.default_rng(rows * I * O)
    inp, w = rand(rng, rows, I), rand(rng, O, I)
    got, expected = np.empty((rows, O)), np.empty((rows, O))
    jit.kernels.matmul_forward(got, inp, w)
    numpy_kernels.matmul_forward(expected, inp, w)
    check_tensor('out', got, expected, 0.0)


@pytest.mark.parametrize('rows, I, O', [(11, 70, 45), (8, 64, 96), (5, 33, 31), (4, 32, 32),
                                        (37, 40, 21), (33, 19, 70)])
def test_jit_products_in_register_blocks_are_numpys_floats(rows, I, O):
    """The jit products run blocks of 4 rows x jit.tuning.BLOCK_COLUMNS columns, then
    what is left of each: whole blocks and remainders, on one thread (below
    PARALLEL_MIN_MACS), forward and both backward products, dinp and dw already holding
    earlier contributions, rows taking one of two orders. From PACK_MIN_ROWS rows (the
    last two shapes) the backward products read packed panels."""
    import jit.kernels
    from jit.tuning import BLOCK_COLUMNS, PACK_MIN_ROWS, PARALLEL_MIN_MACS
    from microgpt.twin import numpy_kernels
    assert rows * I * O < PARALLEL_MIN_MACS and max(I, O) >= BLOCK_COLUMNS
    assert (rows >= PACK_MIN_ROWS) == (rows > 11)
    rng = np.random.default_rng()
    inp, w, dout = rand(rng, rows, I), rand(rng, O, I), rand(rng, rows, O)
    order = np.array([rng.permutation(O), np.arange(O - 1, -1, -1)])
    which = rng.integers(0, 2, rows)
    which[:4] = 1                                  # a block of four rows taking one order
    dinp0, dw0 = rand(rng, rows, I), rand(rng, O, I)

    def run(K):
        out, dinp, dw = np.empty((rows, O)), dinp0.copy(), dw0.copy()
        K.matmul_forward(out, inp, w)
        K.matmul_backward_input(dinp, dout, w, order, which)
        K.matmul_backward_weight(dw, dout, inp, 0, dw.shape[0])
        return out, dinp, dw

    for name, got, want in zip(('out', 'dinp', 'dw'), run(jit.kernels), run(numpy_kernels)):
        check_tensor(name, got, want, 0.0)


@pytest.mark.parametrize('rows', [2, 5, 6, 7, 9, 10, 11])
def test_jit_backward_input_blocks_of_rows_each_in_its_own_order(rows):
    """Four rows taking different orders run as one block, each row reading its own
    outputs' rows of w (jit.kernels.row_blocks): every block mixed, or four rows of one
    order first, with the blocks past them mixed down to the last one (1 to 4 rows)."""
    import jit.kernels
    from microgpt.twin import numpy_kernels
    rng = np.random.default_rng()
    I, O = 19, 27
    w, dout, dinp0 = rand(rng, O, I), rand(rng, rows, O), rand(rng, rows, I)
    order = np.array([rng.permutation(O) for _ in range(3)])
    for which in (np.arange(rows) % 3, np.r_[[2] * 4, np.arange(rows) % 2][:rows]):
        got, expected = dinp0.copy(), dinp0.copy()
        jit.kernels.matmul_backward_input(got, dout, w, order, which)
        numpy_kernels.matmul_backward_input(expected, dout, w, order, which)
        check_tensor(f'dinp, which {which.tolist()}', got, expected, 0.0)


def test_numpy_products_summed_a_block_at_a_time_are_the_same_floats(monkeypatch):
    """Wide layers sum their terms in blocks of at most BLOCK floats: tiny blocks (a
    term or two each) give the very floats of one block (the default, at these sizes)."""
    from microgpt.twin import numpy_kernels
    inputs, forward, backward = OPS['matmul']()
    rng = np.random.default_rng(5)
    x = inputs(rng)
    dout = rand(rng, n, O)
    whole = forward(numpy_kernels, x), backward(numpy_kernels, x, dout)
    monkeypatch.setattr(numpy_kernels, 'BLOCK', 2 * max(n * O, C * O) - 1)
    blocks = forward(numpy_kernels, x), backward(numpy_kernels, x, dout)
    check_tensor('matmul forward', blocks[0], whole[0], 0.0)
    for name in x:
        check_tensor(f'matmul: d{name}', blocks[1][name], whole[1][name], 0.0)


@pytest.mark.parametrize('shape', [(5, 3), (7, 4, 9), (3, 2, 40), (9, 1)], ids=str)
def test_numpy_ordered_sums_add_term_after_term(shape):
    """ordered_sum and accumulate_into, thin terms (np.add.accumulate) and thick ones (a
    loop): each output is ((t0 + t1) + t2) + ..., as a Python loop adds floats. Terms of
    mixed magnitude, so that another order gives other floats."""
    from microgpt.twin import numpy_kernels
    rng = np.random.default_rng(11)
    terms = rng.standard_normal(shape) * 10.0 ** rng.integers(-8, 9, shape)
    start = rng.standard_normal(shape[1:])
    columns = terms.reshape(shape[0], -1).T.tolist()     # each output's terms, in order

    def in_order(first, rest):
        for t in rest:
            first = first + t
        return first

    summed = [in_order(col[0], col[1:]) for col in columns]
    check_tensor('ordered_sum', numpy_kernels.ordered_sum(terms.copy()).ravel(), summed, 0.0)
    dst = start.copy()
    numpy_kernels.accumulate_into(dst, terms.copy())
    check_tensor('accumulate_into', dst.ravel(),
                 [in_order(s, col) for s, col in zip(start.ravel().tolist(), columns)], 0.0)
    reversed_order = [in_order(col[-1], col[-2::-1]) for col in columns]
    assert reversed_order != summed                      # the order shows in the floats


def test_numpy_moveaxis_is_numpys():
    from microgpt.twin.numpy_kernels import moveaxis
    x = np.random.default_rng(2).standard_normal((2, 3, 4, 5))
    for source in range(-4, 4):
        for destination in range(-4, 4):
            got = moveaxis(x, source, destination)
            assert np.shares_memory(got, x)                      # a view, as numpy's
            assert np.array_equal(got, np.moveaxis(x, source, destination))


def test_jit_products_are_the_same_floats_on_any_number_of_threads():
    """Products above jit.tuning.PARALLEL_MIN_MACS split their outputs among threads;
    on one thread or on every one, they are numpy's reference floats, bit for bit."""
    import numba

    import jit.kernels
    from jit.tuning import PARALLEL_MIN_MACS
    from microgpt.twin import numpy_kernels
    rng = np.random.default_rng(9)
    rows, I, O = 37, 301, 211                       # awkward: no thread gets an equal share
    assert rows * I * O >= PARALLEL_MIN_MACS
    inp, w, dout = rand(rng, rows, I), rand(rng, O, I), rand(rng, rows, O)
    order = np.array([rng.permutation(O) for _ in range(2)])
    which = rng.integers(0, 2, rows)

    def run(K):
        out, dinp, dw = np.empty((rows, O)), rand(np.random.default_rng(1), rows, I), np.ones((O, I))
        K.matmul_forward(out, inp, w)
        K.matmul_backward_input(dinp, dout, w, order, which)
        K.matmul_backward_weight(dw, dout, inp, 0, dw.shape[0])
        return out, dinp, dw

    expected = run(numpy_kernels)
    threads = numba.get_num_threads()
    try:
        for n in sorted({1, 2, 3, threads}):
            numba.set_num_threads(min(n, numba.config.NUMBA_NUM_THREADS))
            for name, got, want in zip(('out', 'dinp', 'dw'), run(jit.kernels), expected):
                check_tensor(f'{name} on {n} threads', got, want, 0.0)
    finally:
        numba.set_num_threads(threads)


@pytest.mark.parametrize('backend', BACKENDS)
def test_pack_batch(backend):
    K = importlib.import_module(backend)
    from microgpt.twin.model import Batch
    batch = Batch(*(np.full(8, -1, dtype=np.int64) for _ in Batch._fields))
    tokens = np.array([[0, 5, 6, 7], [0, 9, 0, 0], [0, 2, 3, 0]], dtype=np.int64)   # (B,T+1)
    assert K.pack_batch(batch, tokens, np.array([3, 1, 2], dtype=np.int64)) == 6
    assert [x[:6].tolist() for x in batch] == [[0, 5, 6, 0, 0, 2], [5, 6, 7, 9, 2, 3],
                                               [0, 1, 2, 0, 0, 1], [3, 3, 3, 1, 2, 2],
                                               [0, 1, 1, 0, 0, 1]]
    assert all((x[6:] == -1).all() for x in batch)     # rows past the batch's are left alone


@pytest.mark.parametrize('backend', BACKENDS)
def test_attention_of_a_batchs_documents_in_parts_is_the_whole(backend):
    """Attention forward and backward over a batch's rows, and over its documents in two
    parts (rows a.., as the model's parts run them): the same floats."""
    K = importlib.import_module(backend)
    rng = np.random.default_rng(4)
    T, scale = 4, (3 ** 0.5) ** -1
    qkv, dout = rand(rng, n, 3 * C), rand(rng, n, C)

    def run(parts):
        out, att_exps, dqkv = np.zeros((n, C)), np.zeros((H, n, T)), np.zeros((n, 3 * C))
        for a, b in parts:
            K.attention_forward(out, att_exps, qkv, POS[a:b], a, b - a, H, scale)
        for a, b in parts:
            K.attention_backward(dqkv, dout, qkv, att_exps, POS[a:b], a, b - a, H, scale)
        return out, dqkv

    whole = run([(0, n)])
    for name, got, want in zip(('out', 'dqkv'), run([(0, 3), (3, n)]), whole):
        check_tensor(f'{name} in parts', got, want, 0.0)
    assert np.all(whole[1][:, C:] != 0.0)            # every key and value heard from a query


def test_jit_step_parts_cut_at_the_document_ends_nearest_halves():
    """A batch of documents splits in two parts of whole documents, near-equal in rows,
    once it has the rows (PART_MIN_ROWS a part) and its products are too small for
    threads of their own; the default run's one document, or a wide model, stays whole."""
    import jit.kernels
    from jit.tuning import PART_MIN_ROWS, STEP_PARTS
    from microgpt.twin.model import HParams, part_bounds
    assert STEP_PARTS == 2

    def hp(C, V=27):
        return HParams(V, 16, C, 4, 1, 16, C ** -1, 1e-5, 1.0, 1 / 16)

    def packed(lengths):
        return np.repeat(np.array(lengths), lengths), sum(lengths)

    ndoc, rows = packed([16, 9, 3, 15, 7, 12, 10, 1])        # 73 rows: the half is 36.5
    assert rows >= STEP_PARTS * PART_MIN_ROWS
    assert jit.kernels.step_parts(ndoc, rows, hp(16)) == 2
    assert part_bounds(ndoc, rows, 2).tolist() == [0, 43, 73]      # 43 is 6.5 off; 28, 8.5
    assert jit.kernels.step_parts(ndoc, rows, hp(128)) == 1       # 73 x 512 x 128: threads
    one, rows1 = packed([16])
    assert jit.kernels.step_parts(one, rows1, hp(16)) == 1
    few, rows2 = packed([PART_MIN_ROWS, PART_MIN_ROWS - 1])       # a row too few
    assert jit.kernels.step_parts(few, rows2, hp(16)) == 1
    assert part_bounds(*packed([60, 2, 3]), 2).tolist() == [0, 60, 65]
    assert part_bounds(*packed([2, 3, 60]), 2).tolist() == [0, 5, 65]
    assert part_bounds(*packed([5, 5, 5, 5]), 3).tolist() == [0, 5, 15, 20]


def adam_case(size=20000, step=4, steps=10, seed=3):
    """Adam's inputs and the reference loop's results, over enough parameters of varied
    magnitude that libm's pow(x, 0.5) and pow(x, 2.0) differ from sqrt(x) and x*x for
    some of them (about once in 1,200 values), and parameters smaller than their update, so
    that a kernel that took those shortcuts fails."""
    rng = np.random.default_rng(seed)
    scale = 10.0 ** rng.uniform(-8, 0, size)
    p, g, m = rand(rng, size) * 1e-4, rand(rng, size) * scale, rand(rng, size) * scale
    v = rng.random(size) * scale ** 2
    g[:50] = 0.0                               # parameters no gradient reached
    b1, b2, eps = 0.85, 0.99, 1e-8
    lr = 0.01 * (1 - step / steps)
    args = (lr, b1, b2, 1 - b1, 1 - b2, 1 - b1 ** (step + 1), 1 - b2 ** (step + 1), eps)
    expected_p, expected_m, expected_v = p.tolist(), m.tolist(), v.tolist()
    for i in range(size):   # the reference's loop body, on Python floats
        gi = float(g[i])
        expected_m[i] = b1 * expected_m[i] + (1 - b1) * gi
        expected_v[i] = b2 * expected_v[i] + (1 - b2) * gi ** 2
        m_hat = expected_m[i] / (1 - b1 ** (step + 1))
        v_hat = expected_v[i] / (1 - b2 ** (step + 1))
        expected_p[i] -= lr * m_hat / (v_hat ** 0.5 + eps)
    v_hat = np.array(expected_v) / args[6]
    assert (g * g != [float(x) ** 2 for x in g]).any()
    assert (np.sqrt(v_hat) != [float(x) ** 0.5 for x in v_hat]).any()
    shortcut_p = p - lr * (np.array(expected_m) / args[5]) / (np.sqrt(v_hat) + eps)
    assert (shortcut_p != expected_p).any()
    return (p, g, m, v), args, (expected_p, expected_m, expected_v)


@pytest.mark.parametrize('seed', [3, None], ids=['seed3', 'fresh'])
@pytest.mark.parametrize('backend', BACKENDS)
def test_adam_update_is_the_reference_loop(backend, seed):
    K = importlib.import_module(backend)
    (p, g, m, v), args, expected = adam_case(seed=seed)
    K.adam_update(p, g, m, v, *args)
    assert (p.tolist(), m.tolist(), v.tolist()) == expected


def test_numpy_kernels_exp_log_and_pow_are_pythons():
    """The numpy tier's exp, log and ** are libm's, as Python's floats compute them, on
    every element. (numpy's own np.exp, np.log and np.power are SIMD approximations on
    CPUs with AVX-512, which differed from libm on about 5% of these values here.)"""
    from microgpt.twin import numpy_kernels as K
    x = np.random.default_rng().uniform(-20.0, 0.0, 100_000)
    positive = -x + 1e-3
    assert K.exp(x).tolist() == [math.exp(v) for v in x]
    assert K.log(positive).tolist() == [math.log(v) for v in positive]
    for e in (-1, -2, -0.5, -1.5, 0.5, 2):
        assert K.power(positive, e).tolist() == [v ** e for v in positive]
    assert K.exp(x.reshape(4, -1)).shape == (4, 25_000)


def test_jit_powers_are_libm_pow():
    """exact.powers(out, x, candidates, e) == libm's pow(x, e), bit for bit, for the
    model's exponents -1, -2, -0.5 and -1.5 (not 1/x, 1/(x*x), 1/sqrt(x)...): on random
    values over sixty orders of magnitude and over the model's range (rmsnorm's mean
    squares, softmax totals), at powers of two and their neighbours, where the spacing
    between floats changes, around the range the candidates are trusted in, and at
    zeros, subnormals, infinities and NaNs, where pow itself decides. libm's pow through
    ctypes: Python's ** raises where pow overflows or divides by zero."""
    import ctypes
    import ctypes.util
    from numba import njit
    from jit import exact

    libm = ctypes.CDLL(ctypes.util.find_library('m'))
    libm.pow.restype, libm.pow.argtypes = ctypes.c_double, (ctypes.c_double, ctypes.c_double)
    rng = np.random.default_rng()
    two = 2.0 ** np.arange(-330, 331)
    edges = np.concatenate([two, np.nextafter(two, 0), np.nextafter(two, np.inf),
                            [0.0, -0.0, 5e-324, 1e-310, np.inf, -np.inf, np.nan, -1.0,
                             np.finfo(float).max, exact.SAFE_MIN, exact.SAFE_MAX]])
    x = np.concatenate([np.exp(rng.uniform(-70, 70, 300_001)), rng.uniform(1e-5, 40, 300_001),
                        edges])
    for e, candidates_of in ((-1.0, exact.reciprocal_candidates),
                             (-2.0, exact.inverse_square_candidates),
                             (-0.5, exact.inverse_root_candidates),
                             (-1.5, exact.inverse_root_cubed_candidates)):
        @njit(error_model='numpy')
        def powers(x):
            out = np.empty_like(x)
            exact.powers(out, x, candidates_of, e)
            return out

        expected = np.array([libm.pow(v, e) for v in x.tolist()])
        drawn = x[:600_002]
        shortcut = {-1.0: 1 / drawn, -2.0: 1 / (drawn * drawn), -0.5: 1 / np.sqrt(drawn),
                    -1.5: 1 / (drawn * np.sqrt(drawn))}[e]
        assert (shortcut != expected[:600_002]).any()     # the shortcut is wrong somewhere
        got = powers(x)
        same = (got.view(np.int64) == expected.view(np.int64)) | (np.isnan(got) & np.isnan(expected))
        assert same.all(), (e, x[~same][:5], got[~same][:5], expected[~same][:5])


def test_pow_candidates_hold_pows_result():
    """Adam's shortcuts for g ** 2 and v_hat ** 0.5 (jit's exact.square_candidates and
    root_candidates, numpy's pow_candidate): libm's pow returns one of the two floats
    they give, and r itself wherever the two agree (Adam takes r there, without pow).
    On random values, and at powers of two and their neighbours, where the spacing
    between floats changes, on either side of the result."""
    from numba import njit
    from jit.exact import root_candidates, square_candidates
    from microgpt.twin import numpy_kernels as K

    @njit
    def jit_candidates(x):
        out = np.empty((4, x.shape[0]))
        for i in range(x.shape[0]):
            out[0, i], out[1, i] = square_candidates(x[i])
            out[2, i], out[3, i] = root_candidates(x[i])
        return out

    rng = np.random.default_rng()
    two = 2.0 ** np.arange(-60, 61)
    edges = np.concatenate([two, np.nextafter(two, 0), np.nextafter(two, np.inf)])
    x = np.concatenate([np.exp(rng.uniform(-25, 25, 1_000_000)), edges, edges * edges])
    squares, roots = np.array([v ** 2.0 for v in x]), np.array([v ** 0.5 for v in x])
    assert (x * x != squares).any() and (np.sqrt(x) != roots).any()
    sq = x * x
    root = np.sqrt(x)
    numpy_pairs = (sq, K.pow_candidate(sq, K.product_error(x, x), 1.0), root,
                   K.pow_candidate(root, (x - root * root) - K.product_error(root, root),
                                   2 * root))
    for pairs in (jit_candidates(x), numpy_pairs):
        for (r, alt), expected in (((pairs[0], pairs[1]), squares),
                                   ((pairs[2], pairs[3]), roots)):
            assert ((expected == r) | (expected == alt)).all()
            assert (expected[alt == r] == r[alt == r]).all()


def test_jit_adam_in_parallel_slices_is_the_reference_loop():
    """From 2 * jit.tuning.ADAM_SLICE parameters, Adam runs in slices on numba's
    threads: every parameter as the reference's loop has it, on one thread or several."""
    import numba

    import jit.kernels
    from jit.tuning import ADAM_SLICE
    (p, g, m, v), args, expected = adam_case(size=2 * ADAM_SLICE + 1001, seed=None)
    threads = numba.get_num_threads()
    try:
        for n in sorted({1, threads}):
            numba.set_num_threads(n)
            got = p.copy(), m.copy(), v.copy()
            jit.kernels.adam_update(got[0], g, got[1], got[2], *args)
            assert [x.tolist() for x in got] == list(expected), f"on {n} threads"
    finally:
        numba.set_num_threads(threads)
