"""Whole runs of each tier in a subprocess, measured side by side, and a closing table.

Peak RSS is what the run reports (VmHWM, see microgpt/memory.py), compared with that of
a bare interpreter that only reads its own (`python -c pass` plus reading one file),
under the same interpreter and environment. The package's bytecode is compiled first
(where PYTHONDONTWRITEBYTECODE is set, every import would compile it again), as an
installed package has it, so the figures measure the tier rather than the compiler.
"""
import json
import os
import subprocess
import sys

import pytest

from conftest import ROOT

RESULTS = {}   # tier -> {'us_per_step', 'peak_rss_above_python_mb', ...}


@pytest.fixture(scope='session')
def bench_env():
    subprocess.run([sys.executable, '-m', 'compileall', '-q', str(ROOT / 'microgpt')],
                   check=True, stdout=subprocess.DEVNULL)
    return dict(os.environ, PYTHONPATH=str(ROOT))


def run(args, env):
    p = subprocess.run(args, env=env, capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    return p.stdout


@pytest.fixture(scope='session')
def python_baseline_mb(bench_env):
    """Peak RSS of the bare interpreter: the least of three runs."""
    code = 'from microgpt.memory import peak_rss_mb; print(peak_rss_mb())'
    return min(float(run([sys.executable, '-c', code], bench_env)) for _ in range(3))


def run_tier(tier, data_path, env, tmp_path, extra=()):
    """One `python -m microgpt --tier TIER` run: its JSON report."""
    report = tmp_path / f'{tier}.json'
    run([sys.executable, '-m', 'microgpt', '--tier', tier, '--data', str(data_path),
         '--json', str(report), *extra], env)
    return json.loads(report.read_text())


def pytest_terminal_summary(terminalreporter):
    if not RESULTS:
        return
    tr = terminalreporter
    tr.section('tiers, side by side')
    base = RESULTS.get('scalar', {}).get('us_per_step')
    tr.write_line(f"{'tier':8s} {'us/step':>12s} {'vs scalar':>10s} {'peak RSS above python':>22s}")
    for tier, r in RESULTS.items():
        ratio = f"{base / r['us_per_step']:.1f}x" if base else '-'
        tr.write_line(f"{tier:8s} {r['us_per_step']:12.1f} {ratio:>10s} "
                      f"{r['peak_rss_above_python_mb']:19.2f} MB")
