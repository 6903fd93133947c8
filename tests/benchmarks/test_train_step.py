"""pytest-benchmark: one training step of each tier on the default config, side by side.

`pytest tests/benchmarks --benchmark-only` times them; compare the means for the ratio
between tiers (one run, one machine, so the ratio is meaningful where the absolute
times are noisy). Each tier cycles through the same 20 documents, the first 20 steps of
the default run, whole cycles only, so every tier's mean is over the same step mix.
"""
import itertools
import random

import pytest

from microgpt import gpt, tiers
from microgpt.config import GPTConfig
from microgpt.data import load_docs


@pytest.fixture(scope='module')
def docs_and_tok(data_path):
    docs = load_docs(data_path)
    random.seed(42)
    random.shuffle(docs.order)
    return docs, gpt.Tokenizer(docs.chars())


CYCLE = 20
ROUNDS = {'scalar': CYCLE, 'numpy': 10 * CYCLE, 'jit': 100 * CYCLE}


@pytest.mark.parametrize('tier', ROUNDS)
def test_train_step(benchmark, tier, docs_and_tok):
    docs, tok = docs_and_tok
    config = GPTConfig()
    model = tiers.load(tier)(config, tok.vocab_size)
    steps = itertools.count()

    def one_step():
        step = next(steps) % CYCLE
        return model.train_step(tok.encode(docs[step]), step)

    benchmark.extra_info['tier'] = tier
    loss = benchmark.pedantic(one_step, rounds=ROUNDS[tier], warmup_rounds=0)
    assert 0 < loss < 10
