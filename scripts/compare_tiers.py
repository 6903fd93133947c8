#!/usr/bin/env python3
"""Run every installed tier on the same config, each in its own process, and compare.

    python scripts/compare_tiers.py [--steps N] [--tiers T ...] [--data PATH] [--plot PATH]

Prints a markdown table, one row per tier: us per step, speed-up over the scalar tier,
peak RSS above a bare interpreter, the worst relative loss error against the scalar
tier (the spec: it always runs, as the reference), how many steps' losses are equal to
its bit for bit, and whether the samples are the same. A tier that is not installed, or
has no device, is a row that says why. --plot PATH also draws four panels: each tier's
loss, smoothed; each tier's per-step deviation from the scalar tier on a log scale,
exact zeros marked as identical; time per step and peak memory, on log scales. It
needs matplotlib (pip install -e '.[plot]').
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
            'identical_steps': sum(a == b for a, b in zip(report['losses'], reference['losses'])),
            'samples_identical': report['samples'] == reference['samples'],
            'losses': report['losses'],
        }
    return rows


def table(rows):
    base = rows.get('scalar', {}).get('us_per_step')
    lines = ['| tier | us per step | speed-up vs scalar | peak RSS above python (MB) | '
             'worst relative loss error vs scalar | losses identical (steps) | '
             'samples identical |',
             '|---|---:|---:|---:|---:|---:|---|']
    for name, r in rows.items():
        if 'skipped' in r:
            lines.append(f"| {name} | skipped: {r['skipped']} | | | | | |")
            continue
        speedup = f"{base / r['us_per_step']:.1f}x" if base else '-'
        lines.append(f"| {name} | {r['us_per_step']:.1f} | {speedup} | "
                     f"{r['peak_rss_above_python_mb']:.2f} | {r['worst_rel_error']:.1e} | "
                     f"{r['identical_steps']} of {len(r['losses'])} | "
                     f"{'yes' if r['samples_identical'] else 'no'} |")
    return '\n'.join(lines)


def smoothed(values, window):
    """The trailing mean over `window` steps (fewer at the start)."""
    out, total = [], 0.0
    for i, x in enumerate(values):
        total += x - (values[i - window] if i >= window else 0.0)
        out.append(total / min(i + 1, window))
    return out


def plot(rows, path, window=50):
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    ran = {name: r for name, r in rows.items() if 'skipped' not in r}
    reference = ran['scalar']['losses']
    fig, ((ax_loss, ax_dev), (ax_speed, ax_mem)) = plt.subplots(2, 2, figsize=(13, 8.5))
    colors = {name: f'C{i}' for i, name in enumerate(ran)}
    steps = range(1, len(reference) + 1)
    for i, (name, r) in enumerate(ran.items()):
        ax_loss.plot(steps, smoothed(r['losses'], window), color=colors[name], label=name,
                     linewidth=3.0 - 0.5 * i, alpha=0.85)
    ax_loss.set(title=f'training loss, mean of the last {window} steps',
                xlabel='step', ylabel='loss')
    ax_loss.legend()
    # Deviation from the scalar tier, |loss - scalar| / scalar, per step. Zeros (the same
    # float) have no place on a log scale: each tier's are drawn on a row of its own
    # below the dotted line, marked "identical".
    floor = 1e-18
    others = [name for name in ran if name != 'scalar']
    for k, name in enumerate(others):
        dev = [abs(a - b) / abs(b) for a, b in zip(ran[name]['losses'], reference)]
        nonzero = [(s, d) for s, d in zip(steps, dev) if d > 0]
        if nonzero:
            ax_dev.scatter(*zip(*nonzero), s=6, color=colors[name],
                           label=f'{name}: differs at {len(nonzero)} of {len(dev)} steps')
        zeros = [s for s, d in zip(steps, dev) if d == 0]
        if zeros:
            ax_dev.scatter(zeros, [floor / 2.5 ** (k + 1)] * len(zeros), s=10, marker='|',
                           color=colors[name],
                           label=f'{name}: identical at {len(zeros)} of {len(dev)} steps')
    ax_dev.axhline(floor, color='grey', linewidth=0.8, linestyle=':')
    ax_dev.text(len(reference), floor * 1.5, 'below: identical (== the scalar tier)',
                ha='right', va='bottom', fontsize=8, color='grey')
    ax_dev.set(title='per-step deviation from the scalar tier (the spec)', xlabel='step',
               ylabel='|loss - scalar| / scalar (log scale)', yscale='log',
               ylim=(floor / 2.5 ** (len(others) + 1), 1e-12))
    ax_dev.set_yticks([t for t in ax_dev.get_yticks() if t >= floor])
    ax_dev.legend(fontsize=8, loc='upper left')
    names = list(ran)
    ax_speed.bar(names, [ran[n]['us_per_step'] for n in names],
                 color=[colors[n] for n in names])
    ax_speed.set(title='time per training step (whole run)', ylabel='us (log scale)',
                 yscale='log')
    ax_mem.bar(names, [max(ran[n]['peak_rss_above_python_mb'], 0.01) for n in names],
               color=[colors[n] for n in names])
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
