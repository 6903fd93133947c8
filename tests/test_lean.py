"""The lean tier against the reference's traces and the scalar model per tensor, bit for
bit: every loss ==, the same samples, byte-identical stdout, every gradient ==."""
import contextlib
import io
import random

import pytest

from check import check_tensor
from conftest import GOLDEN, cli_args, expected_stdout, golden, golden_config, run_cli
from microgpt import gpt
from microgpt.data import load_docs
from microgpt.lean import LeanGPT
from microgpt.config import GPTConfig
from test_twin import BATCHES, CONFIGS, DOCS, scalar_step0

# Every float is the scalar graph's: the tolerance is zero. check_tensor still says
# where a tensor first differs, and by how much, when one does.
EXACT = 0.0


def run_quiet(config, data_path):
    with contextlib.redirect_stdout(io.StringIO()) as out:
        return gpt.run(config, load_docs(data_path), LeanGPT), out.getvalue()


@pytest.mark.parametrize('name', ['default_20', 'small_2layer'])
def test_lean_matches_golden_trace_bit_for_bit(name, data_path):
    trace = golden(name)
    result, out = run_quiet(golden_config(trace), data_path)
    assert result['losses'] == trace['losses']      # == on floats: bit-identical
    assert result['samples'] == trace['samples']
    assert out.encode() == expected_stdout(trace)


@pytest.mark.parametrize('batch_size', [2, 5])
def test_lean_batches_are_the_scalar_models(batch_size, data_path):
    """Batches of the names, three steps: every loss and sample the scalar tier's."""
    config = GPTConfig(steps=3, batch_size=batch_size, num_samples=3, n_embd=8, n_head=2)
    with contextlib.redirect_stdout(io.StringIO()):
        expected = gpt.run(config, load_docs(data_path), gpt.ScalarGPT)
    result, _ = run_quiet(config, data_path)
    assert result['losses'] == expected['losses']
    assert result['samples'] == expected['samples']


@pytest.mark.slow
def test_lean_full_default_run_is_byte_identical(data_path):
    trace = golden('default_1000')
    rc, out, err = run_cli('--tier', 'lean', '--data', data_path, *cli_args(golden_config(trace)))
    assert rc == 0, err
    assert out == (GOLDEN / 'default_1000.stdout').read_bytes()


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
    assert model.train_step(batch, 0) == loss
    for name, expected in grads.items():
        check_tensor(f'd{name}', model.grads[name], expected, EXACT)


# Modules a lean run must not import: each costs its 2.5 MB budget a large share (GNU
# time's %M, docs/lean.md): argparse 0.45 MB, dataclasses (through inspect) 1.5, hashlib
# (OpenSSL) 3.5, tempfile and shutil (with bz2, lzma and zlib) 1.3; numpy is another tier's.
HEAVY_MODULES = {'argparse', 'dataclasses', 'inspect', 'hashlib', 'tempfile', 'shutil',
                 'bz2', 'lzma', 'numpy'}


def test_a_lean_run_leaves_heavy_modules_out(data_path, tmp_path):
    """The memory is measured by hand (it needs a quiet machine); the imports that decide
    most of it are checked here: every module in sys.modules when the run exits, less
    those a bare interpreter of this environment starts with (a package's .pth file may
    import some at every start: numba-cuda's imports importlib.resources, and with it
    tempfile and shutil), which the memory's baseline holds too."""
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
    bare = subprocess.run([sys.executable, '-c', 'import sys; print(" ".join(sys.modules))'],
                          capture_output=True, text=True,
                          env=dict(os.environ, PYTHONPATH=str(ROOT)))
    imported = set(listing.read_text().split()) - set(bare.stdout.split())
    assert {'microgpt.cli', 'microgpt.lean'} <= imported     # the list is read right
    assert not imported & HEAVY_MODULES, sorted(imported & HEAVY_MODULES)
