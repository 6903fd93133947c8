"""The command line: `python -m microgpt [--tier TIER] [--data PATH] ...`.

stdout carries exactly what the reference prints; everything else (tier, timings,
memory) goes to stderr. Bad input is one line on stderr and exit status 2.
"""
import argparse
import os
import sys

from . import tiers
from .config import ConfigError, GPTConfig
from .data import DataError, find_data, load_docs, write_atomic
from .memory import peak_rss_mb

PROG = 'microgpt'


class ArgumentParser(argparse.ArgumentParser):
    def error(self, message):
        """One line and exit status 2, rather than argparse's usage block."""
        raise UsageError(message)


class UsageError(Exception):
    pass


def help_formatter(prog):
    """argparse's formatter, told the terminal width: left to find it, argparse imports
    shutil, which brings bz2, lzma and zlib (~0.8 MB of RSS) into every run."""
    try:
        width = os.get_terminal_size().columns
    except OSError:
        width = 80
    return argparse.HelpFormatter(prog, width=width - 2)


def build_parser():
    d = GPTConfig()
    p = ArgumentParser(prog=PROG, formatter_class=help_formatter,
                       description="Train Karpathy's microGPT on a list of names, then sample "
                       "new ones. Tiers: " + ', '.join(tiers.TIERS) + '.')
    p.add_argument('--tier', help='implementation to run (default: the fastest installed)')
    p.add_argument('--data', metavar='PATH', help='UTF-8 text, one document per line '
                   '(default: ./input.txt, $MICROGPT_DATA, the cached or downloaded names.txt)')
    p.add_argument('--seed', type=int, default=d.seed)
    p.add_argument('--steps', type=int, default=d.steps)
    p.add_argument('--n-layer', type=int, default=d.n_layer)
    p.add_argument('--n-embd', type=int, default=d.n_embd)
    p.add_argument('--n-head', type=int, default=d.n_head)
    p.add_argument('--block-size', type=int, default=d.block_size)
    p.add_argument('--temperature', type=float, default=d.temperature)
    p.add_argument('--num-samples', type=int, default=d.num_samples)
    p.add_argument('--json', metavar='PATH', help='write losses, samples and timings here')
    return p


def check_writable(path):
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise UsageError(f"--json: folder does not exist: {folder}")
    if not os.access(folder, os.W_OK):
        raise UsageError(f"--json: folder is not writable: {folder}")


def main(argv=None):
    try:
        return _main(argv)
    except (UsageError, ConfigError, DataError, tiers.TierError) as e:
        print(f"{PROG}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"\n{PROG}: interrupted", file=sys.stderr)
        return 130


def _main(argv):
    args = build_parser().parse_args(argv)
    config = GPTConfig(seed=args.seed, steps=args.steps, n_layer=args.n_layer,
                       n_embd=args.n_embd, n_head=args.n_head, block_size=args.block_size,
                       temperature=args.temperature, num_samples=args.num_samples)
    if args.tier is None:
        tier, Model = tiers.default()
    else:
        tier, Model = args.tier, tiers.load(args.tier)
    if args.json:
        check_writable(args.json)
    path = find_data(args.data)
    docs = load_docs(path)
    print(f"{PROG}: tier {tier}, data {path}", file=sys.stderr)

    from .gpt import run
    result = run(config, docs, Model)

    steps_per_s = config.steps / result['train_seconds']
    rss = peak_rss_mb()
    print(f"{PROG}: tier {tier} | train {result['train_seconds']:.2f} s, {steps_per_s:.1f} steps/s, "
          f"{1e6 / steps_per_s:.0f} us/step | sample {result['sample_seconds']:.2f} s | "
          f"peak RSS {rss:.1f} MB", file=sys.stderr)
    if args.json:
        import json
        report = {
            'tier': tier,
            'config': dict(config.asdict(), vocab_size=result['vocab_size'],
                           num_params=result['model'].num_params, num_docs=len(docs), data=path),
            'losses': result['losses'],
            'samples': result['samples'],
            'train_seconds': result['train_seconds'],
            'sample_seconds': result['sample_seconds'],
            'peak_rss_mb': rss,
        }
        write_atomic(args.json, (json.dumps(report, indent=1) + '\n').encode())
    return 0
