"""Depth mantissa rounding: bounded error, infinities kept, lossless at 23 bits."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from clevr_remv.truth.depth_precision import max_relative_error, round_mantissa


@settings(max_examples=200, deadline=None)
@given(values=arrays(np.float32, 64, elements=st.floats(0.0625, 1e4, width=32)), bits=st.integers(4, 22))
def test_rounding_error_is_bounded_and_low_bits_are_zero(values, bits) -> None:
    rounded = round_mantissa(values, bits)
    assert rounded.dtype == np.float32
    relative = np.abs(rounded.astype(np.float64) - values) / values
    assert np.all(relative <= max_relative_error(bits) * (1 + 1e-6))
    assert np.all(rounded.view(np.uint32) & np.uint32((1 << (23 - bits)) - 1) == 0)


def test_infinite_background_and_full_precision_are_untouched() -> None:
    depth = np.array([np.inf, 1.2345678, 11.0, np.inf], np.float32)
    rounded = round_mantissa(depth, 10)
    assert np.isinf(rounded[0]) and np.isinf(rounded[3])
    assert rounded[2] == 11.0  # exactly representable with few bits
    np.testing.assert_array_equal(round_mantissa(depth, 23), depth)
    assert max_relative_error(23) == 0.0
