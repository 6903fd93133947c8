#!/usr/bin/env python3
"""Run every installed tier on the same config, each in its own process, and compare.

    python scripts/compare_tiers.py [--steps N] [--tiers T ...] [--data PATH] [--plot PATH]

Prints a markdown table, one row per tier: us per step, speed-up over the scalar tier,
peak RSS above a bare interpreter, the worst relative loss error against the scalar
tier (the spec: it always runs, as the reference), and whether the samples are the
same. A tier that is not installed, or has no device, is a row that says why.
--plot PATH also draws the loss curves (on top of each other, if the tiers agree) and
bars of speed and memory on log scales; it needs matplotlib (pip install -e '.[plot]').
"""
import argparse
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..'))

from microgpt import bench, tiers  # noqa: E402


def compare(names, steps, data):
    """{tier: row dict}; the scalar tier runs first, as the reference."""
    env = bench.environment()
    baseline = bench.python_baseline_mb(env)
    args = ['--steps', str(steps)] + (['--data', data] if data else [])
    rows, reference = {}, None
    for name in ['scalar'] + [n for n in names if n != 'scalar']:
        try:
            tiers.load(name)
            reason = tiers.unmeasurable(name)
            if reason:
                rows[name] = {'skipped': reason}
                continue
            report = bench.run_tier(name, env, *args)
        except (tiers.TierError, bench.RunError) as e:
            rows[name] = {'skipped': str(e)}
            continue
        reference = reference or report
        rows[name] = {
            'us_per_step': 1e6 * report['train_seconds'] / len(report['losses']),
            'peak_rss_above_python_mb': report['peak_rss_mb'] - baseline,
            'worst_rel_error': bench.worst_rel_error(report['losses'], reference['losses']),
            'samples_identical': report['samples'] == reference['samples'],
            'losses': report['losses'],
        }
    return rows


def table(rows):
    base = rows.get('scalar', {}).get('us_per_step')
    lines = ['| tier | us per step | speed-up vs scalar | peak RSS above python (MB) | '
             'worst relative loss error vs scalar | samples identical |',
             '|---|---:|---:|---:|---:|---|']
    for name, r in rows.items():
        if 'skipped' in r:
            lines.append(f"| {name} | skipped: {r['skipped']} | | | | |")
            continue
        speedup = f"{base / r['us_per_step']:.1f}x" if base else '-'
        lines.append(f"| {name} | {r['us_per_step']:.1f} | {speedup} | "
                     f"{r['peak_rss_above_python_mb']:.2f} | {r['worst_rel_error']:.1e} | "
                     f"{'yes' if r['samples_identical'] else 'no'} |")
    return '\n'.join(lines)


def plot(rows, path):
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    ran = {name: r for name, r in rows.items() if 'skipped' not in r}
    fig, (ax_loss, ax_speed, ax_mem) = plt.subplots(1, 3, figsize=(15, 4.5),
                                                    gridspec_kw={'width_ratios': [2, 1, 1]})
    for i, (name, r) in enumerate(ran.items()):
        ax_loss.plot(range(1, len(r['losses']) + 1), r['losses'], label=name,
                     linewidth=2.5 - 0.4 * i, alpha=0.8)
    ax_loss.set(title='training loss per step (the tiers overlap)', xlabel='step', ylabel='loss')
    ax_loss.legend()
    names = list(ran)
    ax_speed.bar(names, [ran[n]['us_per_step'] for n in names], color='tab:blue')
    ax_speed.set(title='time per training step', ylabel='us (log scale)', yscale='log')
    ax_mem.bar(names, [max(ran[n]['peak_rss_above_python_mb'], 0.01) for n in names],
               color='tab:orange')
    ax_mem.set(title='peak RSS above bare python', ylabel='MB (log scale)', yscale='log')
    fig.tight_layout()
    tmp = path + '.tmp.png'
    fig.savefig(tmp, dpi=100)
    os.replace(tmp, path)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('--steps', type=int, default=1000, help='training steps (default 1000)')
    p.add_argument('--tiers', nargs='+', default=list(tiers.TIERS), metavar='TIER',
                   help=f"tiers to run (default: all of {', '.join(tiers.TIERS)})")
    p.add_argument('--data', metavar='PATH', help='as microgpt --data')
    p.add_argument('--plot', metavar='PATH', help='also write a PNG figure here')
    args = p.parse_args(argv)
    unknown = [t for t in args.tiers if t not in tiers.TIERS]
    if unknown or args.steps < 1:
        p.error(f"unknown tier(s) {', '.join(unknown)}" if unknown else '--steps must be positive')
    if args.plot:
        try:
            import matplotlib  # noqa: F401
        except ImportError:
            p.error("--plot needs matplotlib: pip install -e '.[plot]'")
    rows = compare(args.tiers, args.steps, args.data)
    print(table(rows))
    if args.plot:
        plot(rows, args.plot)
        print(f"\nplot written to {args.plot}", file=sys.stderr)
    return 0


if __name__ == '__main__':
    sys.exit(main())
