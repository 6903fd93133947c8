"""Each Value op's local gradient against central finite differences on random inputs."""
import math
import random

import pytest

from microgpt.gpt import Value

H = 1e-6
# Central differences with h=1e-6 have truncation error ~h^2*f''' and rounding error
# ~eps/h ~ 1e-10, relative to values of order 1: 1e-6 relative is a safe, failing bound.
RTOL = 1e-6

UNARY = {
    'log': (lambda v: v.log(), math.log, (0.1, 5.0)),
    'exp': (lambda v: v.exp(), math.exp, (-3.0, 3.0)),
    'relu': (lambda v: v.relu(), lambda x: max(0.0, x), (-2.0, 2.0)),
    'pow_-0.5': (lambda v: v ** -0.5, lambda x: x ** -0.5, (0.1, 4.0)),
    'pow_2': (lambda v: v ** 2, lambda x: x ** 2, (-3.0, 3.0)),
    'neg': (lambda v: -v, lambda x: -x, (-3.0, 3.0)),
    'rdiv': (lambda v: 2.5 / v, lambda x: 2.5 / x, (0.5, 3.0)),
    'rsub': (lambda v: 1.5 - v, lambda x: 1.5 - x, (-3.0, 3.0)),
    'div_by_float': (lambda v: v / 16, lambda x: x / 16, (-3.0, 3.0)),
}
BINARY = {
    'add': (lambda a, b: a + b, lambda x, y: x + y),
    'mul': (lambda a, b: a * b, lambda x, y: x * y),
    'sub': (lambda a, b: a - b, lambda x, y: x - y),
    'div': (lambda a, b: a / b, lambda x, y: x / y),
}


def numeric(f, x):
    return (f(x + H) - f(x - H)) / (2 * H)


@pytest.mark.parametrize('name', UNARY)
def test_unary_op_gradient(name):
    op, f, (lo, hi) = UNARY[name]
    rng = random.Random(name)
    for _ in range(20):
        x = rng.uniform(lo, hi)
        if name == 'relu' and abs(x) < 10 * H:
            continue  # the kink: no derivative to compare
        v = Value(x)
        out = op(v)
        assert out.data == pytest.approx(f(x), rel=1e-15, abs=0)
        out.backward()
        assert v.grad == pytest.approx(numeric(f, x), rel=RTOL, abs=1e-9), (name, x)


@pytest.mark.parametrize('name', BINARY)
def test_binary_op_gradient(name):
    op, f = BINARY[name]
    rng = random.Random(name)
    for _ in range(20):
        x, y = rng.uniform(-3, 3), rng.uniform(0.5, 3) * rng.choice((-1, 1))
        a, b = Value(x), Value(y)
        out = op(a, b)
        out.backward()
        assert a.grad == pytest.approx(numeric(lambda t: f(t, y), x), rel=RTOL, abs=1e-9)
        assert b.grad == pytest.approx(numeric(lambda t: f(x, t), y), rel=RTOL, abs=1e-9)


def test_composite_gradient_through_softmax_and_rmsnorm():
    from microgpt.gpt import rmsnorm, softmax
    rng = random.Random(1)
    xs = [rng.gauss(0, 1) for _ in range(7)]

    def f(vals):
        probs = softmax(rmsnorm(vals))
        return -probs[3].log()

    vs = [Value(x) for x in xs]
    f(vs).backward()
    for i, x in enumerate(xs):
        def g(t):
            return f([Value(t if j == i else xj) for j, xj in enumerate(xs)]).data
        assert vs[i].grad == pytest.approx(numeric(g, x), rel=RTOL, abs=1e-9)
