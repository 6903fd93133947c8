"""The twin tiers (numpy, jit) against the scalar spec, bit for bit: per tensor at step 0
(logits, loss, every gradient) and end to end against golden traces."""
import contextlib
import io
import random

import numpy as np
import pytest

from check import check_tensor
from conftest import cli_args, golden, golden_config
from microgpt import gpt, tiers
from microgpt.config import GPTConfig
from microgpt.data import load_docs
from microgpt.twin import acts_view

TWIN_TIERS = ['numpy', 'jit']
CONFIGS = {
    'default': GPTConfig(),
    'two_layers': GPTConfig(n_layer=2, n_embd=8, n_head=2, block_size=8),
    'three_heads_of_8': GPTConfig(n_embd=24, n_head=3, block_size=12),
}
# Documents: a short name, one longer than every block_size above with repeated
# characters (so one embedding row collects gradient from several positions), one
# character (two positions) and the empty one (a single position, BOS to BOS).
DOCS = ['emma', 'mississippi-massachusetts', 'a', '']
# Every float is the scalar graph's: the tolerance is zero. check_tensor still says
# where a tensor first differs, and by how much, when one does.
EXACT = 0.0


def scalar_step0(config, vocab_size, batch):
    """The scalar model's first step on a batch (token lists): its parameters, the
    logits of every document's positions one after another, the loss, the gradients."""
    random.seed(config.seed)
    model = gpt.ScalarGPT(config, vocab_size)
    logits = []
    for tokens in batch:
        keys, values = model.new_cache()
        for pos in range(min(config.block_size, len(tokens) - 1)):
            out = gpt.gpt(model.state_dict, config, tokens[pos], pos, keys, values)
            logits.append([l.data for l in out])
    params = {name: [[p.data for p in row] for row in mat] for name, mat in model.state_dict.items()}
    loss = model.step_loss(batch)
    loss.backward()
    grads = {name: [[p.grad for p in row] for row in mat] for name, mat in model.state_dict.items()}
    return params, logits, loss.data, grads


# Batches: each document alone, and all four in one step (the long one first, so that
# the short ones' rows follow a full block), then the same with another order.
BATCHES = [[doc] for doc in DOCS] + [DOCS[1:2] + DOCS[:1] + DOCS[2:], DOCS[::-1]]


@pytest.mark.parametrize('tier', TWIN_TIERS)
@pytest.mark.parametrize('config_name', CONFIGS)
@pytest.mark.parametrize('docs', BATCHES, ids='|'.join)
def test_step0_per_tensor_against_the_scalar_model(tier, config_name, docs):
    config = GPTConfig(**dict(CONFIGS[config_name].asdict(), batch_size=len(docs)))
    tok = gpt.Tokenizer(set(''.join(DOCS)))
    batch = [tok.encode(doc) for doc in docs]
    params, logits, loss, grads = scalar_step0(config, tok.vocab_size, batch)

    random.seed(config.seed)
    twin = tiers.load(tier)(config, tok.vocab_size)
    for name, expected in params.items():   # the same random.gauss draws: bit-identical
        assert np.array_equal(twin.state_dict()[name], expected), name
    twin_loss = twin.train_step(batch, 0)
    rows = acts_view(twin.flat.acts, twin.hp, twin.rows).logits[:len(logits)]
    check_tensor('logits', rows, logits, EXACT)
    assert twin_loss == loss
    twin_grads = twin.state_dict(twin.flat.grads)
    assert twin_grads.keys() == grads.keys()
    for name, expected in grads.items():
        check_tensor(f'd{name}', twin_grads[name], expected, EXACT)


@pytest.mark.parametrize('batch_size, block_size', [(1, 16), (3, 8), (2, 30)])
def test_encode_steps_is_step_batch_in_arrays(batch_size, block_size):
    """The twin's loop encodes a chunk of steps with numpy: the same documents, wrapping
    around, and the same ids as gpt.step_batch, cut to block_size + 1 and padded, with
    the number of positions each trains on."""
    from microgpt.twin import encode_steps
    docs = DOCS + ['zoë', 'ŁódźŻółw-日本語', 'x' * (block_size + 5)]
    tok = gpt.Tokenizer(set(''.join(docs)))
    first, count, T = 2, 5, block_size
    tokens, lengths = encode_steps(docs, tok, first, count, batch_size, T)
    assert tokens.shape == (count, batch_size, T + 1) and lengths.shape == (count, batch_size)
    for s in range(count):
        for b, ids in enumerate(gpt.step_batch(docs, tok, first + s, batch_size)):
            n = min(T, len(ids) - 1)
            assert lengths[s, b] == n
            assert tokens[s, b].tolist() == (ids + [0] * (T + 1))[:T + 1]
    # the same from Docs, packed as a run holds them (Docs.joined): one slice of its text
    from microgpt.data import Docs
    held = Docs('\n'.join(docs))
    held.keep_first(len(held))
    assert held.packed
    as_list = [held[i] for i in range(len(held))]
    for got, expected in zip(encode_steps(held, tok, first, count, batch_size, T),
                             encode_steps(as_list, tok, first, count, batch_size, T)):
        assert got.tolist() == expected.tolist()


