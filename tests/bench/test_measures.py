"""Peak memory, MACs and quality measures report what really happened."""

import numpy as np
import pytest
import torch

from edgeinfer.bench import (
    cosine_similarity,
    count_macs,
    max_abs_error,
    measure_peak_rss,
    relative_error,
)


def test_peak_rss_sees_a_large_temporary_allocation():
    def allocate(megabytes):
        block = np.ones(megabytes * 1024 * 1024 // 8)  # touched, so resident
        return float(block[-1])

    result, small = measure_peak_rss(allocate, 1)
    _, large = measure_peak_rss(allocate, 256)
    assert result == 1.0
    assert large.peak_mb >= large.before_mb
    if large.exact:
        assert large.growth_mb > 200
        assert small.growth_mb < 100


def test_macs_of_a_linear_layer_are_counted_exactly():
    layer = torch.nn.Linear(64, 32, bias=False)
    inputs = torch.randn(10, 64)
    assert count_macs(layer, inputs) == 10 * 64 * 32


def test_macs_outside_torch_are_unknown_not_zero():
    assert count_macs(lambda a: a @ a, np.ones((8, 8))) is None


def test_quality_measures():
    ref = np.array([1.0, 2.0, 3.0])
    assert max_abs_error(ref, torch.tensor([1.0, 2.5, 3.0])) == pytest.approx(0.5)
    assert relative_error(ref, ref) == 0.0
    assert cosine_similarity(ref, 2 * ref) == pytest.approx(1.0)
    assert cosine_similarity(ref, -ref) == pytest.approx(-1.0)


def test_quality_measures_reject_mismatched_shapes():
    with pytest.raises(ValueError, match=r"same shape; got \(3,\) and \(2,\)"):
        max_abs_error(np.zeros(3), np.zeros(2))
