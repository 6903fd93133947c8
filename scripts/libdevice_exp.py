#!/usr/bin/env python3
"""How often CUDA's float64 exp (libdevice's __nv_exp) differs from glibc's, on a
machine with no GPU.

    python scripts/libdevice_exp.py [--count N] [--seed S]

libdevice ships as LLVM bitcode for NVPTX (in the `cuda` extra's NVVM). __nv_exp uses
only operations whose results IEEE 754 defines exactly (fma, add, bit moves between a
double and its two 32-bit halves, fabs), written as NVVM intrinsics. This script takes
its IR, gives each intrinsic an exact definition for this CPU, compiles it with
llvmlite (no fast-math, no contraction: the IR's own operations, rounded as written) and
calls it on N random arguments in each of two ranges, beside glibc's exp (Python's
math.exp). It prints how many results differ and by how many units in the last place.

log and pow cannot be run this way: they call rcp.approx.ftz.f64, whose result only
the hardware defines.
"""
import argparse
import ctypes
import math
import os
import re
import sys

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..'))

# The intrinsics __nv_exp calls, each defined exactly for the host.
EMULATION = r'''
declare double @llvm.fma.f64(double, double, double)
declare float @llvm.fabs.f32(float)
define internal double @emu.add.rn.d(double %a, double %b) {
  %r = fadd double %a, %b
  ret double %r
}
define internal double @emu.fma.rn.d(double %a, double %b, double %c) {
  %r = call double @llvm.fma.f64(double %a, double %b, double %c)
  ret double %r
}
define internal i32 @emu.d2i.hi(double %x) {
  %b = bitcast double %x to i64
  %h = lshr i64 %b, 32
  %r = trunc i64 %h to i32
  ret i32 %r
}
define internal i32 @emu.d2i.lo(double %x) {
  %b = bitcast double %x to i64
  %r = trunc i64 %b to i32
  ret i32 %r
}
define internal double @emu.lohi.i2d(i32 %lo, i32 %hi) {
  %l = zext i32 %lo to i64
  %h = zext i32 %hi to i64
  %s = shl i64 %h, 32
  %b = or i64 %s, %l
  %r = bitcast i64 %b to double
  ret double %r
}
define internal float @emu.fabs.f32(float %x) {
  %r = call float @llvm.fabs.f32(float %x)
  ret float %r
}
define internal float @emu.fabs.ftz.f32(float %x) {
  %a = call float @llvm.fabs.f32(float %x)
  %tiny = fcmp olt float %a, 0x3810000000000000
  %r = select i1 %tiny, float 0.0, float %a
  ret float %r
}
'''
INTRINSICS = ('add.rn.d', 'fma.rn.d', 'd2i.hi', 'd2i.lo', 'lohi.i2d', 'fabs.f32',
              'fabs.ftz.f32')


def libdevice_path():
    import nvidia
    for root in nvidia.__path__:
        path = os.path.join(root, 'cuda_nvcc', 'nvvm', 'libdevice', 'libdevice.10.bc')
        if os.path.exists(path):
            return path
    raise SystemExit("libdevice_exp: no libdevice here: pip install -e '.[cuda]'")


def nv_exp():
    """__nv_exp, compiled for this CPU: a ctypes function of a double."""
    import llvmlite.binding as llvm
    llvm.initialize_native_target()
    llvm.initialize_native_asmprinter()
    with open(libdevice_path(), 'rb') as f:
        text = str(llvm.parse_bitcode(f.read()))
    body = re.search(r'define [^@]*@__nv_exp\(.*?\n}\n', text, re.S).group(0)
    body = re.sub(r'\)\s*(#\d+\s*)+\{', ') {', body)          # attribute groups
    body = re.sub(r'\) #\d+', ')', body)
    body = re.sub(r',\s*!\w+ !\d+', '', body)                 # metadata attachments
    # __nvvm_reflect("__CUDA_FTZ"): 0, as numba-cuda compiles (no flush to zero)
    body = re.sub(r'call i32 @__nvvm_reflect\(ptr @[\w.]+\)', 'add i32 0, 0', body)
    used = set(re.findall(r'@llvm\.nvvm\.([\w.]+)\(', body))
    if not used <= set(INTRINSICS):
        raise SystemExit(f"libdevice_exp: __nv_exp calls {sorted(used - set(INTRINSICS))}, "
                         "which this script does not define")
    body = re.sub(r'@llvm\.nvvm\.([\w.]+)\(', r'@emu.\1(', body)
    body = re.sub(r'^define [^@]*@__nv_exp', 'define double @__nv_exp', body)
    target = llvm.Target.from_default_triple().create_target_machine()
    module = llvm.parse_assembly(f'target triple = "{llvm.get_default_triple()}"\n'
                                 + EMULATION + body)
    module.verify()
    engine = llvm.create_mcjit_compiler(module, target)
    engine.finalize_object()
    nv_exp.engine = engine                                   # keep the code alive
    return ctypes.CFUNCTYPE(ctypes.c_double, ctypes.c_double)(
        engine.get_function_address('__nv_exp'))


def ulps(a, b):
    """|a - b| in units in the last place, for finite doubles of one sign."""
    ia, ib = np.array([a, b]).view(np.int64)
    return abs(int(ia) - int(ib))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[1])
    parser.add_argument('--count', type=int, default=1_000_000)
    parser.add_argument('--seed', type=int, default=0)
    args = parser.parse_args(argv)
    exp = nv_exp()
    rng = np.random.default_rng(args.seed)
    # softmax's and attention's arguments (z - max: at most 0), and exp's whole range
    ranges = {'[-30, 0]': (-30.0, 0.0), '[-708, 709]': (-708.0, 709.0)}
    print(f"libdevice __nv_exp on this CPU against glibc's exp, {args.count:,} uniform "
          f"arguments a range (seed {args.seed})")
    print('| arguments | differ | 1 ulp | more | worst (ulp) |')
    print('| --- | ---: | ---: | ---: | ---: |')
    for name, (lo, hi) in ranges.items():
        differ = one = more = worst = 0
        for x in rng.uniform(lo, hi, args.count).tolist():
            a, b = exp(x), math.exp(x)
            if a != b:
                d = ulps(a, b)
                differ += 1
                one += d == 1
                more += d > 1
                worst = max(worst, d)
        print(f'| {name} | {differ:,} ({differ / args.count:.3%}) | {one:,} | {more:,} | '
              f'{worst} |', flush=True)
    return 0


if __name__ == '__main__':
    sys.exit(main())
