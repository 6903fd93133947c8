"""Faults around a run, a class a test: no output replaces an input or a file that is
not a regular file; what was trained is kept whatever fails after training; bad input
is one line before any work; nothing hangs. Devices are mknod'd copies in a temporary
folder (as root; skipped otherwise), never the real /dev."""
import json
import os
import signal
import stat
import subprocess
import sys
import time

import pytest

from conftest import ROOT, run_cli
from microgpt import checkpoint, cli, data

SHORT = ['--tier', 'lean', '--steps', '3', '--num-samples', '2']
ENV = dict(os.environ, PYTHONPATH=str(ROOT))


def one_line_error(rc, out, err, expected, status=2):
    assert rc == status, err
    assert 'Traceback' not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith('microgpt: error: '), err
    assert expected in lines[0], lines[0]


def device(path, major, minor):
    """A character device node at path (mknod: root only)."""
    if os.geteuid() != 0:
        pytest.skip("mknod needs root")
    os.mknod(path, 0o666 | stat.S_IFCHR, os.makedev(major, minor))
    return path


@pytest.fixture
def victim(data_path, tmp_path):
    """A small data file to protect: the first 300 names."""
    path = tmp_path / 'victim.txt'
    path.write_bytes(b''.join(data_path.read_bytes().splitlines(keepends=True)[:300]))
    return path


