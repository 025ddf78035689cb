"""SparseTensor validation, derivation and the dense round trip; sparse_quantize; collate."""

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from edgeinfer.pointcloud import (
    SparseTensor,
    from_dense,
    sparse_collate,
    sparse_quantize,
    to_dense,
)


def _coords(rows):
    return torch.tensor(rows, dtype=torch.int32)


def test_construction_and_derivation_share_coords_and_cache():
    x = SparseTensor(torch.ones(2, 3), _coords([[0, -1, 2, 3], [1, 0, 0, 0]]))
    assert x.coords.dtype == torch.int32 and x.stride == (1, 1, 1) and x.batch_size == 2
    y = x.replace(feats=torch.zeros(2, 5))
    assert y.coords is x.coords and y.cache is x.cache and y.feats.shape == (2, 5)
    assert repr(x) == ("SparseTensor(sites=2, channels=3, stride=(1, 1, 1), batch_size=2, "
                       "dtype=torch.float32)")
    numpy_made = SparseTensor(np.ones((1, 2), np.float32), np.array([[0, 2, 4, 6]]), stride=2)
    assert numpy_made.stride == (2, 2, 2) and numpy_made.coords.dtype == torch.int32


def test_empty_tensor_is_allowed():
    x = SparseTensor(torch.zeros(0, 4), torch.zeros(0, 4, dtype=torch.int32))
    assert len(x) == 0 and x.batch_size == 0
    assert to_dense(x).shape == (0, 4, 0, 0, 0)


def test_bad_inputs_raise_with_the_fix():
    feats = torch.ones(2, 3)
    with pytest.raises(ValueError, match=r"integer tensor of shape \(N, 4\).*got torch.float32"):
        SparseTensor(feats, torch.zeros(2, 4))
    with pytest.raises(ValueError, match=r"got torch.int32 of shape \(2, 3\)"):
        SparseTensor(feats, torch.zeros(2, 3, dtype=torch.int32))
    with pytest.raises(ValueError, match="coords has 2 rows, feats has 3"):
        SparseTensor(torch.ones(3, 3), _coords([[0, 0, 0, 0], [0, 1, 0, 0]]))
    with pytest.raises(ValueError, match=r"1 rows repeat an earlier coordinate.*sparse_quantize"):
        SparseTensor(feats, _coords([[0, 1, 2, 3], [0, 1, 2, 3]]))
    with pytest.raises(ValueError, match=r"multiples of it; row 1 is \[0, 1, 0, 0\]"):
        SparseTensor(feats, _coords([[0, 0, 0, 0], [0, 1, 0, 0]]), stride=2)
    with pytest.raises(ValueError, match="batch column must be >= 0"):
        SparseTensor(feats, _coords([[-1, 0, 0, 0], [0, 1, 0, 0]]))
    with pytest.raises(ValueError, match="int64 key packing"):
        SparseTensor(feats, _coords([[0, 40_000, 0, 0], [0, 1, 0, 0]]))
    with pytest.raises(TypeError, match=r"feats must be a floating tensor of shape \(N, C\)"):
        SparseTensor(torch.ones(2, 3, dtype=torch.int64), _coords([[0, 0, 0, 0], [0, 1, 0, 0]]))
    with pytest.raises(ValueError, match="stride must be an int >= 1"):
        SparseTensor(feats, _coords([[0, 0, 0, 0], [0, 1, 0, 0]]), stride=0)


@settings(max_examples=25, deadline=None)
@given(st.integers(0, 10_000), st.sampled_from([1, 2]))
def test_dense_round_trip_is_identity(seed, stride):
    gen = torch.Generator().manual_seed(seed)
    dense = torch.randn(2, 3, 4, 5, 3, generator=gen) * (torch.rand(2, 1, 4, 5, 3, generator=gen)
                                                           < 0.3)
    x = from_dense(dense, stride=stride, origin=(-2 * stride, 0, 2 * stride))
    assert x.stride == (stride,) * 3
    back = to_dense(x, (4, 5, 3), origin=(-2 * stride, 0, 2 * stride))
    assert torch.equal(back[: x.batch_size], dense[: x.batch_size])
    assert float(dense[x.batch_size:].abs().sum()) == 0.0


def test_to_dense_never_drops_a_site():
    x = SparseTensor(torch.ones(1, 1), _coords([[0, -1, 0, 0]]))
    with pytest.raises(ValueError, match="pass an origin <= the smallest coordinate"):
        to_dense(x)
    assert to_dense(x, origin=(-1, 0, 0)).shape == (1, 1, 1, 1, 1)


