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
- `powers(out, x, candidates_of, e)`: pow(x[i], e) for a whole array, for rmsnorm's
  a ** -0.5 and a ** -1.5 and the softmaxes' total ** -1 and total ** -2.0. A
  vectorized pass takes each value's correctly rounded r (`*_candidates` below: a
  first guess and its error from FMAs, to far better than 0.01 ulp); pow is called only
  where it may return r's neighbour instead, about one value in ten. A call to pow
  costs some 10 ns; a value of the vectorized pass, 2 to 5 (measured at 56 values).

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
def reciprocal_candidates(x):
    """The floats pow(x, -1.0) may be, x > 0: 1/x, with t - r = (1 - r*x) / x, exact in
    an FMA."""
    r = 1.0 / x
    return candidates(r, fma(-r, x, 1.0), x)


@njit(inline='always', error_model='numpy')
def nearest_candidates(r, q):
    """candidates() from a first guess r within a few ulp of t, and q ~ t - r to better
    than 2**-50 relative: r + q is t's nearest float unless t lies near halfway, and its
    own error (r - (r + q)) + q, r - (r + q) exact (the two are within a factor 2)."""
    nearest = r + q
    return candidates(nearest, (r - nearest) + q, 1.0)


@njit(inline='always', error_model='numpy')
def inverse_square_candidates(x):
    """The floats pow(x, -2.0) may be, x > 0: r = 1/h, h + l = x*x exactly (an FMA), and
    t - r = (1 - r*h - r*l) / (h + l), ~ (1 - r*h - r*l) * r."""
    h = x * x
    l = fma(x, x, -h)
    r = 1.0 / h
    return nearest_candidates(r, (fma(-r, h, 1.0) - r * l) * r)


@njit(inline='always', error_model='numpy')
def inverse_root_candidates(x):
    """The floats pow(x, -0.5) may be, x > 0: r = 1/sqrt(x). With e = 1 - r*r*x (r*r
    exactly, in two parts), t - r = t * (1 - r*sqrt(x)) = t * e / (1 + r*sqrt(x)),
    ~ r * e / 2."""
    r = 1.0 / math.sqrt(x)
    rr = r * r
    e = fma(-rr, x, 1.0) - fma(r, r, -rr) * x
    return nearest_candidates(r, r * e * 0.5)


@njit(inline='always', error_model='numpy')
def inverse_root_cubed_candidates(x):
    """The floats pow(x, -1.5) may be, x > 0: r = 1/p, p + p_lo = x * sqrt(x) to about
    2**-100 (sqrt(x) = s + (x - s*s) / 2s, to the square of s's relative error), and
    t - r = (1 - r*p - r*p_lo) / (p + p_lo), ~ (1 - r*p - r*p_lo) * r."""
    s = math.sqrt(x)
    s_lo = fma(-s, s, x) / (2.0 * s)
    p = x * s
    p_lo = fma(x, s, -p) + x * s_lo
    r = 1.0 / p
    return nearest_candidates(r, (fma(-r, p, 1.0) - r * p_lo) * r)


# powers() trusts the candidates for 2**-300 < x < 2**300: there every square, product
# and remainder above is a normal float, and each FMA's remainder exact. Outside (and
# for zeros, infinities and NaNs), it calls pow.
SAFE_MIN, SAFE_MAX = 2.0 ** -300, 2.0 ** 300


@njit(inline='always', error_model='numpy')
def is_sure(x, r, alt):
    """Whether pow(x, e) is r: the candidates agree (not NaNs) and x is in their range."""
    return (alt == r) & (x > SAFE_MIN) & (x < SAFE_MAX)


@njit(inline='always', error_model='numpy')
def powers(out, x, candidates_of, e):
    """out[i] = pow(x[i], e), libm's float, for every i; candidates_of is the
    `*_candidates` function of exponent e. A vectorized pass writes r where it is sure
    of it, and a NaN (which r never is there) where not; a second pass, if there are
    any, asks pow for those."""
    n = x.shape[0]
    unsure = 0
    for i in range(n):
        r, alt = candidates_of(x[i])
        sure = is_sure(x[i], r, alt)
        out[i] = r if sure else math.nan
        unsure += not sure
    if unsure:
        for i in range(n):
            if math.isnan(out[i]):
                out[i] = power(x[i], e)
