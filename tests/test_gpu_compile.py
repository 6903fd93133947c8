"""The cuda tier through the compiler a GPU would run it with, on a machine with no GPU:
every kernel the tier launches, with the argument types it really passes, compiled to
PTX for sm_80 and sm_90 and assembled by ptxas (scripts/gpu_report.py, gpu/ptx.py).

Skipped, with one reason, where numba-cuda or NVIDIA's compiler wheels are missing
(`pip install -e '.[cuda]'`); CI installs them.
"""
import json
import os
import subprocess
import sys

import pytest

from conftest import ROOT

NO_SIMULATOR = dict(os.environ, NUMBA_ENABLE_CUDASIM='0', PYTHONPATH=str(ROOT))


def missing():
    p = subprocess.run([sys.executable, '-c', 'from gpu import ptx; print(ptx.missing() or "")'],
                       env=NO_SIMULATOR, capture_output=True, text=True)
    return p.stdout.strip() or (p.stderr.strip().splitlines() or [''])[-1]


REASON = missing()
pytestmark = pytest.mark.skipif(bool(REASON), reason=REASON)


@pytest.fixture(scope='module')
def report(tmp_path_factory):
    out = tmp_path_factory.mktemp('gpu') / 'report.json'
    p = subprocess.run([sys.executable, str(ROOT / 'scripts' / 'gpu_report.py'), '--json',
                        str(out)], env=NO_SIMULATOR, capture_output=True, text=True,
                       timeout=1800)
    assert p.returncode == 0, p.stderr
    with open(out) as f:
        return json.load(f)


def rows(report, precision=None):
    """The rows of a run ('fp64', 'fp64 fused', 'fp32', 'tc'), or of every run; 'fp64*'
    for both fp64 runs."""
    if precision and precision.endswith('*'):
        return [r for r in report['rows'] if r['precision'].startswith(precision[:-1])]
    return [r for r in report['rows'] if precision in (None, r['precision'])]


def test_every_kernel_of_the_tier_is_compiled(report):
    """Each module-level kernel of gpu/kernels.py is launched by some training or
    sampling step in every precision (fp32 and tc run the GEMMs for the backward
    products instead of the two ordered kernels), so each is in the report."""
    from gpu import kernels
    everything = {name for name in dir(kernels) if name.endswith('_kernel')}
    ordered = {'matmul_backward_input_kernel', 'matmul_backward_weight_kernel'}
    for precision in ('fp64', 'fp32', 'tc'):
        names = {r['kernel'][0] for r in rows(report, precision)}
        expected = everything if precision == 'fp64' else everything - ordered
        assert expected <= names, (precision, expected - names)
        gemms = {name for name in names if name.startswith('_')}     # gpu/gemm.py's factories
        assert gemms == {'_tc_kernel' if precision == 'tc' else '_tiled_kernel'}


def test_compiles_and_assembles_for_sm80_and_sm90_without_spills(report):
    for r in rows(report):
        assert set(r['arch']) == {'sm_80', 'sm_90'}, r['kernel']
        for arch, a in r['arch'].items():
            assert a['spill_bytes'] == 0, (r['precision'], r['kernel'], arch, a)
            assert 0 < a['registers'] <= 255


@pytest.mark.parametrize('precision', ['fp32', 'tc'])
def test_fp32_and_tc_compute_in_float32_only(report, precision):
    """No float64 arithmetic, conversion or move in their PTX: float64 scalar arguments
    and literals would put them there (the simulator would not show it)."""
    for r in rows(report, precision):
        for arch, a in r['arch'].items():
            assert a['f64'] == 0, (precision, r['kernel'], arch, a['f64'])


def test_fp64_does_not_contract(report):
    """NVVM would fuse multiply-adds (a witness shows it does, and that the policy stops
    it). Kernels that call no libdevice function have no fma.rn.f64 at all; those that
    do have fewer than NVVM's default would give, the rest being libdevice's own."""
    assert report['witness'] == [1, 0]
    contracted = 0
    for r in rows(report, 'fp64*'):
        counts = [a['fma_f64'] for a in r['arch'].values()]
        if not any(r['libdevice_calls'].values()):
            assert counts == [0, 0], r['kernel']
        contracted += r['fma_f64_nvvm_default'] - r['arch']['sm_90']['fma_f64']
        assert r['arch']['sm_90']['fma_f64'] <= r['fma_f64_nvvm_default']
    assert contracted > 0          # NVVM's default would have contracted the tier


def test_tc_issues_tensor_core_instructions(report):
    """gemm_tc's SASS has HMMA.16816.F32 (mma.sync m16n8k16) on both architectures, and
    nothing else does."""
    for r in rows(report):
        for arch, a in r['arch'].items():
            if r['kernel'][0] == '_tc_kernel':
                assert a['hmma'] >= 2, (r['kernel'], arch)
            else:
                assert a['hmma'] == 0, (r['kernel'], arch)


def test_the_fused_step_is_one_launch_and_compiles(report):
    """fp64 at the tiny config trains in one launch a step (gpu/fused.py), which
    compiles for both architectures like the rest; op by op a step takes dozens."""
    assert report['records']['fp64 fused']['per_step'] == {'1': 1, '3': 1}
    assert all(n > 20 for n in report['records']['fp64']['per_step'].values())
    fused = [r for r in rows(report, 'fp64 fused') if r['kernel'][0] == 'train_steps_kernel']
    assert len(fused) == 1               # batch 1 and 3 pass the same types
    assert set(fused[0]['arch']) == {'sm_80', 'sm_90'}


def test_libdevice_exp_runs_on_the_cpu_within_one_ulp_of_glibc():
    """scripts/libdevice_exp.py (docs/gpu.md's count): libdevice's float64 exp, compiled
    for the CPU, differs from glibc's on some arguments, never by more than 1 ulp. A
    wrongly emulated intrinsic would give wrong results, not 1-ulp differences."""
    p = subprocess.run([sys.executable, str(ROOT / 'scripts' / 'libdevice_exp.py'),
                        '--count', '20000'], env=NO_SIMULATOR, capture_output=True, text=True,
                       timeout=600)
    assert p.returncode == 0, p.stderr
    rows = [line.split('|')[1:-1] for line in p.stdout.splitlines()
            if line.startswith('| [')]
    assert len(rows) == 2
    for _, differ, one, more, worst in rows:
        assert 0 < int(one.replace(',', '')) and int(more.replace(',', '')) == 0
        assert worst.strip() == '1'
