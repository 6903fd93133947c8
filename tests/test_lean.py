"""The lean tier against the reference's traces (1e-12) and the scalar model per tensor."""
import contextlib
import io
import random

import pytest

from check import check_tensor, rel_diff
from conftest import golden, golden_config
from microgpt import gpt
from microgpt.data import load_docs
from microgpt.lean import LeanGPT
from microgpt.config import GPTConfig
from test_twin import BATCHES, CONFIGS, DOCS, scalar_step0

# The bar: every step's loss within 1e-12 relative of the reference's (the
# forward repeats the reference's float operations; measured ~5e-16 over 1000 steps).
LEAN_RTOL = 1e-12
# Step 0, per tensor: the forward is the reference's, the backward sums each gradient in
# the order of its fused ops, not the scalar graph's: last bits apart, 1e-12 with room
# (a real error shows at 1e-3 or worse).
STEP0_RTOL = 1e-12


def run_quiet(config, data_path):
    with contextlib.redirect_stdout(io.StringIO()):
        return gpt.run(config, load_docs(data_path), LeanGPT)


@pytest.mark.parametrize('name', ['default_20', 'small_2layer'])
def test_lean_matches_golden_trace(name, data_path):
    trace = golden(name)
    result = run_quiet(golden_config(trace), data_path)
    assert rel_diff(result['losses'], trace['losses']).max() <= LEAN_RTOL
    assert result['samples'] == trace['samples']


@pytest.mark.slow
def test_lean_full_default_run(data_path):
    trace = golden('default_1000')
    result = run_quiet(golden_config(trace), data_path)
    assert rel_diff(result['losses'], trace['losses']).max() <= LEAN_RTOL
    assert result['samples'] == trace['samples']


class GradsKept(LeanGPT):
    """LeanGPT that keeps the step's gradients (Adam would zero them)."""
    def adam_update(self, step):
        pass


@pytest.mark.parametrize('config_name', CONFIGS)
@pytest.mark.parametrize('docs', BATCHES, ids='|'.join)
def test_lean_step0_gradients_against_the_scalar_model(config_name, docs):
    config = GPTConfig(**dict(CONFIGS[config_name].asdict(), batch_size=len(docs)))
    tok = gpt.Tokenizer(set(''.join(DOCS)))
    batch = [tok.encode(doc) for doc in docs]
    params, _, loss, grads = scalar_step0(config, tok.vocab_size, batch)
    random.seed(config.seed)
    model = GradsKept(config, tok.vocab_size)
    assert model.state_dict == params        # the same random.gauss draws: bit-identical
    check_tensor('loss', model.train_step(batch, 0), loss, STEP0_RTOL)
    for name, expected in grads.items():
        check_tensor(f'd{name}', model.grads[name], expected, STEP0_RTOL)
