"""Checkpoints (--save, `sample --load`), prompts, progress and Ctrl-C."""
import json
import os
import signal
import subprocess
import sys
import time

import pytest

from conftest import ROOT, run_cli
from microgpt import checkpoint

CPU_TIERS = ['scalar', 'lean', 'numpy', 'jit']
TRAIN = ['--steps', '12', '--num-samples', '2', '--n-embd', '8', '--n-head', '2',
         '--block-size', '8']


@pytest.fixture(scope='module')
def saved(data_path, tmp_path_factory):
    """A checkpoint saved by each tier, after the same short training run."""
    folder = tmp_path_factory.mktemp('ckpt')
    paths = {}
    for tier in CPU_TIERS:
        paths[tier] = folder / f'{tier}.json'
        rc, out, err = run_cli('--tier', tier, '--data', data_path, '--save', paths[tier], *TRAIN)
        assert rc == 0, err
    return paths


def sample_lines(path, tier, *extra):
    rc, out, err = run_cli('sample', '--load', path, '--tier', tier, '--seed', '5',
                           '--num-samples', '6', *extra)
    assert rc == 0, err
    return out.decode().splitlines()


def test_checkpoints_agree_across_tiers(saved):
    params = {tier: json.loads(path.read_text())['params'] for tier, path in saved.items()}
    scalar = params['scalar']
    for tier in ('lean', 'numpy', 'jit'):  # every tier is bit-identical, its weights too
        assert params[tier] == scalar, tier


@pytest.mark.parametrize('loader', CPU_TIERS)
def test_round_trip_saved_by_one_tier_loaded_by_another(saved, loader):
    reference = sample_lines(saved['scalar'], 'scalar')
    assert reference[0] == '' and len(reference) == 8 and reference[2].startswith('sample  1: ')
    assert sample_lines(saved['scalar'], loader) == reference
    assert sample_lines(saved[loader], 'scalar') == reference


@pytest.mark.parametrize('tier', CPU_TIERS)
def test_prompt_continues_names(saved, tier):
    lines = sample_lines(saved['scalar'], tier, '--prompt', 'ma')
    names = [line.split(': ', 1)[1] for line in lines[2:]]
    assert len(names) == 6 and all(name.startswith('ma') for name in names)
    assert any(len(name) > 2 for name in names)
    assert lines == sample_lines(saved['scalar'], 'scalar', '--prompt', 'ma')


def one_line_error(rc, out, err, expected):
    assert rc == 2 and out == b'' and 'Traceback' not in err, err
    assert len(err.strip().splitlines()) == 1 and expected in err, err


def test_prompt_with_unknown_characters(saved):
    one_line_error(*run_cli('sample', '--load', saved['scalar'], '--prompt', 'Maé'),
                   "characters not in the checkpoint's vocabulary: 'Mé'")


def test_prompt_as_long_as_the_context(saved):
    one_line_error(*run_cli('sample', '--load', saved['scalar'], '--prompt', 'abcdefgh'),
                   'shorter than block_size (8)')


def test_truncated_checkpoint(saved, tmp_path):
    bad = tmp_path / 'truncated.json'
    bad.write_bytes(saved['scalar'].read_bytes()[:5000])
    one_line_error(*run_cli('sample', '--load', bad), 'truncated or corrupt')


def test_corrupt_and_mismatched_checkpoints(saved, tmp_path):
    good = json.loads(saved['scalar'].read_text())
    cases = {
        'not_ours': ({'hello': 'world'}, 'is not a microgpt checkpoint'),
        'version': (dict(good, version=99), 'checkpoint version 99'),
        'shape': (dict(good, config=dict(good['config'], n_embd=16)), 'should be 27x16'),
        'vocab': (dict(good, uchars=good['uchars'][:-1]), 'should be 26x8'),
        'missing': (dict(good, params={k: v for k, v in good['params'].items() if k != 'wpe'}),
                    'parameters do not match the config'),
        'config': (dict(good, config=dict(good['config'], n_head=3)), 'divisible by n_head'),
        'nan': (dict(good, params=dict(good['params'], wpe=[[float('nan')] * 8] * 8)),
                'not finite numbers'),
    }
    for name, (payload, expected) in cases.items():
        path = tmp_path / f'{name}.json'
        path.write_text(json.dumps(payload))
        one_line_error(*run_cli('sample', '--load', path), expected)
    one_line_error(*run_cli('sample', '--load', tmp_path / 'absent.json'), 'checkpoint not found')
    (tmp_path / 'binary.json').write_bytes(b'\xff\xfe\x00garbage')
    one_line_error(*run_cli('sample', '--load', tmp_path / 'binary.json'), 'truncated or corrupt')


def test_interrupted_save_leaves_no_partial_file(saved, tmp_path, monkeypatch):
    from microgpt.config import GPTConfig
    config, uchars, params = checkpoint.load(saved['scalar'])

    def crash(src, dst):
        raise KeyboardInterrupt
    monkeypatch.setattr(os, 'replace', crash)
    with pytest.raises(KeyboardInterrupt):
        checkpoint.save(tmp_path / 'ckpt.json', GPTConfig(**config.asdict()), uchars, params)
    assert os.listdir(tmp_path) == []


def test_progress_on_stderr_and_ctrl_c_saves_what_was_trained(data_path, tmp_path):
    ckpt = tmp_path / 'partial.json'
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    p = subprocess.Popen([sys.executable, '-m', 'microgpt', '--tier', 'scalar', '--data',
                          str(data_path), '--save', str(ckpt)], env=env,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    time.sleep(5)                  # training under way, progress shown: now Ctrl-C
    p.send_signal(signal.SIGINT)
    out, err = p.communicate(timeout=120)
    err = err.decode()
    assert p.returncode == 130, err
    assert 'Traceback' not in err
    assert 'steps/s' in err and 'ETA' in err                       # progress was shown
    last = err.strip().splitlines()[-1]
    assert last.startswith('microgpt: interrupted after ') and last.endswith(f'saved to {ckpt}')
    steps = int(last.split('after ')[1].split(' of')[0])
    assert 0 < steps < 1000
    assert out.decode().count('\r') == steps                      # stdout: only step lines
    config, uchars, params = checkpoint.load(ckpt)                  # a whole, valid file
    assert config.steps == 1000 and len(uchars) == 26
    assert [f for f in os.listdir(tmp_path)] == ['partial.json']
