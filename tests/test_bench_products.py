"""scripts/bench_products.py: it checks the jit products against numpy's, bit for bit,
before it times them, and prints a row per size."""
import subprocess
import sys

from conftest import ROOT

SCRIPT = ROOT / 'scripts' / 'bench_products.py'


def test_a_short_run_checks_and_prints_a_row_per_size():
    for extra, rows_of in (([], lambda S: S), (['--rows', '35'], lambda S: 35)):
        run = subprocess.run([sys.executable, str(SCRIPT), '--sizes', '7', '37', '--repeats', '1',
                              *extra], capture_output=True, text=True, timeout=600)
        assert run.returncode == 0, run.stderr
        rows = [line for line in run.stdout.splitlines() if line.startswith('| ') and
                line.split('|')[1].strip().isdigit()]
        assert [int(row.split('|')[1]) for row in rows] == [7, 37]
        assert [int(row.split('|')[2]) for row in rows] == [rows_of(7), rows_of(37)]
        for row in rows:
            forward, backward, blas = (float(x) for x in row.split('|')[3:6])
            assert forward > 0 and backward > 0 and blas > 0


def test_bad_sizes_are_refused():
    run = subprocess.run([sys.executable, str(SCRIPT), '--sizes', '0'],
                         capture_output=True, text=True, timeout=600)
    assert run.returncode == 2 and 'must be positive' in run.stderr
