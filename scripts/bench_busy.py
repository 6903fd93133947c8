#!/usr/bin/env python3
"""Threads on a busy machine: the jit tier on 1 thread and on 2, with and without a CPU
hog on one core, side by side in one run.

    python scripts/bench_busy.py [--configs NAME ...] [--rounds N] [--data PATH]

For each config and each condition (idle; busy: another process spinning on one core),
runs `python -m microgpt --tier jit` with NUMBA_NUM_THREADS=1 and =2, alternating,
--rounds times, each in its own process, and prints the us a step of each run (the
steps after the first, from --json) and the median ratio of 1 thread's to 2 threads'
time: above 1, two threads are faster. The configs: the default run; batch 16; 512
wide, 4 layers, block 64, batch 32 (scripts/scaling.py's init and rate for that width).
"""
import argparse
import os
import statistics
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..'))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import scaling  # noqa: E402
from microgpt import bench  # noqa: E402
from microgpt.data import find_data  # noqa: E402

CONFIGS = {
    'default': [],
    'batch16': ['--batch-size', '16'],
    'wide': ['--n-embd', '512', '--n-layer', '4', '--block-size', '64', '--batch-size', '32',
             '--steps', '12', '--init-std', repr(scaling.init_std(512)),
             '--learning-rate', repr(scaling.learning_rate(512))],
}


def us_per_step(env, data, args, threads):
    report = bench.run_tier('jit', dict(env, NUMBA_NUM_THREADS=str(threads)), '--data', data,
                            '--num-samples', '0', *args)
    after = report['after_first_step']
    return 1e6 * after['seconds'] / after['steps']


def hog():
    """Another process keeping one core busy."""
    return subprocess.Popen([sys.executable, '-c', 'while True: pass'])


def table(configs, rounds, data, env):
    """The markdown table of those configs, idle and busy."""
    lines = ['| config | machine | 1 thread (us a step) | 2 threads (us a step) | '
             '1 thread / 2 threads (median) |', '|---|---|---|---|---:|']
    for name in configs:
        for condition in ('idle', 'busy'):
            hogs = [hog()] if condition == 'busy' else []
            try:
                times = {1: [], 2: []}
                for _ in range(rounds):
                    for threads in (1, 2):
                        times[threads].append(us_per_step(env, data, CONFIGS[name], threads))
            finally:
                for h in hogs:
                    h.kill()
                    h.wait()
            ratio = statistics.median(times[1]) / statistics.median(times[2])
            lines.append(f"| {name} | {condition} | {', '.join(f'{t:.0f}' for t in times[1])} "
                         f"| {', '.join(f'{t:.0f}' for t in times[2])} | {ratio:.2f} |")
            print(lines[-1], file=sys.stderr)
    return '\n'.join(lines)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('--configs', nargs='+', default=list(CONFIGS), choices=list(CONFIGS))
    p.add_argument('--rounds', type=int, default=3)
    p.add_argument('--data', metavar='PATH', help='as microgpt --data')
    args = p.parse_args(argv)
    print(table(args.configs, args.rounds, find_data(args.data), bench.environment()))
    return 0


if __name__ == '__main__':
    sys.exit(main())
