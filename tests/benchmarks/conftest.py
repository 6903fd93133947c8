"""Benchmarks of every tier, side by side in one run, and a closing table.

Timings come from pytest-benchmark, in this process. Memory and exactness come from one
whole default run of each tier in its own process (microgpt/bench.py): peak RSS above
the bare interpreter's, and the worst relative loss deviation from the golden trace.
"""
import pytest

from check import rel_diff
from conftest import golden
from microgpt import bench, tiers

TIERS = list(tiers.TIERS)
RESULTS = {}    # tier -> {column: value}, or {'skipped': reason}


@pytest.fixture(scope='session')
def bench_env():
    return bench.environment()


@pytest.fixture(scope='session')
def python_baseline_mb(bench_env):
    return bench.python_baseline_mb(bench_env)


_whole_runs = {}


@pytest.fixture
def whole_run(bench_env, python_baseline_mb, data_path):
    """whole_run(tier): memory and exactness of the tier's default run (run once)."""
    def get(tier):
        if tier not in _whole_runs:
            report = bench.run_tier(tier, bench_env, '--data', str(data_path))
            trace = golden('default_1000')
            _whole_runs[tier] = {
                'peak_rss_above_python_mb': report['peak_rss_mb'] - python_baseline_mb,
                'worst_rel_loss_error': float(rel_diff(report['losses'], trace['losses']).max()),
                'losses_identical': report['losses'] == trace['losses'],
                'samples_match_golden': report['samples'] == trace['samples'],
                'run_us_per_step': 1e6 * report['train_seconds'] / len(report['losses']),
                'run_steps_per_s': len(report['losses']) / report['train_seconds'],
            }
        return _whole_runs[tier]
    return get


@pytest.fixture
def model_class():
    """model_class(tier): the tier's model, or a skip that says why it is missing."""
    def get(tier):
        try:
            Model = tiers.load(tier)
        except tiers.TierError as e:
            reason = str(e)
        else:
            reason = tiers.unmeasurable(tier)
            if reason is None:
                return Model
        RESULTS[tier] = {'skipped': reason}
        pytest.skip(reason)
    return get


def pytest_terminal_summary(terminalreporter):
    if not RESULTS:
        return
    tr = terminalreporter
    tr.section('tiers, side by side (default config)')
    base = RESULTS.get('scalar', {}).get('train_step_us')
    tr.write_line('| tier | train step (us) | vs scalar | sample 20 names (ms) | '
                  'peak RSS above python (MB) | worst rel. loss error | losses = golden | '
                  'samples = golden |')
    tr.write_line('|---|---|---|---|---|---|---|---|')
    for tier in TIERS:
        r = RESULTS.get(tier)
        if r is None:
            continue
        if 'skipped' in r:
            tr.write_line(f"| {tier} | skipped: {r['skipped']} | | | | | | |")
            continue
        step = r.get('train_step_us')
        ratio = f"{base / step:.0f}x" if base and step else '-'

        def fmt(key, spec):
            return format(r[key], spec) if key in r else '-'
        tr.write_line(f"| {tier} | {fmt('train_step_us', '.1f')} | {ratio} | "
                      f"{fmt('sample_ms', '.2f')} | {fmt('peak_rss_above_python_mb', '.2f')} | "
                      f"{fmt('worst_rel_loss_error', '.1e')} | "
                      f"{'yes' if r.get('losses_identical') else 'no'} | "
                      f"{'yes' if r.get('samples_match_golden') else 'no'} |")
