"""scripts/scaling.py: its FLOP count by hand, and a short sweep's table."""
import importlib.util
import subprocess
import sys

from conftest import ROOT

SCRIPT = ROOT / 'scripts' / 'scaling.py'


def load_script():
    spec = importlib.util.spec_from_file_location('scaling', SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_flops_are_counted_from_the_shapes(tmp_path):
    data = tmp_path / 'one.txt'
    data.write_text('abcd\nab\n')
    work = load_script().Workload(data)
    assert work.vocab_size == 5
    # two steps of one document each: 5 positions ('abcd' and BOS), then 3 ('ab')
    assert sorted(work.positions(0, 2, 8)) == [3, 5] and work.positions(0, 2, 4) in ([4, 3], [3, 4])
    flops, positions = work.flops(1, 4, 2, 1, 8)      # width 4, batch 2, one layer, block 8
    linear = 12 * 4 * 4 + 5 * 4                       # per position: the layer and lm_head
    attention = [2 * 4 * n * (n + 1) // 2 for n in (5, 3)]
    assert positions == 8
    assert flops == 6 * (8 * linear + sum(attention))


def test_a_short_sweep_prints_a_row_per_point(data_path):
    p = subprocess.run([sys.executable, str(SCRIPT), '--tiers', 'lean', 'jit', '--widths', '8',
                        '16', '--batches', '1', '2', '--block-size', '8', '--seconds', '0.3',
                        '--data', data_path], capture_output=True, text=True, timeout=900)
    assert p.returncode == 0, p.stderr
    lines = p.stdout.strip().splitlines()
    assert lines[0].startswith('n_layer 1, block_size 8, 4 heads; roof: numpy float64 matmul ')
    rows = [[c.strip() for c in line.strip('|').split('|')] for line in lines[4:]]
    assert [r[:3] for r in rows] == [[t, b, w] for t in ('lean', 'jit') for b in ('1', '2')
                                     for w in ('8', '16')]
    for tier, batch, width, us, tokens, gflops, share in rows:
        assert float(us) > 0 and float(tokens) > 0 and float(gflops) > 0
        assert 0 < float(share.rstrip('%')) < 100


def test_wide_points_train_on_finite_losses(data_path):
    """The sweep scales the init and the learning rate with the width, from the
    reference's at width 16. At 512 wide the reference's own diverge to nan in step 4
    (test_cli_errors.test_a_nan_loss_names_its_step); the sweep's train."""
    from conftest import run_cli
    scaling = load_script()
    assert (scaling.init_std(16), scaling.learning_rate(16)) == (0.08, 0.01)
    assert (scaling.init_std(64), scaling.learning_rate(64)) == (0.04, 0.0025)
    rc, _, err = run_cli('--data', data_path, '--tier', 'jit', '--n-embd', '512', '--steps', '60',
                         '--num-samples', '0', '--init-std', scaling.init_std(512),
                         '--learning-rate', scaling.learning_rate(512))
    assert rc == 0, err
