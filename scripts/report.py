#!/usr/bin/env python3
"""Measure the project's figures and rewrite the tables that carry them.

    python scripts/report.py [--steps N] [--data PATH] [--sweep] [--busy] [--dry-run]

Runs, each in its own process, on this machine:
- every installed tier on the default config, --steps steps (default 300; the scalar
  tier takes about 0.15 s a step): scripts/compare_tiers.py's table (us a step, the
  speed-up over the scalar tier, peak RSS above a bare interpreter, and how many losses
  and whether the samples are the scalar tier's);
- the jit tier at batch 16 (1000 steps): us a step, and a document;
- the jit tier at 512 wide, 4 layers, block 64, batch 32 (scripts/scaling.py's point,
  8 timed steps): GFLOP/s and the fraction of numpy's float64 matmul roof;
- with --sweep, scripts/scaling.py's whole sweep (some minutes);
- with --busy, scripts/bench_busy.py: 1 thread against 2, idle and with a CPU hog.

It redraws docs/tiers.png (and, with --sweep, docs/scaling.png); both need matplotlib.

Then it rewrites the figures between the `<!-- report:NAME -->` and
`<!-- /report:NAME -->` markers of README.md and docs/performance.md, each table
stamped with the date, the commit, the machine and the versions (--dry-run prints them
instead). Re-measuring is re-running this; the old figures live in git.
"""
import argparse
import os
import platform
import re
import subprocess
import sys
import time
from types import SimpleNamespace

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path[:0] = [ROOT, HERE]

import bench_busy  # noqa: E402
import compare_tiers  # noqa: E402
import scaling  # noqa: E402
from microgpt import bench, tiers  # noqa: E402
from microgpt.data import find_data  # noqa: E402

WIDE = dict(width=512, n_layer=4, block_size=64, batch=32, steps=8)


def stamp():
    """When, at which commit, on what, with which versions."""
    commit = subprocess.run(['git', 'describe', '--always', '--dirty'], cwd=ROOT,
                            capture_output=True, text=True).stdout.strip() or 'unknown'
    cpu = platform.processor() or platform.machine()
    try:
        with open('/proc/cpuinfo') as f:
            cpu = next(line.split(':', 1)[1].strip() for line in f
                       if line.startswith('model name'))
    except (OSError, StopIteration):
        pass
    versions = [f"Python {platform.python_version()}"]
    for module in ('numpy', 'numba'):
        try:
            versions.append(f"{module} {__import__(module).__version__}")
        except ImportError:
            pass
    return (f"{time.strftime('%Y-%m-%d', time.gmtime())}, commit {commit}, "
            f"{os.cpu_count()} cores of {cpu}, {', '.join(versions)}")


def batch16(data, env):
    report = bench.run_tier('jit', env, '--data', data, '--batch-size', '16',
                            '--num-samples', '0')
    after = report['after_first_step']
    us = 1e6 * after['seconds'] / after['steps']
    return us, us / 16


def wide(data, env):
    args = SimpleNamespace(data=data, n_layer=WIDE['n_layer'], block_size=WIDE['block_size'])
    roof = scaling.blas_roof_gflops()
    point = scaling.run_point('jit', WIDE['width'], WIDE['batch'], WIDE['steps'], args, env,
                              scaling.Workload(data))
    roof = max(roof, scaling.blas_roof_gflops())
    return point, roof


def headline(rows, b16, wide_point, roof):
    us, per_doc = b16
    return (f"Batch 16 on jit: {us:.0f} us a step, {per_doc:.1f} us a document. "
            f"512 wide, 4 layers, block 64, batch 32 on jit: {wide_point['us_per_step'] / 1e3:.0f}"
            f" ms a step, {wide_point['gflops']:.1f} GFLOP/s, "
            f"{100 * wide_point['gflops'] / roof:.1f}% of numpy's float64 matmul "
            f"({roof:.0f} GFLOP/s).")


def rewrite(path, name, body):
    """Replace what stands between the report:NAME markers of `path` with `body`."""
    with open(path, encoding='utf-8') as f:
        text = f.read()
    pattern = re.compile(rf'(<!-- report:{name} -->\n).*?(\n<!-- /report:{name} -->)', re.S)
    if not pattern.search(text):
        raise SystemExit(f"{path}: no report:{name} markers")
    text = pattern.sub(lambda m: m.group(1) + body + m.group(2), text)
    tmp = path + '.tmp'
    with open(tmp, 'w', encoding='utf-8') as f:
        f.write(text)
    os.replace(tmp, path)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('--steps', type=int, default=300, help='steps of the tiers table')
    p.add_argument('--data', metavar='PATH', help='as microgpt --data')
    p.add_argument('--sweep', action='store_true', help="also scripts/scaling.py's sweep")
    p.add_argument('--busy', action='store_true', help="also scripts/bench_busy.py's table")
    p.add_argument('--dry-run', action='store_true', help='print, rewrite nothing')
    args = p.parse_args(argv)
    data = find_data(args.data)
    env = bench.environment()
    when = stamp()
    rows = compare_tiers.compare(list(tiers.TIERS), args.steps, data)
    b16 = batch16(data, env)
    wide_point, roof = wide(data, env)
    figures = (f"Measured {when}; `python scripts/report.py`, the default config, "
               f"{args.steps} steps.\n\n{compare_tiers.table(rows)}\n\n"
               f"{headline(rows, b16, wide_point, roof)}")
    sections = {'figures': figures}
    if not args.dry_run:
        compare_tiers.plot(rows, os.path.join(ROOT, 'docs', 'tiers.png'))
    if args.sweep:
        sweep_args = SimpleNamespace(tiers=['scalar', 'lean', 'numpy', 'jit'],
                                     widths=[16, 32, 64, 128, 256, 512], batches=[1, 8, 32],
                                     n_layer=1, block_size=16, seconds=2.0, data=data)
        sweep_roof = scaling.blas_roof_gflops()
        results = scaling.sweep(sweep_args, env, scaling.Workload(data))
        sweep_roof = max(sweep_roof, scaling.blas_roof_gflops())
        sections['sweep'] = (f"Measured {when}; `python scripts/report.py --sweep`.\n\n"
                             + scaling.table(results, sweep_roof, sweep_args))
        if not args.dry_run:
            scaling.plot(results, sweep_roof, sweep_args,
                         os.path.join(ROOT, 'docs', 'scaling.png'))
    if args.busy:
        sections['busy'] = (f"Measured {when}; `python scripts/report.py --busy` "
                            f"(scripts/bench_busy.py, 2 rounds).\n\n"
                            + bench_busy.table(list(bench_busy.CONFIGS), 2, data, env))
    for name, body in sections.items():
        print(f"--- {name}\n{body}\n")
        if args.dry_run:
            continue
        for path in ('README.md', os.path.join('docs', 'performance.md')):
            if name == 'figures' or path.startswith('docs'):
                rewrite(os.path.join(ROOT, path), name, body)
    return 0


if __name__ == '__main__':
    sys.exit(main())
