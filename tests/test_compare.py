"""scripts/compare_tiers.py on a short run: a row per tier with numbers that parse."""
import subprocess
import sys

import pytest

from conftest import ROOT
from microgpt import tiers

SCRIPT = ROOT / 'scripts' / 'compare_tiers.py'


def compare(*args):
    return subprocess.run([sys.executable, str(SCRIPT), '--steps', '3', *map(str, args)],
                          capture_output=True, text=True, timeout=600)


def test_compare_tiers_table(data_path):
    p = compare('--data', data_path)
    assert p.returncode == 0, p.stderr
    lines = p.stdout.strip().splitlines()
    assert lines[0].startswith('| tier | us per step | speed-up vs scalar |')
    rows = {cells[0]: cells[1:] for cells in
            ([c.strip() for c in line.strip('|').split('|')] for line in lines[2:])}
    assert list(rows) == list(tiers.TIERS)                 # one row per tier, in order
    for name, cells in rows.items():
        if cells[0].startswith('skipped: '):
            continue
        us, speedup, rss, err, identical, same = cells
        assert float(us) > 0 and float(speedup.rstrip('x')) > 0 and float(rss) > 0
        assert float(err) <= 1e-12 and same == 'yes', (name, cells)
        if name in ('scalar', 'numpy', 'jit'):             # bit for bit
            assert float(err) == 0.0 and identical == '3 of 3', (name, cells)
    assert rows['scalar'][1] == '1.0x' and float(rows['scalar'][3]) == 0.0


def test_compare_tiers_picture(data_path, tmp_path):
    pytest.importorskip('matplotlib', reason="--plot needs matplotlib (pip install -e '.[plot]')")
    png = tmp_path / 'tiers.png'
    p = compare('--tiers', 'scalar', 'numpy', '--data', data_path, '--plot', png)
    assert p.returncode == 0, p.stderr
    assert png.read_bytes()[:8] == b'\x89PNG\r\n\x1a\n' and png.stat().st_size > 10_000


def test_smoothed_is_the_trailing_mean():
    sys.path.insert(0, str(SCRIPT.parent))
    from compare_tiers import smoothed
    assert smoothed([1.0, 3.0, 5.0, 7.0], 2) == [1.0, 2.0, 4.0, 6.0]


def test_compare_tiers_rejects_an_unknown_tier():
    p = subprocess.run([sys.executable, str(SCRIPT), '--tiers', 'quantum'],
                       capture_output=True, text=True)
    assert p.returncode == 2 and 'unknown tier(s) quantum' in p.stderr
