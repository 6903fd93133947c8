"""Bad input: one line on stderr, exit status 2, no traceback, no file written."""
import pytest

from conftest import run_cli


def check_error(args, expected, cwd=None, env=None):
    rc, out, err = run_cli(*args, cwd=cwd, env=env)
    assert rc == 2, err
    assert 'Traceback' not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith('microgpt: error: ')
    assert expected in lines[0], lines[0]
    assert out == b''


@pytest.mark.parametrize('args, expected', [
    (['--tier', 'quantum'], "unknown tier 'quantum'"),
    (['--n-embd', '10', '--n-head', '4'], 'n_embd (10) must be divisible by n_head (4)'),
    (['--n-embd', '0'], 'n_embd must be positive, got 0'),
    (['--n-head', '-2'], 'n_head must be positive, got -2'),
    (['--n-layer', '0'], 'n_layer must be positive, got 0'),
    (['--block-size', '-1'], 'block_size must be positive, got -1'),
    (['--steps', '0'], 'steps must be positive, got 0'),
    (['--steps', '-5'], 'steps must be positive, got -5'),
    (['--num-samples', '-1'], 'num_samples must be zero or more, got -1'),
    (['--temperature', '-0.5'], 'temperature must be positive, got -0.5'),
    (['--temperature', '0'], 'temperature must be positive, got 0.0'),
    (['--batch-size', '0'], 'batch_size must be positive, got 0'),
    (['--init-std', '0'], 'init_std must be positive, got 0.0'),
    (['--learning-rate', '-1'], 'learning_rate must be positive, got -1.0'),
    (['--learning-rate', 'fast'], "argument --learning-rate: invalid float value: 'fast'"),
    (['--batch-size', '2.5'], "argument --batch-size: invalid int value: '2.5'"),
    (['--steps', 'ten'], "argument --steps: invalid int value: 'ten'"),
    (['--temperature', 'hot'], "argument --temperature: invalid float value: 'hot'"),
    (['--unknown-flag'], 'option --unknown-flag not recognized'),
    (['--steps'], 'option --steps requires argument'),
    (['--n', '3'], 'option --n not a unique prefix'),
    (['--steps', '3', 'extra'], 'unrecognized arguments: extra'),
    (['--steps=3.0'], "argument --steps: invalid int value: '3.0'"),
])
def test_bad_arguments(args, expected, data_path):
    check_error(['--data', data_path, *args], expected)


@pytest.mark.parametrize('tier', ['scalar', 'lean', 'numpy', 'jit'])
def test_a_config_too_big_for_memory_is_refused_before_any_work(tier, data_path, tmp_path):
    """n_embd 100000 is 1.2e11 parameters: the memory it needs is computed from the
    shapes and compared with what the machine has, before a weight is drawn."""
    save = tmp_path / 'model.json'
    check_error(['--data', data_path, '--tier', tier, '--n-embd', '100000', '--save', save],
                'this config needs about ')
    assert not save.exists()


def test_memory_estimates_follow_the_shapes():
    from microgpt.config import GPTConfig
    from microgpt.memory import needed_bytes
    from microgpt.twin import NumpyGPT
    config = GPTConfig(n_layer=2, n_embd=32, batch_size=3)
    model = NumpyGPT(config, 27)          # the twin's arrays, counted exactly
    arrays = sum(a.nbytes for a in (*model.flat, *model.orders, *model.batch))
    assert arrays <= needed_bytes('jit', config, 27) <= arrays + 8 * 4 * 32 * 32
    assert needed_bytes('cuda', config, 27) is None   # on the GPU: not this machine's memory
    for tier in ('scalar', 'lean', 'numpy', 'jit'):   # more of everything needs more
        small = needed_bytes(tier, config, 27)
        for bigger in (dict(n_embd=64), dict(n_layer=3), dict(block_size=32), dict(batch_size=4)):
            assert needed_bytes(tier, GPTConfig(**dict(config.asdict(), **bigger)), 27) > small


def test_missing_data_file(tmp_path):
    check_error(['--data', tmp_path / 'nope.txt'], 'data file not found')


def test_empty_data_file(tmp_path):
    path = tmp_path / 'empty.txt'
    path.write_text('\n  \n\t\n')
    check_error(['--data', path], 'data file has no non-empty lines')


def test_non_utf8_data_file(tmp_path):
    path = tmp_path / 'latin1.txt'
    path.write_bytes('émile\nzoë\n'.encode('latin-1'))
    check_error(['--data', path], 'data file is not valid UTF-8')


def test_data_path_is_a_directory(tmp_path):
    check_error(['--data', tmp_path], 'data file is a directory')


def test_json_into_missing_folder(data_path, tmp_path):
    check_error(['--data', data_path, '--json', tmp_path / 'no' / 'run.json'],
                'folder does not exist')
    assert not (tmp_path / 'no').exists()


@pytest.mark.parametrize('flag', ['--json', '--save'])
def test_output_that_is_a_folder_fails_before_training(flag, data_path, tmp_path):
    # Before, the default run trained to the end and then died with IsADirectoryError.
    check_error(['--data', data_path, flag, tmp_path], f'{flag}: {tmp_path} is a folder')
    assert list(tmp_path.iterdir()) == []


def test_output_in_an_unwritable_place_fails_before_training(data_path):
    # /sys refuses new files even to root (for whom os.access would say yes)
    check_error(['--data', data_path, '--save', '/sys/model.json'],
                '--save: cannot write in /sys: Permission denied')


