"""The GPU tier's kernels through the compiler that would run them, on a machine with no
GPU: numba-cuda turns a kernel into PTX for an architecture (NVVM), ptxas assembles the
PTX into that architecture's machine code (SASS), nvdisasm prints the SASS. What comes
out is what a GPU would run: its registers, shared memory, spills, the float widths of
its arithmetic, its fused multiply-adds, its tensor-core instructions.

Needs numba-cuda and NVIDIA's compiler wheels (the `cuda` extra), and no simulator:
numba's simulator compiles nothing. scripts/gpu_report.py and tests/test_gpu_compile.py
use it.
"""
import contextlib
import os
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from types import SimpleNamespace

ARCHS = ((8, 0), (9, 0))          # A100, H100: the tensor cores' m16n8k16 on both


def _wheel_tool(name):
    """`name` from NVIDIA's wheels (nvidia/*/bin), else from PATH."""
    try:
        import nvidia
        for root in nvidia.__path__:
            for sub in sorted(os.listdir(root)):
                path = os.path.join(root, sub, 'bin', name)
                if os.access(path, os.X_OK):
                    return path
    except ImportError:
        pass
    return shutil.which(name)


def missing():
    """Why kernels cannot be compiled here, or None when they can."""
    from numba import config
    if config.ENABLE_CUDASIM:
        return "numba's CUDA simulator is on (NUMBA_ENABLE_CUDASIM=1): it compiles nothing"
    from numba import cuda
    if cuda.implementation != 'NVIDIA':
        return "numba-cuda is not installed: pip install -e '.[cuda]'"
    for tool in ('ptxas', 'nvdisasm'):
        if _wheel_tool(tool) is None:
            return f"{tool} is not installed: pip install -e '.[cuda]'"
    try:
        from numba.cuda.cudadrv import nvrtc, nvvm
        nvvm.NVVM()
        nvrtc.get_supported_ccs()
    except Exception as e:                  # the wheels' libraries: any failure says it
        return f"NVVM or NVRTC cannot load: {e}"
    return None


def kernel(key):
    """The kernel that gpu/launch.py's key names."""
    from . import fused, gemm, kernels
    if hasattr(gemm, key[0]):
        made = getattr(gemm, key[0])(*key[1:])
        return made[0] if isinstance(made, tuple) else made
    return getattr(kernels if hasattr(kernels, key[0]) else fused, key[0])


@contextlib.contextmanager
def _device_of(cc):
    """numba-cuda compiles the device functions a kernel calls for the current device's
    compute capability, which takes a driver to ask; with no GPU, a stand-in device of
    capability cc answers. (A device function compiled once is reused for the next cc:
    nothing in this project's device functions depends on it.)"""
    from numba.cuda import dispatcher
    real = dispatcher.get_current_device
    dispatcher.get_current_device = lambda: SimpleNamespace(compute_capability=cc)
    try:
        yield
    finally:
        dispatcher.get_current_device = real


def compile_ptx(key, argtypes, cc):
    """PTX of a kernel for compute capability cc, with gpu/nvvm.py's policy (which
    importing gpu installs)."""
    from numba import cuda
    with _device_of(cc):
        ptx, _ = cuda.compile_ptx(kernel(key).py_func, tuple(argtypes), cc=cc)
    return ptx


@dataclass
class Assembled:
    registers: int
    shared_bytes: int
    spill_bytes: int            # spill stores + spill loads
    sass: str


