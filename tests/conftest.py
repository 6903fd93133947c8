import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

# GPU code runs everywhere: on a machine without an NVIDIA GPU, numba's CUDA simulator
# stands in (it must be chosen before numba.cuda is first imported).
HAS_GPU = os.path.exists('/dev/nvidiactl')
if not HAS_GPU:
    os.environ.setdefault('NUMBA_ENABLE_CUDASIM', '1')

ROOT = Path(__file__).resolve().parent.parent
# Traces produced by the reference itself (copied from the project's shared ground truth)
GOLDEN = ROOT / 'tests' / 'golden'
CONFIG_KEYS = ('seed', 'steps', 'n_layer', 'n_embd', 'n_head', 'block_size',
               'temperature', 'num_samples')


def golden(name):
    """A trace produced by the reference itself: config, every loss, the samples."""
    with open(GOLDEN / f'{name}.json') as f:
        return json.load(f)


def golden_config(trace):
    from microgpt.config import GPTConfig
    return GPTConfig(**{k: trace['config'][k] for k in CONFIG_KEYS})


def cli_args(config):
    """The command-line flags that reproduce `config`."""
    return [f'--{k.replace("_", "-")}={getattr(config, k)}' for k in CONFIG_KEYS]


def run_cli(*args, cwd=None, env=None, timeout=1800):
    """`python -m microgpt ARGS` in a subprocess: (returncode, stdout bytes, stderr str)."""
    full_env = dict(os.environ, **(env or {}))
    full_env['PYTHONPATH'] = str(ROOT) + os.pathsep + full_env.get('PYTHONPATH', '')
    p = subprocess.run([sys.executable, '-m', 'microgpt', *map(str, args)], cwd=cwd,
                       env=full_env, capture_output=True, timeout=timeout)
    return p.returncode, p.stdout, p.stderr.decode()


def expected_stdout(trace, num_docs=32033):
    """What the reference prints for a trace, rebuilt from its losses and samples."""
    c = trace['config']
    out = f"num docs: {num_docs}\nvocab size: {c['vocab_size']}\nnum params: {c['num_params']}\n"
    out += ''.join(f"step {i+1:4d} / {c['steps']:4d} | loss {loss:.4f}\r"
                   for i, loss in enumerate(trace['losses']))
    out += "\n--- inference (new, hallucinated names) ---\n"
    out += ''.join(f"sample {i+1:2d}: {s}\n" for i, s in enumerate(trace['samples']))
    return out.encode()


def find_names():
    """names.txt, found as the CLI finds it (less ./input.txt): $MICROGPT_DATA, else the
    cache, else the pinned download, checked by sha256. None when none can be had."""
    from microgpt.data import DataError, cache_path, download_names
    if os.environ.get('MICROGPT_DATA'):
        path = Path(os.environ['MICROGPT_DATA']).resolve()
        if not path.exists():
            pytest.fail(f"MICROGPT_DATA names a file that does not exist: {path}")
        return path
    try:
        if not os.path.exists(cache_path()):
            download_names(cache_path())
    except DataError:
        return None
    return Path(cache_path())


@pytest.fixture(scope='session')
def data_path():
    path = find_names()
    if path is None:
        pytest.skip("no names.txt: not in $MICROGPT_DATA or the cache, and no download")
    return path