def test_sparse_quantize_voxels_indices_inverse():
    points = np.array([[0.12, 0.0, 0.0, 7.0], [-0.01, 0.25, 0.0, 8.0], [0.14, 0.01, 0.04, 9.0]],
                      dtype=np.float32)
    coords, indices, inverse = sparse_quantize(points, 0.1)
    assert isinstance(coords, np.ndarray) and coords.dtype == np.int32
    assert coords.tolist() == [[-1, 2, 0], [1, 0, 0]]  # sorted by (x, y, z)
    assert indices.tolist() == [1, 0] and inverse.tolist() == [1, 0, 1]
    only = sparse_quantize(torch.from_numpy(points), (0.1, 1.0, 1.0), return_index=False,
                           return_inverse=False)
    assert isinstance(only, torch.Tensor) and only.tolist() == [[-1, 0, 0], [1, 0, 0]]


@settings(max_examples=25, deadline=None)
@given(st.integers(0, 10_000), st.integers(0, 60))
def test_sparse_quantize_is_independent_of_input_order(seed, n):
    gen = torch.Generator().manual_seed(seed)
    points = torch.randn(n, 4, generator=gen, dtype=torch.float64)
    perm = torch.randperm(n, generator=gen)
    coords, indices, inverse = sparse_quantize(points, 0.5)
    coords_p, indices_p, inverse_p = sparse_quantize(points[perm], 0.5)
    assert torch.equal(coords, coords_p) and torch.equal(inverse_p, inverse[perm])
    assert torch.equal(coords[inverse], torch.floor(points[:, :3] / 0.5).to(torch.int32))
    assert torch.equal(inverse[indices], torch.arange(len(coords)))
    assert torch.equal(inverse_p[indices_p], torch.arange(len(coords)))
    for voxel, first in enumerate(indices.tolist()):  # the first point in input order
        assert first == int(torch.nonzero(inverse == voxel)[0])
    assert torch.equal(sparse_quantize(points, 0.5)[1], indices)  # deterministic


def test_sparse_quantize_errors():
    points = np.zeros((5, 3))
    points[2, 1] = np.nan
    points[4, 0] = np.inf
    with pytest.raises(ValueError, match=r"2 of 5 rows hold NaN or inf, the first is row 2"):
        sparse_quantize(points, 0.1)
    with pytest.raises(ValueError, match="voxel_size must be a positive"):
        sparse_quantize(np.zeros((2, 3)), 0.0)
    with pytest.raises(ValueError, match="voxel_size must be a positive"):
        sparse_quantize(np.zeros((2, 3)), (0.1, -1.0, 0.1))
    with pytest.raises(TypeError, match="floating"):
        sparse_quantize(np.zeros((2, 3), dtype=np.int64), 0.1)
    with pytest.raises(ValueError, match=r"shape \(N, 3\+\)"):
        sparse_quantize(np.zeros((2, 2)), 0.1)
    with pytest.raises(ValueError, match="int64 key packing"):
        sparse_quantize(np.array([[1e4, 0.0, 0.0]]), 0.1)


def test_sparse_collate_sets_the_batch_column():
    a = (np.array([[0, 0, 0], [1, 2, 3]], dtype=np.int32), np.ones((2, 2), np.float32))
    b = SparseTensor(torch.zeros(1, 2), _coords([[0, 0, 0, 0]]))
    x = sparse_collate([a, b])
    assert x.coords.tolist() == [[0, 0, 0, 0], [0, 1, 2, 3], [1, 0, 0, 0]]
    assert x.batch_size == 2 and x.feats.tolist() == [[1, 1], [1, 1], [0, 0]]
    with pytest.raises(ValueError, match="non-empty list"):
        sparse_collate([])
    with pytest.raises(ValueError, match="share one stride"):
        sparse_collate([b, SparseTensor(torch.zeros(1, 2), _coords([[0, 0, 0, 0]]), stride=2)])
    with pytest.raises(ValueError, match="share one channel count"):
        sparse_collate([b, SparseTensor(torch.zeros(1, 3), _coords([[0, 0, 0, 0]]))])
    with pytest.raises(ValueError, match="item 0 holds several batch items"):
        sparse_collate([SparseTensor(torch.zeros(2, 2), _coords([[0, 0, 0, 0], [1, 0, 0, 0]]))])
    with pytest.raises(TypeError, match="item 1 is str"):
        sparse_collate([b, "scan"])
    with pytest.raises(ValueError, match="repeat an earlier coordinate"):
        sparse_collate([(np.zeros((2, 3), np.int32), np.ones((2, 2), np.float32))])