@pytest.mark.parametrize('steps', [1000, 7777])
def test_adam_schedule_is_the_references_floats(steps):
    """The twin computes a chunk's learning rates and bias corrections with numpy: every
    one the float the reference's expressions give, on Python floats (gpt.adam_update),
    down to the last step of a run, where the decay reaches its smallest rate."""
    from microgpt.twin import NumpyGPT
    c = GPTConfig(steps=steps)
    expected = [[c.learning_rate * (1 - step / c.steps), 1 - c.beta1 ** (step + 1),
                 1 - c.beta2 ** (step + 1)] for step in range(steps)]
    model = NumpyGPT(c, 27)
    assert model.adam_schedule(0, steps).tolist() == expected
    assert model.adam_schedule(steps - 3, 3).tolist() == expected[-3:]


@pytest.mark.parametrize('tier', TWIN_TIERS)
def test_a_batch_is_its_documents_run_apart_averaged(tier):
    """One long document (a full block) and a short one, packed into one step, give the
    gradients of the two run apart, averaged: nothing of one reaches the other through
    attention, the packing or the loss (to rounding: the sums' order differs)."""
    config = GPTConfig(n_layer=2, n_embd=8, n_head=2, block_size=8)
    tok = gpt.Tokenizer(set(''.join(DOCS)))
    long, short = tok.encode(DOCS[1]), tok.encode('emma')
    Model = tiers.load(tier)

    def step0(batch):
        random.seed(config.seed)
        model = Model(GPTConfig(**dict(config.asdict(), batch_size=len(batch))), tok.vocab_size)
        loss = model.train_step(batch, 0)
        return loss, model.state_dict(model.flat.grads)

    loss, grads = step0([long, short])
    (loss_long, grads_long), (loss_short, grads_short) = step0([long]), step0([short])
    assert loss == (loss_long + loss_short) * (1 / 2)
    for name, g in grads.items():
        check_tensor(f'd{name}', g, (grads_long[name] + grads_short[name]) / 2, 1e-12)


@pytest.mark.parametrize('parts', [2, 3])
def test_a_step_in_parts_is_the_same_floats(parts):
    """The model's step in parts (its documents, then the parameters' gradients, then
    Adam, each split in `parts`), here one after another on numpy's kernels: every
    loss and parameter as in one part, over a few steps of a batch of five."""
    import types

    from microgpt.twin import TwinGPT, encode_steps, model, numpy_kernels
    config = GPTConfig(n_layer=2, n_embd=8, n_head=2, block_size=8, batch_size=5)
    docs = DOCS + ['olivia', 'ava']
    tok = gpt.Tokenizer(set(''.join(docs)))
    tokens, lengths = encode_steps(docs, tok, 0, 3, 5, 8)

    def train(kernels):
        random.seed(config.seed)
        twin = TwinGPT(config, tok.vocab_size)
        twin.fn = model.bind(kernels)
        return twin.train_steps(tokens, lengths, 0), twin.flat.params.copy()

    in_parts = types.SimpleNamespace(**vars(numpy_kernels))
    in_parts.step_parts = lambda ndoc, n, hp: parts
    (losses, params), (want_losses, want_params) = train(in_parts), train(numpy_kernels)
    assert losses == want_losses
    check_tensor('parameters after 3 steps', params, want_params, EXACT)


# Wide enough that the jit tier's products run in parallel; and the default width in a
# batch of 16, which runs its documents in parts, one on each thread.
THREAD_CONFIGS = {'wide': ['--n-embd', '64', '--batch-size', '4'],
                  'in_parts': ['--batch-size', '16']}


@pytest.mark.parametrize('config', THREAD_CONFIGS)
def test_the_thread_count_does_not_change_a_bit(config, data_path, tmp_path):
    """On one thread and on two, the very same losses and samples, and numpy's."""
    import json
    import subprocess
    import sys

    from conftest import ROOT, run_cli
    subprocess.run([sys.executable, '-m', 'jit.warm', '--wait'], cwd=ROOT, check=True,
                   capture_output=True)               # so that the runs use the compiled tier
    reports = []
    for tier, threads in (('jit', '1'), ('jit', '2'), ('numpy', '1')):
        path = tmp_path / f'{tier}{threads}.json'
        rc, _, err = run_cli('--data', data_path, '--tier', tier, *THREAD_CONFIGS[config],
                             '--steps', '4', '--num-samples', '4', '--json', path,
                             env={'NUMBA_NUM_THREADS': threads})
        assert rc == 0 and (tier == 'numpy' or 'loaded from the numba cache' in err), err
        reports.append(json.loads(path.read_text()))
    for report in reports[1:]:
        assert report['losses'] == reports[0]['losses']
        assert report['samples'] == reports[0]['samples']


