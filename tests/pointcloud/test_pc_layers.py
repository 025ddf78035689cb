"""BatchNorm, activations, dropout, pooling, point<->voxel ops, and empty tensors everywhere."""

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from edgeinfer.pointcloud import SparseTensor, functional, sparse_quantize
from edgeinfer.pointcloud import nn as spnn
from tests.common_sparse.reference import random_coords
from tests.pointcloud.pc_reference import loop_devoxelize, loop_voxelize
from tests.pointcloud.pc_tolerances import INTERP_ATOL, POOL_ATOL


def _tensor(n=100, channels=4, seed=0, batches=3, stride=1):
    coords = random_coords(n, 3, 6, batches=batches, seed=seed, low=-3)
    coords[:, 1:] *= stride
    feats = torch.randn(len(coords), channels, generator=torch.Generator().manual_seed(seed))
    return SparseTensor(feats, coords.to(torch.int32), stride)


def test_batch_norm_matches_batchnorm1d_and_keeps_sites():
    x = _tensor()
    layer, reference = spnn.BatchNorm(4), torch.nn.BatchNorm1d(4)
    y = layer(x)
    torch.testing.assert_close(y.feats, reference(x.feats))
    torch.testing.assert_close(layer.running_mean, reference.running_mean)
    assert y.coords is x.coords and y.cache is x.cache
    layer.eval()
    reference.eval()
    torch.testing.assert_close(layer(x).feats, reference(x.feats))
    assert set(layer.state_dict()) == set(reference.state_dict())
    with pytest.raises(ValueError, match=r"BatchNorm\(8, .*expected 8 input channels, got 4"):
        spnn.BatchNorm(8)(x)


def test_activations_and_dropout_act_on_feats_only():
    x = _tensor()
    assert torch.equal(spnn.ReLU()(x).feats, x.feats.clamp(min=0))
    torch.testing.assert_close(spnn.LeakyReLU(0.2)(x).feats,
                               torch.nn.functional.leaky_relu(x.feats, 0.2))
    dropout = spnn.Dropout(0.5)
    dropout.eval()
    assert torch.equal(dropout(x).feats, x.feats)
    dropout.train()
    dropped = dropout(x).feats
    assert bool(((dropped == 0) | torch.isclose(dropped, 2 * x.feats)).all())
    with pytest.raises(ValueError, match=r"p must be in \[0, 1\]; got 1.5"):
        spnn.Dropout(1.5)
    with pytest.raises(TypeError, match="relu input must be a SparseTensor"):
        functional.relu(torch.ones(2, 2))


@settings(max_examples=20, deadline=None)
@given(st.integers(0, 10_000))
def test_global_pools_match_loops_per_batch_item(seed):
    x = _tensor(n=40, seed=seed, batches=3)
    avg, top = spnn.GlobalAvgPool()(x), spnn.GlobalMaxPool()(x)
    assert avg.shape == top.shape == (x.batch_size, 4)
    for b in range(x.batch_size):
        rows = x.feats[x.coords[:, 0] == b]
        expected_avg = rows.mean(0) if len(rows) else torch.zeros(4)
        expected_max = rows.max(0).values if len(rows) else torch.zeros(4)
        torch.testing.assert_close(avg[b], expected_avg, atol=POOL_ATOL, rtol=0)
        assert torch.equal(top[b], expected_max)


@settings(max_examples=20, deadline=None)
@given(st.integers(0, 10_000), st.integers(1, 80))
def test_voxelize_matches_a_loop(seed, n):
    gen = torch.Generator().manual_seed(seed)
    points = torch.rand(n, 3, generator=gen) * 2
    _, _, inverse = sparse_quantize(points, 0.5)
    feats = torch.randn(n, 3, generator=gen)
    voxels = functional.voxelize(feats, inverse)
    expected = loop_voxelize(feats, inverse, int(inverse.max()) + 1)
    torch.testing.assert_close(voxels.double(), expected, atol=POOL_ATOL, rtol=0)


def test_voxelize_errors():
    with pytest.raises(ValueError, match="one voxel index per point"):
        functional.voxelize(torch.ones(3, 2), torch.zeros(2, dtype=torch.int64))
    with pytest.raises(ValueError, match=r"inverse must lie in \[0, 2\)"):
        functional.voxelize(torch.ones(2, 2), torch.tensor([0, 5]), n_voxels=2)


