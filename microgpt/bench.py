"""Running tiers side by side, each in its own process: the shared core of
scripts/compare_tiers.py and the benchmarks. Standard library only.

Memory is each run's own peak RSS (VmHWM, see memory.py) above that of a bare
interpreter started the same way. The package's bytecode is compiled first: where
PYTHONDONTWRITEBYTECODE is set, every import would compile it again, and the compiler's
memory would be counted against the tier.
"""
import importlib.util
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


class RunError(Exception):
    pass


def environment():
    """The environment runs get: this checkout first on the path, bytecode compiled, and
    the jit tier compiled into numba's cache, so that its runs time training (a cold
    cache would train on numpy's kernels while compiling: see jit/__init__.py)."""
    subprocess.run([sys.executable, '-m', 'compileall', '-q', str(ROOT / 'microgpt')],
                   check=True, stdout=subprocess.DEVNULL)
    path = os.environ.get('PYTHONPATH')
    env = dict(os.environ, PYTHONPATH=str(ROOT) + (os.pathsep + path if path else ''))
    if importlib.util.find_spec('numba') is not None:
        subprocess.run([sys.executable, '-m', 'jit.warm', '--wait'], env=env, check=True)
    return env


def python(args, env):
    p = subprocess.run([sys.executable, *args], env=env, capture_output=True, text=True)
    if p.returncode:
        lines = p.stderr.strip().splitlines() or ['(no message)']
        raise RunError(lines[-1])
    return p.stdout


def python_baseline_mb(env, runs=3):
    """Peak RSS of the bare interpreter (reading its own VmHWM): the least of a few runs."""
    code = 'from microgpt.memory import peak_rss_mb; print(peak_rss_mb())'
    return min(float(python(['-c', code], env)) for _ in range(runs))


def run_tier(tier, env, *args):
    """`python -m microgpt --tier TIER ARGS...`: its --json report."""
    with tempfile.TemporaryDirectory() as folder:
        report = os.path.join(folder, 'report.json')
        python(['-m', 'microgpt', '--tier', tier, '--json', report, *args], env)
        with open(report) as f:
            return json.load(f)


def worst_rel_error(losses, reference):
    """max |a - b| / |b| over the steps."""
    return max(abs(a - b) / abs(b) for a, b in zip(losses, reference))
