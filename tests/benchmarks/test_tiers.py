"""pytest-benchmark: a training step and the sampling of 20 names, for every tier on the
default config. `pytest tests/benchmarks --benchmark-only` runs them and ends with a
table. Slow: each tier's whole default run (memory, exactness) runs once, in a
subprocess, and the scalar tier's takes minutes.

Training steps cycle through the same 20 documents (the default run's first 20), whole
cycles only, so every tier's mean is over the same mix of document lengths.
"""
import contextlib
import io
import itertools
import random

import pytest

from benchmarks.conftest import RESULTS, TIERS
from microgpt import gpt
from microgpt.config import GPTConfig
from microgpt.data import load_docs

CYCLE = 20
ROUNDS = {'scalar': 1, 'lean': 5, 'numpy': 10, 'jit': 100, 'cuda': 20}   # whole cycles


@pytest.fixture(scope='module')
def docs_and_tok(data_path):
    docs = load_docs(data_path)
    random.seed(42)
    docs.shuffle()
    return docs, gpt.Tokenizer(docs.chars())


@pytest.fixture
def fresh_model(docs_and_tok, model_class):
    """fresh_model(tier): the tier's model at the default config, drawn from seed 42."""
    def make(tier):
        Model = model_class(tier)
        config = GPTConfig()
        random.seed(config.seed)
        return Model(config, docs_and_tok[1].vocab_size), config
    return make


def record(tier, benchmark, key, scale, whole):
    RESULTS.setdefault(tier, {})[key] = benchmark.stats.stats.mean * scale
    RESULTS[tier].update(whole)
    benchmark.extra_info.update(whole)


@pytest.mark.slow
@pytest.mark.parametrize('tier', TIERS)
def test_train_step(benchmark, tier, docs_and_tok, fresh_model, whole_run):
    model, _ = fresh_model(tier)
    docs, tok = docs_and_tok
    steps = itertools.count()

    def one_step():
        step = next(steps) % CYCLE
        return model.train_step([tok.encode(docs[step])], step)

    loss = benchmark.pedantic(one_step, rounds=CYCLE * ROUNDS[tier])
    assert 0 < loss < 10
    record(tier, benchmark, 'train_step_us', 1e6, whole_run(tier))


@pytest.mark.slow
@pytest.mark.parametrize('tier', TIERS)
def test_sample(benchmark, tier, docs_and_tok, fresh_model, whole_run):
    model, config = fresh_model(tier)
    tok = docs_and_tok[1]

    def sample_20():
        with contextlib.redirect_stdout(io.StringIO()):
            return gpt.sample(model, tok, config)

    names = benchmark.pedantic(sample_20, setup=lambda: random.seed(7), rounds=ROUNDS[tier])
    assert len(names) == 20
    record(tier, benchmark, 'sample_ms', 1e3, whole_run(tier))