@settings(max_examples=20, deadline=None)
@given(st.integers(0, 10_000), st.sampled_from([1, 2]))
def test_devoxelize_matches_a_trilinear_loop(seed, stride):
    x = _tensor(n=120, channels=3, seed=seed, batches=2, stride=stride)
    gen = torch.Generator().manual_seed(seed + 1)
    xyz = (torch.rand(50, 3, generator=gen) * 8 - 4) * stride
    batch = torch.randint(0, 2, (50, 1), generator=gen).double()
    points = torch.cat([batch, xyz.double()], dim=1)
    points[:5, 1:] = x.coords[:5, 1:].double()  # exactly on voxels
    points[:5, 0] = x.coords[:5, 0].double()
    out = functional.devoxelize(x, points)
    expected = loop_devoxelize(x.coords, x.feats, stride, points)
    torch.testing.assert_close(out.double(), expected, atol=INTERP_ATOL, rtol=0)
    torch.testing.assert_close(out[:5], x.feats[:5], atol=INTERP_ATOL, rtol=0)


def test_devoxelize_numba_and_torch_paths_agree_and_are_deterministic(monkeypatch):
    """The numba pass (no gradient) against the torch gathers (numba off, or a gradient)."""
    from edgeinfer import _jit

    coords = random_coords(3000, 3, 20, batches=2, seed=3, low=-10)
    coords[:, 1:] *= 2
    gen = torch.Generator().manual_seed(4)
    x = SparseTensor(torch.randn(len(coords), 16, generator=gen), coords.to(torch.int32), 2)
    points = torch.cat([torch.randint(0, 2, (4000, 1), generator=gen).double(),
                        (torch.rand(4000, 3, generator=gen) * 40 - 20).double()], dim=1)
    previous = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        one = functional.devoxelize(x, points)
        torch.set_num_threads(2)
        two = functional.devoxelize(x, points)
    finally:
        torch.set_num_threads(previous)
    assert torch.equal(one, two)
    assert bool((one != 0).any(dim=1).float().mean() > 0.5)  # most points see voxels
    feats = x.feats.clone().requires_grad_(True)
    graded = functional.devoxelize(x.replace(feats=feats), points)  # the torch path
    graded.sum().backward()
    assert feats.grad is not None and bool((feats.grad != 0).any())
    torch.testing.assert_close(one, graded.detach(), atol=INTERP_ATOL, rtol=0)
    monkeypatch.setenv(_jit.ENV, "0")
    torch.testing.assert_close(one, functional.devoxelize(x, points), atol=INTERP_ATOL, rtol=0)


def test_devoxelize_rules_for_missing_neighbours():
    x = SparseTensor(torch.tensor([[1.0], [3.0]]), torch.tensor([[0, 0, 0, 0], [0, 1, 0, 0]],
                                                                dtype=torch.int32))
    points = torch.tensor([[0, 0.25, 0.5, 0.0], [0, 5.0, 5.0, 5.0], [0, 0.5, -1.0, 0.0]],
                          dtype=torch.float64)
    out = functional.devoxelize(x, points)
    assert out[:, 0].tolist() == [1.5, 0.0, 2.0]  # renormalised / no neighbour / equal fallback
    with pytest.raises(ValueError, match="must be finite"):
        functional.devoxelize(x, torch.tensor([[0, float("nan"), 0.0, 0.0]]))
    with pytest.raises(TypeError, match=r"shape \(N, 4\)"):
        functional.devoxelize(x, torch.zeros(3, 3))


def test_empty_tensors_pass_through_every_layer():
    x = SparseTensor(torch.zeros(0, 4), torch.zeros(0, 4, dtype=torch.int32))
    for layer in (spnn.Conv3d(4, 4, 3), spnn.Conv3d(4, 4, 2, stride=2), spnn.BatchNorm(4),
                  spnn.ReLU(), spnn.LeakyReLU(), spnn.Dropout(0.3)):
        out = layer(x)
        assert len(out) == 0 and out.feats.shape == (0, 4)
    down = spnn.Conv3d(4, 4, 3, stride=2)(x)
    up = spnn.Conv3d(4, 2, 3, stride=2, transposed=True)(down)
    assert up.feats.shape == (0, 2) and up.stride == (1, 1, 1)
    spnn.BatchNorm(4).eval()(x)
    assert spnn.GlobalAvgPool()(x).shape == spnn.GlobalMaxPool()(x).shape == (0, 4)
    assert functional.voxelize(torch.zeros(0, 4), torch.zeros(0, dtype=torch.int64)).shape \
        == (0, 4)
    assert functional.devoxelize(x, torch.zeros(0, 4)).shape == (0, 4)
    assert functional.devoxelize(x, torch.zeros(2, 4)).tolist() == [[0.0] * 4] * 2
    points = torch.zeros(0, 3)
    coords, indices, inverse = sparse_quantize(points, 0.1)
    assert coords.shape == (0, 3) and indices.shape == inverse.shape == (0,)


def test_gradients_flow_through_a_small_network():
    x = _tensor(channels=4)
    net = torch.nn.Sequential(spnn.Conv3d(4, 8, 3), spnn.BatchNorm(8), spnn.ReLU(),
                              spnn.Conv3d(8, 8, 2, stride=2), spnn.GlobalMaxPool())
    net(x).sum().backward()
    assert all(p.grad is not None for p in net.parameters())
