"""The reference's `**`, exactly, in compiled code.

Python's float ** calls libm's pow, and glibc's pow is not correctly rounded: it is
within 0.54 ulp of the true value (glibc's e_pow.c), so about once in 1,200 values
pow(x, 0.5) != sqrt(x), pow(x, -1.0) != 1/x and pow(x, 2.0) != x*x (measured here on
two million random values each). numba hands `x ** 0.5` to LLVM's pow intrinsic, and
LLVM rewrites constant exponents into exactly those shortcuts. So:

- `power(x, e)` calls libm's pow, marked `nobuiltin` so that LLVM leaves it alone;
- `square_roots(out, x)` and `squares(out, x)` are pow(x, 0.5) and pow(x, 2.0) over
  arrays, for Adam (two per parameter per step), fast: the correctly rounded sqrt(x) or
  x*x, whose exact error an FMA gives, in a loop LLVM vectorizes. Only when the true value lies
  within 0.02 ulp of halfway between two floats (4 values in 100), where pow may round
  the other way, do they call pow itself; elsewhere pow can only return that same float.
"""
import math

from llvmlite import ir
import numpy as np
from numba import njit, types
from numba.core import cgutils
from numba.extending import intrinsic

f64 = ir.DoubleType()


@intrinsic
def power(typingctx, x, e):
    """libm's pow(x, e), as Python's float ** computes it."""
    def codegen(context, builder, signature, args):
        fn = cgutils.get_or_insert_function(builder.module, ir.FunctionType(f64, [f64, f64]), 'pow')
        fn.attributes.add('nobuiltin')    # not LLVM's pow: a function it must call as is
        return builder.call(fn, args)
    return types.float64(types.float64, types.float64), codegen


@intrinsic
def fma(typingctx, a, b, c):
    """a * b + c with one rounding (the llvm.fma intrinsic)."""
    def codegen(context, builder, signature, args):
        fn = builder.module.declare_intrinsic('llvm.fma', [f64], ir.FunctionType(f64, [f64, f64, f64]))
        return builder.call(fn, args)
    return types.float64(types.float64, types.float64, types.float64), codegen


@intrinsic
def ulp(typingctx, x):
    """The spacing of floats just below x, for x > 0 normal: 2**(exponent - 52), read off
    the bits of x's predecessor (so it is the smaller spacing when x is a power of 2)."""
    def codegen(context, builder, signature, args):
        i64 = ir.IntType(64)
        below = builder.sub(builder.bitcast(args[0], i64), ir.Constant(i64, 1))
        bits = builder.and_(below, ir.Constant(i64, 0x7FF0000000000000))
        return builder.fmul(builder.bitcast(bits, f64), ir.Constant(f64, 2.0 ** -52))
    return types.float64(types.float64), codegen


# How far pow's result may be from the true value t, before its final rounding: glibc's
# e_pow.c bounds it by 0.009 ulp (its exp: 0.509 ulp with the rounding) + |y log x| *
# 1.3 * 2**-15 ulp (its log), under 0.0146 ulp for y = 0.5 or 2 and 1e-30 <= |x| <=
# 1e30. So where the nearest float r is within 0.48 ulp of t, pow rounds to r as well;
# only values nearer halfway (4 in 100), or outside that range, need pow itself.
NEAR_HALFWAY = 0.48
LOG_RANGE = (1e-30, 1e30)


@njit(cache=True, error_model='numpy')
def square_roots(out, x):
    """out[i] = pow(x[i], 0.5) for x >= 0 (out and x distinct): a vectorized pass of
    sqrt, then pow where the true root is near halfway between two floats."""
    near = np.empty(x.shape[0], dtype=np.bool_)
    for i in range(x.shape[0]):
        r = math.sqrt(x[i])                          # correctly rounded
        residual = fma(-r, r, x[i])                  # x - r*r exactly; t - r = residual / (t + r)
        out[i] = r
        near[i] = ((abs(residual) > 2 * NEAR_HALFWAY * r * ulp(r))
                   | (x[i] < LOG_RANGE[0]) | (x[i] > LOG_RANGE[1]))
    for i in range(x.shape[0]):
        if near[i] and x[i] != 0.0:                  # pow(0, 0.5) is 0, like sqrt
            out[i] = power(x[i], 0.5)


@njit(cache=True, error_model='numpy')
def squares(out, x):
    """out[i] = pow(x[i], 2.0) (out and x distinct): a vectorized pass of x*x, then pow
    where the true square is near halfway between two floats."""
    near = np.empty(x.shape[0], dtype=np.bool_)
    for i in range(x.shape[0]):
        r = x[i] * x[i]
        out[i] = r
        a = abs(x[i])
        near[i] = ((abs(fma(x[i], x[i], -r)) > NEAR_HALFWAY * ulp(r))   # x*x - r exactly
                   | (a < LOG_RANGE[0]) | (a > LOG_RANGE[1]))
    for i in range(x.shape[0]):
        if near[i] and x[i] != 0.0:                  # pow(0, 2) is 0, like 0*0
            out[i] = power(x[i], 2.0)
