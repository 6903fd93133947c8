"""The default run (1000 steps, 20 samples) of each pure-Python tier in a subprocess:
steps/s and peak RSS above the bare interpreter, in extra_info and the closing table.
Slow (the scalar tier takes minutes), so only in the full run."""
import pytest

from benchmarks.conftest import RESULTS, run_tier  # noqa: I001
from conftest import golden
from check import rel_diff


@pytest.mark.slow
@pytest.mark.parametrize('tier', ['scalar', 'lean'])
def test_default_run(benchmark, tier, data_path, bench_env, python_baseline_mb, tmp_path):
    report = benchmark.pedantic(run_tier, args=(tier, data_path, bench_env, tmp_path),
                                      rounds=1, iterations=1)
    trace = golden('default_1000')
    info = {
        'us_per_step': 1e6 * report['train_seconds'] / len(report['losses']),
        'steps_per_s': len(report['losses']) / report['train_seconds'],
        'peak_rss_mb': report['peak_rss_mb'],
        'python_baseline_mb': python_baseline_mb,
        'peak_rss_above_python_mb': report['peak_rss_mb'] - python_baseline_mb,
        'worst_rel_loss_error': float(rel_diff(report['losses'], trace['losses']).max()),
    }
    benchmark.extra_info.update(info)
    RESULTS[tier] = info
    assert report['samples'] == trace['samples']