def assemble(ptx, cc):
    """ptxas for sm_XY, its resource line, and nvdisasm's SASS. Relocatable (-c): a
    kernel that reshapes calls numba-cuda's numba_attempt_nocopy_reshape, which numba-cuda
    links in from its own CUDA source when it loads the kernel on a GPU."""
    arch = f'sm_{cc[0]}{cc[1]}'
    with tempfile.TemporaryDirectory() as d:
        src, cubin = os.path.join(d, 'k.ptx'), os.path.join(d, 'k.cubin')
        with open(src, 'w') as f:
            f.write(ptx)
        info = subprocess.run([_wheel_tool('ptxas'), f'-arch={arch}', '-c', '-v', src, '-o',
                               cubin],
                              capture_output=True, text=True)
        if info.returncode != 0:
            raise RuntimeError(f"ptxas {arch}: {info.stderr.strip()}")
        sass = subprocess.run([_wheel_tool('nvdisasm'), cubin], capture_output=True,
                              text=True, check=True).stdout
    log = info.stderr
    registers = int(re.search(r'Used (\d+) registers', log).group(1))
    shared = re.search(r'(\d+) bytes smem', log)
    spills = re.search(r'(\d+) bytes spill stores, (\d+) bytes spill loads', log)
    return Assembled(registers, int(shared.group(1)) if shared else 0,
                     int(spills.group(1)) + int(spills.group(2)), sass)


def instructions(ptx):
    """The PTX's instruction lines: no directives, declarations, labels or comments."""
    lines = (line.strip() for line in ptx.splitlines())
    return [line for line in lines
            if line and not line.startswith(('.', '//', '{', '}', '$')) and ':' not in line[:1]]


def count_f64(ptx):
    """Instructions that compute in, convert to or from, or move float64."""
    return sum(1 for line in instructions(ptx) if re.search(r'\.f64\b', line))


def count_fma(ptx, width):
    return sum(1 for line in instructions(ptx) if line.startswith(f'fma.rn.f{width}'))


def count_hmma(sass):
    return len(re.findall(r'\bHMMA\.16816\.F32\b', sass))



LIBDEVICE = ('exp', 'log', 'pow')


def libdevice_fma(cc):
    """fma.rn.f64 that libdevice's float64 exp, log and pow bring into a kernel by
    themselves: they use fma on purpose, so these are not contraction. {name: count}."""
    import math

    from numba import cuda
    from numba.core import types
    arr = types.Array(types.float64, 1, 'C')
    counts = {}
    for name in LIBDEVICE:
        fn = getattr(math, name)

        def one_call(out, a):
            out[0] = fn(a[0], a[1]) if name == 'pow' else fn(a[0])
        ptx, _ = cuda.compile_ptx(one_call, (arr, arr), cc=cc)
        counts[name] = count_fma(ptx, 64)
    return counts


def libdevice_calls(key):
    """{name: call sites} of math.exp, math.log and math.pow in a kernel's source and in
    the device functions it calls, by name in gpu/kernels.py and gpu/fused.py (the
    fused kernel's bound model functions among them) or by closure, transitively."""
    import inspect

    from . import fused, kernels
    spaces = (vars(kernels), vars(fused), vars(fused._bound))
    counts, seen, todo = dict.fromkeys(LIBDEVICE, 0), set(), [kernel(key).py_func]
    while todo:
        f = todo.pop()
        if f in seen:
            continue
        seen.add(f)
        source = inspect.getsource(f)
        for name in LIBDEVICE:
            counts[name] += source.count(f'math.{name}(')
        todo += [space[n].py_func for n in f.__code__.co_names for space in spaces
                 if hasattr(space.get(n), 'py_func')]
        todo += [cell.cell_contents.py_func for cell in f.__closure__ or ()
                 if hasattr(cell.cell_contents, 'py_func')]      # fused.in_block's bodies
    return counts


def contraction_witness(cc):
    """fma.rn.f64 in `out = a*b + out` over float64 arrays, compiled with NVVM's default
    and with gpu/nvvm.py's policy: (1, 0) when the policy does its work."""
    from numba import cuda
    from numba.core import types
    from . import nvvm

    def multiply_add(out, a, b):
        i = cuda.grid(1)
        if i < out.shape[0]:
            out[i] = a[i] * b[i] + out[i]
    arr = types.Array(types.float64, 1, 'C')
    counts = []
    for policy in (False, True):
        nvvm.use(policy)
        try:
            ptx, _ = cuda.compile_ptx(multiply_add, (arr, arr, arr), cc=cc)
        finally:
            nvvm.use()
        counts.append(count_fma(ptx, 64))
    return tuple(counts)