def test_json_and_save_to_one_file(data_path, tmp_path):
    path = tmp_path / 'out.json'
    check_error(['--data', data_path, '--json', path, '--save', path],
                '--json and --save name the same file')
    assert not path.exists()


def test_a_failed_write_after_training_goes_to_a_fallback_file(data_path, tmp_path,
                                                              monkeypatch, capsys):
    # The disk fills up during training: the checkpoint goes to a file in the temp
    # folder, named on stderr, and the exit status says the run did not do as asked.
    from microgpt import cli, data
    target = tmp_path / 'model.json'
    monkeypatch.setenv('TMPDIR', str(tmp_path / 'tmp'))
    (tmp_path / 'tmp').mkdir()

    def disk_full(path, payload):
        if str(path) == str(target):
            raise OSError(28, 'No space left on device')
        data.write_atomic(path, payload)
    monkeypatch.setattr(cli, 'write_atomic', disk_full)
    import tempfile
    monkeypatch.setattr(tempfile, 'tempdir', None)       # re-read TMPDIR
    rc = cli.main(['--data', str(data_path), '--tier', 'lean', '--steps', '3',
                   '--num-samples', '1', '--save', str(target)])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 1 and not target.exists()
    fallbacks = list((tmp_path / 'tmp').iterdir())
    assert len(fallbacks) == 1 and fallbacks[0].name.startswith('microgpt-save-')
    assert (f"microgpt: error: --save: could not write {target} (No space left on device); "
            f"written to {fallbacks[0]} instead") in err
    from microgpt import checkpoint
    config, uchars, params = checkpoint.load(fallbacks[0])
    assert config.steps == 3 and len(uchars) == 26


def test_offline_with_no_data_names_the_flag(tmp_path):
    # No input.txt, no $MICROGPT_DATA, an empty cache, and a download URL that fails.
    env = {'MICROGPT_DATA': '', 'XDG_CACHE_HOME': str(tmp_path / 'cache'),
           'MICROGPT_NAMES_URL': (tmp_path / 'missing.txt').as_uri()}
    check_error([], '--data', cwd=tmp_path, env=env)
    assert not (tmp_path / 'cache' / 'microgpt' / 'names.txt').exists()


def test_precision_is_one_the_tier_offers(data_path):
    check_error(['--data', data_path, '--tier', 'lean', '--precision', 'tc'],
                '--precision tc: tier lean offers fp64')
    check_error(['--data', data_path, '--tier', 'cuda', '--precision', 'fp16'],
                '--precision fp16: tier cuda offers fp64, fp32, tc')


def test_sample_needs_a_checkpoint():
    check_error(['sample'], 'the following arguments are required: --load')


def test_flags_take_unique_prefixes_and_equals_signs(data_path):
    rc, out, err = run_cli('--data', data_path, '--tier=lean', '--st', '2', '--num-s=1')
    assert rc == 0, err
    assert out.decode().startswith('num docs: 32033\n')
    assert 'step    2 /    2' in out.decode() and 'sample  1: ' in out.decode()


@pytest.mark.parametrize('argv', [['-h'], ['--help'], ['sample', '--help']])
def test_help_lists_every_flag(argv):
    rc, out, err = run_cli(*argv)
    assert rc == 0 and err == ''
    text = out.decode()
    assert text.startswith('usage: microgpt')
    flags = (['--load', '--prompt'] if argv[0] == 'sample' else
             ['--data', '--steps', '--batch-size', '--n-embd', '--json', '--save'])
    for flag in flags + ['--tier', '--seed', '--precision']:
        assert f'\n  {flag} ' in text, flag


@pytest.mark.parametrize('tier', ['scalar', 'lean', 'numpy', 'jit'])
def test_a_diverging_run_stops_with_one_line_and_writes_nothing(tier, data_path, tmp_path):
    """A learning rate of 1000 on weights of std 5 blows up in the first step. The tiers
    that compute with Python floats fail on log(0.0); jit's arithmetic gives an inf loss.
    Either way: one line, exit status 1, no --json or --save file."""
    json_path, save = tmp_path / 'run.json', tmp_path / 'model.json'
    rc, out, err = run_cli('--data', data_path, '--tier', tier, '--learning-rate', '1000',
                           '--init-std', '5', '--steps', '3', '--json', json_path, '--save', save)
    assert rc == 1, err
    assert 'Traceback' not in err
    last = err.strip().splitlines()[-1]
    assert last.startswith('microgpt: error: training diverged '), last
    assert 'in step 1 of 3' in last and 'try a lower --learning-rate or --init-std' in last
    assert not json_path.exists() and not save.exists()
    assert out.startswith(b'num docs: 32033\n')


def test_a_nan_loss_names_its_step(data_path):
    """512 wide at the reference's init and learning rate: the loss goes 23.6, 199.3,
    314.9, then nan (jit, whose arithmetic carries on through inf and nan)."""
    rc, out, err = run_cli('--data', data_path, '--tier', 'jit', '--n-embd', '512',
                           '--steps', '60', '--num-samples', '0')
    assert rc == 1, err
    last = err.strip().splitlines()[-1]
    assert last == ('microgpt: error: training diverged in step 4 of 60: the loss is nan; '
                    'try a lower --learning-rate or --init-std'), last
