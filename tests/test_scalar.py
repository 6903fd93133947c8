"""The spec tier against the reference's own traces, bit for bit."""
import contextlib
import io
import json
import random

import pytest

from conftest import GOLDEN, cli_args, expected_stdout, golden, golden_config, run_cli
from microgpt import gpt
from microgpt.data import load_docs


def run_quiet(config, data_path, Model=gpt.ScalarGPT):
    with contextlib.redirect_stdout(io.StringIO()) as out:
        result = gpt.run(config, load_docs(data_path), Model)
    return result, out.getvalue()


@pytest.mark.parametrize('name', ['default_20', 'small_2layer'])
def test_scalar_matches_golden_bit_for_bit(name, data_path):
    trace = golden(name)
    result, out = run_quiet(golden_config(trace), data_path)
    assert result['losses'] == trace['losses']      # == on floats: bit-identical
    assert result['samples'] == trace['samples']
    assert out.encode() == expected_stdout(trace)


def test_cli_prints_only_the_reference_lines(data_path, tmp_path):
    trace = golden('small_2layer')
    report = tmp_path / 'run.json'
    rc, out, err = run_cli('--tier', 'scalar', '--data', data_path, '--json', report,
                           *cli_args(golden_config(trace)))
    assert rc == 0, err
    assert out == expected_stdout(trace)
    assert 'tier scalar' in err and 'peak RSS' in err and 'steps/s' in err
    rep = json.loads(report.read_text())
    assert rep['tier'] == 'scalar'
    assert rep['losses'] == trace['losses'] and rep['samples'] == trace['samples']
    assert rep['config']['num_params'] == trace['config']['num_params']
    assert rep['train_seconds'] > 0 and rep['sample_seconds'] > 0 and rep['peak_rss_mb'] > 1
    # the steps after the first, timed from the first one's end (scripts/scaling.py's time)
    after = rep['after_first_step']
    assert after['steps'] == len(trace['losses']) - 1
    assert 0 < after['seconds'] < rep['train_seconds']


@pytest.mark.slow
def test_full_default_run_is_byte_identical(data_path, tmp_path):
    report = tmp_path / 'run.json'
    rc, out, err = run_cli('--tier', 'scalar', '--data', data_path, '--json', report)
    assert rc == 0, err
    assert out == (GOLDEN / 'default_1000.stdout').read_bytes()
    trace = golden('default_1000')
    rep = json.loads(report.read_text())
    assert rep['losses'] == trace['losses']
    assert rep['samples'] == trace['samples']


def test_shuffling_the_order_draws_like_shuffling_the_list(data_path):
    docs = load_docs(data_path)
    names = [docs[i] for i in range(len(docs))]
    random.seed(7)
    docs.shuffle()
    random.seed(7)
    random.shuffle(names)
    assert [docs[i] for i in range(len(docs))] == names


def test_backward_handles_graphs_deeper_than_the_recursion_limit():
    x = gpt.Value(0.5)
    y = x
    for _ in range(5000):
        y = y * 1.0001 + 0.0
    y.backward()
    assert x.grad == pytest.approx(1.0001 ** 5000, rel=1e-12)


def test_backward_accumulates_in_the_reference_order():
    # A node used twice gets its gradient from both parents; 1 is the seed gradient.
    a = gpt.Value(3.0)
    b = a * a + a.exp()
    b.backward()
    assert a.grad == 3.0 + 3.0 + a.exp().data


def test_console_script_is_installed():
    import shutil
    import subprocess
    import sys
    from pathlib import Path
    script = shutil.which('microgpt', path=str(Path(sys.executable).parent))
    assert script, "the console script 'microgpt' is not installed beside this python"
    p = subprocess.run([script, '--help'], capture_output=True, text=True)
    assert p.returncode == 0 and '--n-embd' in p.stdout and '--tier' in p.stdout


def test_the_study_file_imports_the_standard_library_alone():
    import ast
    import sys
    tree = ast.parse(open(gpt.__file__, encoding='utf-8').read())
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            assert node.level == 0, f"relative import in gpt.py: line {node.lineno}"
            names.add(node.module.split('.')[0])
        elif isinstance(node, ast.Import):
            names.update(alias.name.split('.')[0] for alias in node.names)
    assert names and names <= sys.stdlib_module_names, names - sys.stdlib_module_names


def test_the_study_files_hyperparameters_are_the_configs_defaults():
    from microgpt.config import GPTConfig
    assert gpt.REFERENCE == GPTConfig().asdict()


@pytest.mark.slow
def test_the_study_file_run_alone_prints_the_reference_output(data_path, tmp_path):
    import shutil
    import subprocess
    import sys
    shutil.copy(data_path, tmp_path / 'input.txt')
    p = subprocess.run([sys.executable, gpt.__file__], cwd=tmp_path, capture_output=True,
                       env={'PATH': '/usr/bin:/bin'}, timeout=1800)   # no PYTHONPATH: alone
    assert p.returncode == 0, p.stderr.decode()
    assert p.stdout == (GOLDEN / 'default_1000.stdout').read_bytes()


def test_a_batch_step_is_the_mean_of_its_documents_losses():
    """The spec for B > 1: the step's loss is (1/B) * (sum of the documents' mean losses),
    one graph, one backward. Built here by hand, op by op, it is the same graph: the
    same loss and every gradient ==. Run one document at a time instead, the gradients
    are the documents' averaged, to rounding."""
    from check import check_tensor
    from microgpt.config import GPTConfig
    config = GPTConfig(n_layer=2, n_embd=8, n_head=2, block_size=6, batch_size=3)
    tok = gpt.Tokenizer(set('mississippi-massachusetts emma'))
    batch = [tok.encode(d) for d in ('mississippi-massachusetts', 'emma', 'a')]

    def fresh():
        random.seed(3)
        return gpt.ScalarGPT(config, tok.vocab_size)

    def grads(model):
        return {name: [[p.grad for p in row] for row in mat] for name, mat in model.state_dict.items()}

    model = fresh()
    loss = model.step_loss(batch)
    loss.backward()
    hand = fresh()
    total = 0
    for tokens in batch:
        total = total + hand.forward_loss(tokens)
    hand_loss = (1 / 3) * total
    hand_loss.backward()
    assert loss.data == hand_loss.data
    for name, g in grads(hand).items():
        check_tensor(f'd{name}', grads(model)[name], g, 0.0)

    apart = fresh()
    doc_losses = []
    for tokens in batch:                  # backward() adds into .grad: the three summed
        doc_loss = apart.forward_loss(tokens)
        doc_loss.backward()
        doc_losses.append(doc_loss.data)
    assert loss.data == (1 / 3) * sum(doc_losses)
    for name, g in grads(apart).items():
        check_tensor(f'd{name}', grads(model)[name], [[x / 3 for x in row] for row in g], 1e-12)
    assert fresh().step_loss(batch[:1]).data == doc_losses[0]    # B = 1: the reference
