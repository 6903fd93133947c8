"""The reference's `**`, exactly, in compiled code.

Python's float ** calls libm's pow, and glibc's pow is not correctly rounded: it is
within 0.54 ulp of the true value (glibc's e_pow.c), so about once in 1,200 values
pow(x, 0.5) != sqrt(x), pow(x, -1.0) != 1/x and pow(x, 2.0) != x*x (measured here on
two million random values each). numba hands `x ** 0.5` to LLVM's pow intrinsic, and
LLVM rewrites constant exponents into exactly those shortcuts. So:

- `power(x, e)` calls libm's pow, marked `nobuiltin` so that LLVM leaves it alone;
- `square_candidates(x)`, `root_candidates(x)`: for Adam's hot loop (two pows per
  parameter per step), the floats pow(x, 2.0) or pow(x, 0.5) can be. pow is within 0.54 ulp of
  the true value t, so it returns r, the correctly rounded value (sqrt(x) or x*x, whose
  exact error an FMA gives), or, where t lies within 0.04 ulp of halfway, possibly r's
  neighbour on t's side. Adam computes its update with both and calls pow only where
  the two differ: the same floats as Python, at vectorized speed.
- `reciprocal(x)`: pow(x, -1.0) the same way, 1/x unless pow may differ from it (about
  one value in ten), for the softmaxes' total ** -1.

The FMA remainders these rely on (x*x - r, x - r*r, 1 - r*x: about 2**-53 of their
operands) are exact while they are normal floats: for squares of |x| above about 1e-145,
roots of x above about 1e-289. Smaller nonzero values are not checked for: a gradient
that small, or an Adam second moment left some 65,000 steps without a gradient.
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
def adjacent(typingctx, x, up):
    """The float next to x (x >= 0) above it if `up`, else below: x's bits plus or minus
    one. The step is the spacing on that side, also where it changes (x a power of 2)."""
    def codegen(context, builder, signature, args):
        i64 = ir.IntType(64)
        step = builder.select(args[1], ir.Constant(i64, 1), ir.Constant(i64, -1))
        return builder.bitcast(builder.add(builder.bitcast(args[0], i64), step), f64)
    return types.float64(types.float64, types.boolean), codegen


# pow's result is within 0.54 ulp of the true value t (glibc's e_pow.c), so it can only
# be r, the nearest float, or, when t is more than 0.46 ulp from r, r's neighbour on
# t's side. 0.45, with the room that t + r ~ 2r takes (square roots).
NEAR_HALFWAY = 0.45


@njit(inline='always', error_model='numpy')
def candidates(r, err, den):
    """(r, alt) from r >= 0, the nearest float to the true value t, and t - r ~ err / den
    (den > 0): alt is r's neighbour on t's side if pow may return it, else r. (r = 0:
    its neighbour below is a NaN, and alt is r, as err is 0.)"""
    neighbour = adjacent(r, err > 0)
    alt = neighbour if abs(err) > NEAR_HALFWAY * abs(neighbour - r) * den else r
    return r, alt


@njit(inline='always', error_model='numpy')
def square_candidates(x):
    """The floats pow(x, 2.0) may be: x*x, whose exact error an FMA gives."""
    r = x * x
    return candidates(r, fma(x, x, -r), 1.0)


@njit(inline='always', error_model='numpy')
def root_candidates(x):
    """The floats pow(x, 0.5) may be, x >= 0: sqrt(x), with t - r = (x - r*r) / (t + r)."""
    r = math.sqrt(x)
    return candidates(r, fma(-r, r, x), 2 * r)


@njit(inline='always', error_model='numpy')
def reciprocal(x):
    """pow(x, -1.0) for x > 0: 1/x, correctly rounded, with t - r = (1 - r*x) / x, exact
    in an FMA; pow itself where it may return the neighbour."""
    r = 1.0 / x
    r, alt = candidates(r, fma(-r, x, 1.0), x)
    return r if alt == r else power(x, -1.0)
