"""fp64 on the GPU computes as the reference does: no fused multiply-adds but the ones
the source asks for.

NVVM, which turns numba-cuda's IR into PTX, contracts `a*b + c` into one `fma.rn` by
default (its option -fma=1): one rounding where the reference rounds twice. numba-cuda
0.30 has no public switch (NVIDIA/numba-cuda issue #118), but both of its ways to
compile a kernel, `cuda.jit` on launch and `cuda.compile_ptx`, pass their NVVM options
through `compile_cuda`. Wrapping that function, here and only here, sets -fma=0 for
every kernel that takes a float64 array. float32 kernels keep contraction: fp32 and tc
promise no bit-identity, and an FMA rounds less.

`use()` installs the wrapper; gpu/__init__.py calls it, so it holds for every kernel of
the tier. tests/test_gpu_compile.py checks the PTX: fma.rn.f64 from float64 arithmetic
without it, none with it.
"""
from numba.core import types


def contracts(argtypes):
    """Whether NVVM may fuse multiply-adds in a kernel of these argument types."""
    return not any(isinstance(t, types.Array) and t.dtype == types.float64 for t in argtypes)


def _without_fp64_contraction(compile_cuda):
    def wrapped(pyfunc, return_type, args, *rest, nvvm_options=None, **kwargs):
        if not contracts(args):
            nvvm_options = dict(nvvm_options or {}, fma=False)
        return compile_cuda(pyfunc, return_type, args, *rest, nvvm_options=nvvm_options,
                            **kwargs)
    wrapped.wrapped = compile_cuda
    return wrapped


def use(policy=True):
    """Install the wrapper where numba-cuda's compile paths look it up (policy=False puts
    NVVM's default back: for tests/test_gpu_compile.py's witness). A no-op under the
    simulator, which compiles nothing."""
    from numba import config, cuda
    if config.ENABLE_CUDASIM or cuda.implementation != 'NVIDIA':   # gpu/tier.py refuses
        return                                                     # numba's own target
    from numba.cuda import compiler, dispatcher
    original = getattr(compiler.compile_cuda, 'wrapped', compiler.compile_cuda)
    compiler.compile_cuda = _without_fp64_contraction(original) if policy else original
    dispatcher.compile_cuda = compiler.compile_cuda
