"""check_tensor: compare a tensor with its reference, and say where and by how much
they differ (after llm.c's check_tensor)."""
import numpy as np

# An element much smaller than its tensor's largest usually comes out of cancellation
# (a sum of terms of the tensor's scale). Its rounding error is relative to the terms,
# not to itself, so the relative difference is taken against at least this fraction of
# the tensor's largest magnitude. Elements within 1000x of the largest are compared
# against their own size.
SCALE_FLOOR = 1e-3


def rel_diff(got, expected):
    """Elementwise |got - expected| / max(|expected|, SCALE_FLOOR * max|expected|);
    0 where both are exactly equal."""
    got, expected = np.asarray(got, dtype=float), np.asarray(expected, dtype=float)
    diff = np.abs(got - expected)
    scale = np.maximum(np.abs(expected), SCALE_FLOOR * np.abs(expected).max(initial=0.0))
    with np.errstate(divide='ignore', invalid='ignore'):
        return np.where(diff == 0, 0.0, diff / scale)


def check_tensor(name, got, expected, rtol):
    """Assert got ~ expected within rtol (see rel_diff); return the max difference."""
    got, expected = np.asarray(got, dtype=float), np.asarray(expected, dtype=float)
    assert got.shape == expected.shape, f"{name}: shape {got.shape} != {expected.shape}"
    rel = rel_diff(got, expected)
    bad = np.argwhere(~(rel <= rtol))
    if len(bad):
        first = tuple(int(i) for i in bad[0])
        raise AssertionError(
            f"{name}: {len(bad)} of {rel.size} elements differ by more than {rtol:g} relative; "
            f"first at {first}: got {float(got[first])!r}, expected {float(expected[first])!r}; "
            f"max relative difference {np.nanmax(rel):.3g}")
    return float(rel.max(initial=0.0))
