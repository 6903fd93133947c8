"""The reference's `**`, exactly, in compiled code.

Python's float ** calls libm's pow, and glibc's pow is not correctly rounded: it is
within 0.54 ulp of the true value (glibc's e_pow.c), so about once in 1,200 values
pow(x, 0.5) != sqrt(x), pow(x, -1.0) != 1/x and pow(x, 2.0) != x*x (measured here on
two million random values each). numba hands `x ** 0.5` to LLVM's pow intrinsic, and
LLVM rewrites constant exponents into exactly those shortcuts. So:

- `power(x, e)` calls libm's pow, marked `nobuiltin` so that LLVM leaves it alone;
- `pow_half(x)` and `pow_two(x)` are pow(x, 0.5) and pow(x, 2.0) for the hot loop of
  Adam (two per parameter per step), fast: the correctly rounded sqrt(x) or x*x, whose
  exact error an FMA gives. Only when the true value lies within 0.03 ulp of halfway
  between two floats (about one value in sixteen), where pow may round the other way,
  do they call pow itself; elsewhere pow can only return that same float.
"""
import math

from llvmlite import ir
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


# How far from the true value t pow's result may be, for y = 0.5 or 2 and 1e-100 <=
# |x| <= 1e100: glibc's e_pow.c bounds it by 0.509 ulp (its exp) + |y log x| * 1.3 *
# 2**-15 ulp (its log), <= 0.527 ulp here. When the nearest float r is within 0.47 ulp of
# t, every other float is more than 0.53 ulp from t, so pow returns r.
NEAR_HALFWAY = 0.47
LOG_RANGE = (1e-100, 1e100)


@njit(cache=True, error_model='numpy')
def pow_half(x):
    """pow(x, 0.5) for x >= 0."""
    r = math.sqrt(x)                     # correctly rounded
    residual = fma(-r, r, x)             # x - r*r, exactly; t - r = residual / (t + r)
    if abs(residual) > 2 * NEAR_HALFWAY * r * ulp(r) or not LOG_RANGE[0] <= x <= LOG_RANGE[1]:
        return power(x, 0.5)
    return r


@njit(cache=True, error_model='numpy')
def pow_two(x):
    """pow(x, 2.0)."""
    r = x * x
    if abs(fma(x, x, -r)) > NEAR_HALFWAY * ulp(r) or not LOG_RANGE[0] <= abs(x) <= LOG_RANGE[1]:
        return power(x, 2.0)
    return r