def start(*args, env=ENV):
    return subprocess.Popen([sys.executable, '-m', 'microgpt', *map(str, args)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


# 1. No output replaces an input, or a file that is not a regular file -----------------

@pytest.mark.parametrize('flag', ['--save', '--json'])
@pytest.mark.parametrize('name', ['same path', './relative', 'symlink', 'hard link'])
def test_an_output_that_is_the_data_by_any_name_is_refused(flag, name, victim, monkeypatch):
    monkeypatch.chdir(victim.parent)
    before = victim.read_bytes()
    output = {'same path': str(victim), './relative': './victim.txt',
              'symlink': 'link.txt', 'hard link': 'hard.txt'}[name]
    if name == 'symlink':
        os.symlink('victim.txt', 'link.txt')
    if name == 'hard link':
        os.link('victim.txt', 'hard.txt')
    one_line_error(*run_cli(*SHORT, '--data', victim, flag, output, cwd=victim.parent),
                   'an output never replaces an input')
    assert victim.read_bytes() == before


def test_the_default_input_txt_is_not_replaced(victim):
    os.rename(victim, victim.parent / 'input.txt')
    before = (victim.parent / 'input.txt').read_bytes()
    one_line_error(*run_cli(*SHORT, '--save', 'input.txt', cwd=victim.parent),
                   '--save: input.txt is the data (input.txt)')
    assert (victim.parent / 'input.txt').read_bytes() == before


def test_a_device_output_is_written_in_place_not_replaced(victim, tmp_path):
    null = device(tmp_path / 'null', 1, 3)
    rc, out, err = run_cli(*SHORT, '--data', victim, '--json', null)
    assert rc == 0, err
    assert stat.S_ISCHR(os.lstat(null).st_mode)


def test_a_symlink_output_stays_a_symlink_and_its_target_gets_the_write(victim, tmp_path):
    (tmp_path / 'real.json').write_text('old')
    os.symlink('real.json', tmp_path / 'out.json')
    rc, out, err = run_cli(*SHORT, '--data', victim, '--save', tmp_path / 'out.json')
    assert rc == 0, err
    assert os.path.islink(tmp_path / 'out.json')
    assert checkpoint.load(tmp_path / 'real.json')[0].steps == 3


def test_a_fifo_output_with_no_reader_goes_to_the_fallback_without_a_wait(victim, tmp_path):
    os.mkfifo(tmp_path / 'fifo')
    rc, out, err = run_cli(*SHORT, '--data', victim, '--json', tmp_path / 'fifo',
                           env={'TMPDIR': str(tmp_path)}, timeout=60)
    assert rc == 1 and 'a FIFO with no reader' in err and 'Traceback' not in err
    fallback, = tmp_path.glob('microgpt-json-*.json')
    assert json.loads(fallback.read_text())['steps_trained'] == 3


def test_temp_files_of_dead_writers_are_removed_on_the_next_write(tmp_path):
    dead = subprocess.Popen([sys.executable, '-c', 'pass'])
    dead.wait()
    stale = tmp_path / f'.model.json.{dead.pid}.0.tmp'
    alive = tmp_path / f'.model.json.{os.getpid()}.7.tmp'    # a writer still at work
    other = tmp_path / '.notes.tmp'                          # not write_atomic's
    for path in (stale, alive, other):
        path.write_text('x')
    data.write_atomic(tmp_path / 'model.json', b'{}')
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [alive.name, other.name, 'model.json'])


# 2. What was trained is kept, whatever fails after training ---------------------------

def wait_for(stream_text, predicate, timeout=120):
    t0 = time.time()
    while time.time() - t0 < timeout:
        if predicate(stream_text()):
            return
        time.sleep(0.2)
    raise AssertionError('timed out')


@pytest.mark.parametrize('signum', [signal.SIGTERM, signal.SIGHUP])
def test_sigterm_and_sighup_in_training_stop_after_the_step_and_save(signum, data_path,
                                                                     tmp_path):
    ckpt, report = tmp_path / 'model.json', tmp_path / 'run.json'
    p = start('--tier', 'scalar', '--data', data_path, '--save', ckpt, '--json', report)
    time.sleep(4)
    p.send_signal(signum)
    out, err = p.communicate(timeout=120)
    err = err.decode()
    assert p.returncode == 128 + signum, err
    assert 'Traceback' not in err and signal.Signals(signum).name in err
    steps = out.decode().count('\r')                           # the step lines printed
    assert 0 < steps < 1000
    assert json.loads(ckpt.read_text())['steps_trained'] == steps
    rep = json.loads(report.read_text())
    assert rep['steps_trained'] == len(rep['losses']) == steps
    assert rep['finished'] is False and rep['stopped_by'] == signal.Signals(signum).name


def test_ctrl_c_while_sampling_keeps_the_model_and_the_samples_so_far(victim, tmp_path):
    ckpt, report = tmp_path / 'model.json', tmp_path / 'run.json'
    p = start('--tier', 'lean', '--steps', '5', '--num-samples', '1000000', '--data', victim,
              '--save', ckpt, '--json', report)
    time.sleep(3)                         # five steps take 0.05 s: sampling by now
    p.send_signal(signal.SIGINT)          # one Ctrl-C is enough
    out, err = p.communicate(timeout=60)
    err = err.decode()
    assert p.returncode == 130, err
    assert 'while sampling' in err and 'Traceback' not in err
    assert checkpoint.load(ckpt)[0].steps == 5
    rep = json.loads(report.read_text())
    assert rep['steps_trained'] == 5 and rep['stopped_by'] == 'SIGINT'
    printed = out.decode().count('sample ')       # a signal may fall between draw and print
    assert printed > 0 and len(rep['samples']) - printed in (0, 1)


def test_a_sampling_error_keeps_the_model_and_writes_the_report(victim, tmp_path,
                                                                 monkeypatch, capsys):
    from microgpt.lean import LeanGPT

    def broken(self, *args):
        raise ValueError('weights must be finite')
    monkeypatch.setattr(LeanGPT, 'next_probs', broken)
    ckpt, report = tmp_path / 'model.json', tmp_path / 'run.json'
    rc = cli.main([*SHORT, '--data', str(victim), '--save', str(ckpt), '--json', str(report)])
    err = capsys.readouterr().err
    assert rc == 1 and 'sampling failed after 0 samples' in err and 'weights must be' in err
    assert checkpoint.load(ckpt)[0].steps == 3
    rep = json.loads(report.read_text())
    assert rep['error'] == 'weights must be finite' and rep['steps_trained'] == 3


def test_a_closed_pipe_ends_the_run_quietly_after_writing_the_outputs(victim, tmp_path):
    ckpt, report = tmp_path / 'model.json', tmp_path / 'run.json'
    p = start('--tier', 'scalar', '--steps', '1000', '--n-embd', '8', '--n-head', '2',
              '--data', victim, '--save', ckpt, '--json', report)
    p.stdout.readline()                   # `| head -1`
    p.stdout.close()
    err = p.stderr.read().decode()
    p.wait(timeout=120)
    assert p.returncode == 141, err       # as SIGPIPE ends a Unix filter, and quietly
    assert 'Traceback' not in err and 'error' not in err
    rep = json.loads(report.read_text())
    assert rep['stopped_by'] == 'stdout' and 0 < rep['steps_trained'] < 1000
    assert json.loads(ckpt.read_text())['steps_trained'] == rep['steps_trained']


def test_a_full_stdout_is_one_line_after_writing_the_outputs(victim, tmp_path):
    full = device(tmp_path / 'full', 1, 7)
    ckpt = tmp_path / 'model.json'
    with open(full, 'w') as stdout:
        p = subprocess.run([sys.executable, '-m', 'microgpt', *SHORT, '--data', victim,
                            '--save', ckpt], env=ENV, stdout=stdout, stderr=subprocess.PIPE)
    err = p.stderr.decode()
    assert p.returncode == 1 and 'Traceback' not in err
    assert err.strip().splitlines()[-1] == ('microgpt: error: cannot write to stdout: '
                                            'No space left on device')
    assert ckpt.exists()


def test_a_stdout_that_cannot_encode_a_sample_escapes_it(tmp_path):
    text = tmp_path / 'names.txt'
    text.write_text('Zoë\nΑθηνά\nJosé\n', encoding='utf-8')
    rc, out, err = run_cli(*SHORT, '--steps', '30', '--num-samples', '6', '--data', text,
                           env={'PYTHONIOENCODING': 'ascii'})
    assert rc == 0, err
    out.decode('ascii')                                            # ascii through and through
    assert b'\\x' in out or b'\\u' in out


def test_python_u_shows_the_run_as_it_goes(data_path):
    import select
    p = start('--tier', 'scalar', '--data', data_path, env=dict(ENV, PYTHONUNBUFFERED='1'))
    try:                                  # long before the 1000 steps end (two minutes)
        assert select.select([p.stdout], [], [], 30)[0], "nothing on stdout in 30 s"
        assert p.stdout.read(len(b'num docs: 32033\n')) == b'num docs: 32033\n'
    finally:
        p.kill()
        p.communicate()


# 3. Bad input is one line, before any work ---------------------------------------------

@pytest.mark.parametrize('value', ['1e-308', '1e-320', 'inf', 'nan', '2e6'])
def test_temperatures_outside_the_range_sampling_is_defined_for(value, victim):
    one_line_error(*run_cli(*SHORT, '--data', victim, '--temperature', value), 'temperature')


@pytest.fixture
def saved_checkpoint(victim, tmp_path):
    path = tmp_path / 'model.json'
    rc, out, err = run_cli(*SHORT, '--data', victim, '--save', path)
    assert rc == 0, err
    return path


@pytest.mark.parametrize('fault, expected', [
    ('a 400-digit weight', 'not finite numbers'),
    ('a 400-digit n_embd', 'n_embd is too large'),
    ('nested 100,000 deep', 'nested too deep'),
])
def test_checkpoints_that_would_overflow_or_recurse(fault, expected, saved_checkpoint):
    payload = json.loads(saved_checkpoint.read_text())
    if fault == 'a 400-digit weight':
        payload['params']['wte'][0][0] = 10 ** 400
    elif fault == 'a 400-digit n_embd':
        payload['config']['n_embd'] = 10 ** 400
    text = '[' * 100000 + ']' * 100000 if fault.startswith('nested') else json.dumps(payload)
    saved_checkpoint.write_text(text)
    one_line_error(*run_cli('sample', '--load', saved_checkpoint), expected)


def test_a_closed_stdout_is_refused_up_front(victim, tmp_path):
    p = subprocess.run(['sh', '-c', 'exec "$@" >&-', 'sh', sys.executable, '-m', 'microgpt',
                        *SHORT, '--data', str(victim), '--save', str(tmp_path / 'm.json')],
                       env=ENV, capture_output=True)
    one_line_error(p.returncode, b'', p.stderr.decode(), 'stdout is closed')
    assert not (tmp_path / 'm.json').exists()


@pytest.mark.parametrize('flag', ['--data', '--load'])
@pytest.mark.parametrize('kind', ['fifo', 'zero device'])
def test_a_fifo_or_a_device_as_an_input_is_refused_without_a_wait(flag, kind, tmp_path):
    path = tmp_path / kind.replace(' ', '_')
    if kind == 'fifo':
        os.mkfifo(path)
    else:
        device(path, 1, 5)                                         # /dev/zero's numbers
    args = ['sample', '--load', path] if flag == '--load' else [*SHORT, '--data', path]
    one_line_error(*run_cli(*args, timeout=60), 'is not a regular file')


def test_a_data_file_larger_than_memory_allows_is_refused(victim, monkeypatch, capsys):
    from microgpt import memory
    monkeypatch.setattr(memory, 'available_bytes', lambda: 8 * 1000)   # 1,000 bytes: 1/8
    assert cli.main([*SHORT, '--data', str(victim)]) == 2
    assert 'data file is over 1,000 bytes' in capsys.readouterr().err


@pytest.mark.parametrize('source', ['too large', 'fifo'])
def test_a_download_reads_no_more_than_names_txt(source, tmp_path):
    path = tmp_path / 'mirror'
    if source == 'fifo':
        os.mkfifo(path)
    else:
        path.write_bytes(b'a\n' * (data.NAMES_SIZE // 2 + 1))
    (tmp_path / 'work').mkdir()
    one_line_error(*run_cli(*SHORT, cwd=tmp_path / 'work', timeout=60, env={
        'MICROGPT_DATA': '', 'XDG_CACHE_HOME': str(tmp_path / 'cache'),
        'MICROGPT_NAMES_URL': path.as_uri()}), 'could not download')


def test_an_unwritable_download_cache_is_one_line(data_path, tmp_path):
    (tmp_path / 'a_file').write_text('not a folder')
    (tmp_path / 'work').mkdir()
    one_line_error(*run_cli(*SHORT, cwd=tmp_path / 'work', env={
        'MICROGPT_DATA': '', 'XDG_CACHE_HOME': str(tmp_path / 'a_file' / 'cache'),
        'MICROGPT_NAMES_URL': data_path.as_uri()}), 'cannot write the downloaded names.txt')


# 4. No silent hang, no silent slow path ------------------------------------------------

def test_a_long_set_up_says_what_it_is_doing(capsys):
    from microgpt.config import GPTConfig
    cli.announce_setup(GPTConfig(), 27)
    assert capsys.readouterr().err == ''
    cli.announce_setup(GPTConfig(n_layer=2000), 27)         # 6.1 million parameters
    assert 'drawing 6,145,120 parameters' in capsys.readouterr().err


def test_the_twins_memory_grows_linearly_in_the_vocabulary():
    from microgpt.config import GPTConfig
    from microgpt.memory import needed_bytes
    config = GPTConfig()
    assert needed_bytes('jit', config, 43891) < 2 ** 30   # a V x V order table was 14.4 GiB
    for tier in ('numpy', 'jit'):
        steps = [needed_bytes(tier, config, V + 1000) - needed_bytes(tier, config, V)
                 for V in (1000, 10000, 40000)]
        assert steps[0] == steps[1] == steps[2]           # the same cost per character


def test_an_unwritable_numba_cache_runs_numpys_kernels_and_says_so(victim, tmp_path):
    (tmp_path / 'a_file').write_text('not a folder')
    rc, out, err = run_cli('--tier', 'jit', '--steps', '3', '--num-samples', '1', '--data',
                           victim, env={'NUMBA_CACHE_DIR': str(tmp_path / 'a_file' / 'c')})
    assert rc == 0, err
    assert "cannot compile into its cache" in err
    assert ("tier jit (all steps on numpy's kernels: its cache cannot be written)"
            in err.strip().splitlines()[-1])


def test_the_compile_lock_dies_with_its_holder(tmp_path, monkeypatch):
    import jit
    monkeypatch.setenv('NUMBA_CACHE_DIR', str(tmp_path))
    os.makedirs(jit.cache_folder())
    holder = subprocess.Popen([sys.executable, '-c', (
        "import sys, time, jit\n"
        "with jit.compile_lock(wait=False) as held:\n"
        "    print(held, flush=True); time.sleep(60)\n")],
        env=dict(ENV, NUMBA_CACHE_DIR=str(tmp_path)), stdout=subprocess.PIPE)
    assert holder.stdout.readline() == b'True\n'
    with jit.compile_lock(wait=False) as held:
        assert held is False                      # a compile is under way
    holder.kill()                                 # SIGKILL: no clean-up of its own
    holder.wait()
    with jit.compile_lock(wait=False) as held:
        assert held is True                       # its lock went with it


def test_threads_are_the_cores_other_processes_leave_free(monkeypatch):
    """jit.ThreadChoice: all CPU time spent less this process's own, over a window, is
    what others keep busy; the run trains on the cores left, one at least."""
    import jit
    monkeypatch.setattr(jit.os, 'cpu_count', lambda: 2)
    samples = iter([(0.0, 0.0, 0.0),
                    (0.05, 0.1, 0.05),    # too short a window: no decision yet
                    (0.2, 0.4, 0.2),      # others 0.2 s of 0.2: a core busy -> 1
                    (0.4, 0.6, 0.4),      # others 0 -> 2
                    (0.6, 0.87, 0.6)])    # others 0.07 s of 0.2: 0.35 of a core -> 2
    choice = jit.ThreadChoice(most=2, sample=lambda: next(samples))
    assert [choice.next() for _ in range(4)] == [2, 1, 2, 2]
    assert jit.ThreadChoice(most=1, sample=lambda: 1 / 0).next() == 1   # never samples
    unreadable = jit.ThreadChoice(most=2, sample=lambda: None)
    assert unreadable.next() == 2
    sample = jit.cpu_sample()                 # this machine's /proc/stat, where there is one
    assert sample is None or (len(sample) == 3 and sample[1] >= sample[2] >= 0)