def test_check_tensor_reports_the_first_mismatch():
    with pytest.raises(AssertionError, match=r'dwte: 1 of 3 .* first at \(1,\): got 2\.5, '
                                             r'expected 2\.0; max relative difference 0\.25'):
        check_tensor('dwte', [1.0, 2.5, 3.0], [1.0, 2.0, 3.0], 1e-12)


def run_quiet(config, data_path, Model):
    with contextlib.redirect_stdout(io.StringIO()):
        return gpt.run(config, load_docs(data_path), Model)


@pytest.mark.parametrize('tier', TWIN_TIERS)
@pytest.mark.parametrize('name', ['default_20', 'small_2layer'])
def test_twin_matches_golden_trace(tier, name, data_path):
    trace = golden(name)
    result = run_quiet(golden_config(trace), data_path, tiers.load(tier))
    assert result['losses'] == trace['losses']
    assert result['samples'] == trace['samples']


@pytest.mark.slow
@pytest.mark.parametrize('tier', TWIN_TIERS)
def test_twin_full_default_run(tier, data_path):
    trace = golden('default_1000')
    result = run_quiet(golden_config(trace), data_path, tiers.load(tier))
    assert result['losses'] == trace['losses']
    assert result['samples'] == trace['samples']


def test_default_tier_is_jit_and_reports_its_compile_time(data_path):
    from conftest import run_cli
    rc, out, err = run_cli('--data', data_path, '--steps', '3', '--num-samples', '2')
    assert rc == 0, err
    assert 'tier jit' in err
    assert 'jit compile' in err or 'compiling the jit tier in the background' in err
    assert out.startswith(b'num docs: 32033\nvocab size: 27\nnum params: 4192\n')


def test_a_cold_first_run_trains_at_once_and_prints_the_same(data_path, tmp_path, monkeypatch):
    """With an empty numba cache the command line compiles in the background and trains
    on numpy's kernels meanwhile; once the cache is ready, runs load the compiled model.
    Both print the reference's output, byte for byte."""
    import time

    from conftest import expected_stdout, run_cli
    trace = golden('default_20')
    args = ('--data', data_path, *cli_args(golden_config(trace)))
    env = {'NUMBA_CACHE_DIR': str(tmp_path / 'cache')}
    rc, out, err = run_cli(*args, env=env)
    assert rc == 0, err
    assert 'compiling the jit tier in the background (first run only)' in err
    assert out == expected_stdout(trace)
    deadline = time.monotonic() + 600
    while not list((tmp_path / 'cache').glob('model-*/ready')):
        assert time.monotonic() < deadline, "the background compile never finished"
        time.sleep(1)
    monkeypatch.setenv('NUMBA_CACHE_DIR', str(tmp_path / 'cache'))
    import jit
    while True:                                   # its lock goes as the compile exits
        with jit.compile_lock(wait=False) as free:
            if free:
                break
        assert time.monotonic() < deadline, "the background compile never exited"
        time.sleep(0.2)
    rc, out, err = run_cli(*args, env=env)
    assert rc == 0, err
    assert 'jit compile' in err and 'loaded from the numba cache' in err
    assert out == expected_stdout(trace)


def test_backward_orders_are_each_products_distinct_orders():
    """The twin's orders (model.backward_orders), one row per distinct order a product's
    input rows take: qkv's, position 0's (k and q rows interleaved) and every later
    position's; rows_C's, rows_4C's and rows_V's, one each, last to first. lm_head's
    input takes rows_V's with its target's row moved last (orders.lm_head_order), the
    target set aside rather than a row per target: the orders grow linearly in V."""
    from microgpt.orders import lm_head_order
    from microgpt.twin.model import HParams, backward_orders
    hp = HParams(vocab_size=4, block_size=3, n_embd=4, n_head=2, n_layer=1, batch_size=2,
                 inv_C=0.25, rms_eps=1e-5, attn_scale=1.0, inv_batch=0.5)
    orders = backward_orders(hp)
    assert [lm_head_order(4, target) for target in range(4)] == [
        [3, 2, 1, 0], [3, 2, 0, 1], [3, 1, 0, 2], [2, 1, 0, 3]]
    # attn_qkv's rows: q 0..3, k 4..7, v 8..11; heads of 2, the last first
    assert orders.qkv.tolist() == [[11, 10, 7, 3, 6, 2, 9, 8, 5, 1, 4, 0],
                                   [11, 10, 7, 6, 3, 2, 9, 8, 5, 4, 1, 0]]
    assert orders.rows_C.tolist() == [[3, 2, 1, 0]]
    assert orders.rows_4C.tolist() == [list(range(15, -1, -1))]
    assert orders.rows_V.tolist() == [[3, 2, 1, 0]]
    assert orders.same.tolist() == [0] * 6
    wide = backward_orders(hp._replace(vocab_size=40_000))
    assert sum(o.size for o in wide) == 6 * 4 + 4 + 16 + 40_000 + 6
