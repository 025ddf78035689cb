"""Coordinate packing, unique and quantisation against numpy / python references."""

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from edgeinfer.common_sparse import (
    key_layout,
    pack_coords,
    quantize_points,
    unique_coords,
    unpack_coords,
    validate_coords,
)


@st.composite
def coord_sets(draw, max_rows=30):
    ndim = draw(st.integers(1, 3))
    layout = key_layout(ndim)
    spatial = st.integers(layout.spatial_min, layout.spatial_max)
    rows = draw(st.lists(
        st.tuples(st.integers(0, layout.batch_max), *([spatial] * ndim)), max_size=max_rows
    ))
    return torch.tensor(rows, dtype=torch.int64).reshape(-1, ndim + 1)


@settings(max_examples=60, deadline=None)
@given(coord_sets())
def test_pack_unpack_round_trip_and_order_is_lexicographic(coords):
    keys = pack_coords(coords)
    assert keys.dtype == torch.int64 and bool((keys >= 0).all())
    assert torch.equal(unpack_coords(keys, coords.shape[1] - 1), coords)
    by_key = coords[torch.argsort(keys, stable=True)].tolist()
    assert by_key == sorted(coords.tolist())


@pytest.mark.parametrize("ndim", [1, 2, 3])
def test_extremes_of_the_range_pack_and_are_distinct(ndim):
    layout = key_layout(ndim)
    lo, hi = layout.spatial_min, layout.spatial_max
    coords = torch.tensor([[0] + [lo] * ndim, [layout.batch_max] + [hi] * ndim, [0] + [-1] * ndim])
    keys = pack_coords(coords)
    assert len(set(keys.tolist())) == 3
    assert torch.equal(unpack_coords(keys, ndim), coords)


def test_overflowing_column_raises_naming_column_and_range():
    layout = key_layout(3)
    coords = torch.tensor([[0, 0, 0, layout.spatial_max + 1]])
    expected = r"coords column 'z' spans \[32768, 32768\].*\[-32768, 32767\]"
    with pytest.raises(ValueError, match=expected):
        pack_coords(coords)
    with pytest.raises(ValueError, match="column 'batch' spans"):
        pack_coords(torch.tensor([[-1, 0, 0, 0]]))


def test_wrong_dtype_and_shape_raise_with_the_fix():
    with pytest.raises(TypeError, match=r"integer tensor of shape \(N, 1\+D\).*got torch.float32"):
        validate_coords(torch.zeros(5, 4))
    with pytest.raises(ValueError, match=r"got shape \(5, 5\)"):
        validate_coords(torch.zeros(5, 5, dtype=torch.int32))
    with pytest.raises(TypeError, match=r"torch\.Tensor or numpy array"):
        validate_coords([[0, 1]])


def test_numpy_int32_input_is_accepted():
    coords = np.array([[0, -3, 4], [1, 2, -7]], dtype=np.int32)
    assert torch.equal(unpack_coords(pack_coords(coords), 2), torch.from_numpy(coords).long())


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 2), st.integers(-5, 5), st.integers(-5, 5)), max_size=40))
def test_unique_coords_matches_numpy(rows):
    coords = torch.tensor(rows, dtype=torch.int64).reshape(-1, 3)
    unique, inverse = unique_coords(coords)
    expected = np.unique(coords.numpy(), axis=0) if rows else np.zeros((0, 3), dtype=np.int64)
    assert np.array_equal(unique.numpy(), expected)
    assert torch.equal(unique[inverse], coords)


def test_quantize_points_floors_negative_values():
    points = torch.tensor([[-0.1, 0.0, 0.99], [1.0, -1.0, -1.01]])
    assert quantize_points(points, 1.0).tolist() == [[-1, 0, 0], [1, -1, -2]]
    assert quantize_points(points.numpy(), (0.5, 1.0, 2.0)).tolist() == [[-1, 0, 0], [2, -1, -1]]
    assert quantize_points(torch.zeros(0, 2), 0.1).shape == (0, 2)


def test_quantize_points_rejects_bad_input():
    with pytest.raises(ValueError, match="voxel_size must be one positive number"):
        quantize_points(torch.zeros(3, 3), 0.0)
    with pytest.raises(ValueError, match="finite"):
        quantize_points(torch.tensor([[float("nan"), 0.0]]), 1.0)
    with pytest.raises(TypeError, match="floating"):
        quantize_points(torch.zeros(3, 3, dtype=torch.int64), 1.0)
    with pytest.raises(ValueError, match=r"shape \(N, D\)"):
        quantize_points(torch.zeros(3, 4), 1.0)


def test_empty_coords_pack_to_empty_keys():
    assert pack_coords(torch.zeros(0, 4, dtype=torch.int64)).shape == (0,)
    unique, inverse = unique_coords(torch.zeros(0, 3, dtype=torch.int32))
    assert unique.shape == (0, 3) and inverse.shape == (0,)
