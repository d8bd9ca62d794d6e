"""Deep equality of what biosiglive and biosig_ros produce (dicts, lists, arrays, scalars)."""
import numpy as np


def assert_same(a, b):
    """a and b have the same types, keys in the same order, and arrays of the same shape,
    dtype and values, all the way down."""
    assert type(a) is type(b), (type(a), type(b))
    if isinstance(a, dict):
        assert list(a) == list(b)
        for key in a:
            assert_same(a[key], b[key])
    elif isinstance(a, list):
        assert len(a) == len(b)
        for x, y in zip(a, b):
            assert_same(x, y)
    elif isinstance(a, np.ndarray):
        assert a.shape == b.shape and a.dtype == b.dtype
        np.testing.assert_array_equal(a, b)
    else:
        assert a == b
