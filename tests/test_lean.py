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


# Modules a lean run must not import: each costs its 2.5 MB budget a large share (GNU
# time's %M, README): argparse 0.45 MB, dataclasses (through inspect) 1.5, hashlib
# (OpenSSL) 3.5, tempfile and shutil (with bz2, lzma and zlib) 1.3; numpy is another tier's.
HEAVY_MODULES = {'argparse', 'dataclasses', 'inspect', 'hashlib', 'tempfile', 'shutil',
                 'bz2', 'lzma', 'numpy'}


def test_a_lean_run_leaves_heavy_modules_out(data_path, tmp_path):
    """The memory is measured by hand (it needs a quiet machine); the imports that decide
    most of it are checked here: every module in sys.modules when the run exits."""
    import os
    import subprocess
    import sys
    from conftest import ROOT
    listing = tmp_path / 'modules.txt'
    wrapper = ("import atexit, runpy, sys\n"
               f"atexit.register(lambda: open({str(listing)!r}, 'w').write(' '.join(sys.modules)))\n"
               "runpy.run_module('microgpt', run_name='__main__')\n")
    p = subprocess.run([sys.executable, '-c', wrapper, '--tier', 'lean', '--data', data_path,
                        '--steps', '2', '--num-samples', '1', '--json', tmp_path / 'run.json',
                        '--save', tmp_path / 'model.json'], capture_output=True, text=True,
                       env=dict(os.environ, PYTHONPATH=str(ROOT)))
    assert p.returncode == 0, p.stderr
    imported = set(listing.read_text().split())
    assert {'microgpt.cli', 'microgpt.lean', 'json'} <= imported     # the list is read right
    assert not imported & HEAVY_MODULES, sorted(imported & HEAVY_MODULES)
