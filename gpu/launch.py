"""Every kernel launch of the GPU tier passes through launch(): the one place that counts
launches, and that records, under `recording()`, which kernel ran with which argument
types. scripts/gpu_report.py records a few training steps under the simulator, then
compiles each kernel for real GPUs with exactly those types (gpu/ptx.py).

A kernel is named by its `key`: its function's name for a module-level kernel, or the
factory call that builds it (gpu/gemm.py sets `kernel.key`), so that another process
can build it again.
"""
import contextlib
import importlib

import numba
import numpy as np
from numba.core import types

_records = None


def kernel_key(kernel):
    return getattr(kernel, 'key', None) or (kernel.py_func.__name__,)


@contextlib.contextmanager
def recording():
    """Within: every launch appends (kernel key, its arguments' descriptions)."""
    global _records
    outer, _records = _records, []
    try:
        yield _records
    finally:
        _records = outer


def launch(kernel, griddim, blockdim, *args, stream=0):
    if _records is not None:
        _records.append((kernel_key(kernel), tuple(describe(a) for a in args)))
    kernel[griddim, blockdim, stream](*args)


def describe(value):
    """A value's numba type as plain data: ('array', dtype, ndim, layout),
    ('scalar', dtype), or ('namedtuple', 'module.Class', [its fields' descriptions]).
    Read off the value, not numba.typeof: numba's own simulator's arrays have none."""
    if isinstance(value, tuple):
        cls = type(value)
        return ('namedtuple', f'{cls.__module__}.{cls.__qualname__}',
                [describe(v) for v in value])
    if np.isscalar(value):
        return ('scalar', str(np.dtype(numba.np.numpy_support.as_dtype(numba.typeof(value)))))
    flags = value.flags                 # an array, on the host or the device
    layout = 'C' if flags['C_CONTIGUOUS'] else 'F' if flags['F_CONTIGUOUS'] else 'A'
    return ('array', str(value.dtype), value.ndim, layout)


def numba_type(description):
    """The numba type that describe() described."""
    kind, *rest = description
    if kind == 'namedtuple':
        module, _, name = rest[0].rpartition('.')
        cls = getattr(importlib.import_module(module), name)
        fields = [numba_type(d) for d in rest[1]]
        if all(f == fields[0] for f in fields):
            return types.NamedUniTuple(fields[0], len(fields), cls)
        return types.NamedTuple(fields, cls)
    t = numba.from_dtype(np.dtype(rest[0]))
    return types.Array(t, *rest[1:]) if kind == 'array' else t
