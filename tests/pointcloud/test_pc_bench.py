"""The point-cloud benchmark: discoverable, honest scan size, and spconv mirrors that agree.

spconv is optional: tests that need it are skipped without it. spconv's CPU kernels race
at 2 threads, so agreement is checked at 1 thread.
"""

import contextlib

import pytest
import torch

from edgeinfer.bench import discover_benchmarks
from edgeinfer.pointcloud import PointTensor, SparseTensor, create_model, list_models
from edgeinfer.pointcloud import nn as spnn
from edgeinfer.pointcloud.bench import BENCHMARKS, SCAN_VOXELS, load_scan
from edgeinfer.pointcloud.models.spconv_mirror import (
    SpconvFeats,
    mirror_in_spconv,
    spatial_shape_for,
    spconv_weight,
    to_spconv,
)
from tests.common_sparse.reference import random_coords
from tests.pointcloud.pc_tolerances import CONV_ATOL


@contextlib.contextmanager
def _one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _voxels(channels=4, n=600, seed=0):
    coords = random_coords(n, 3, 20, batches=1, seed=seed, low=0).to(torch.int32)
    feats = torch.randn(len(coords), channels, generator=torch.Generator().manual_seed(seed))
    return SparseTensor(feats, coords)


def test_benchmark_is_discovered_with_a_small_quick_subset():
    assert "pointcloud" in {item.benchmark.name for item in discover_benchmarks()}
    full = BENCHMARKS[0].build_cases()
    quick = BENCHMARKS[0].build_cases(quick=True)
    assert [c.name for c in quick] == ["subm3 map+conv C32", "minkunet width 0.5 (net)"]
    assert all(case.requires == ("spconv",) for case in full)
    assert len(full) == 11


def test_scan_voxel_count_in_the_description_is_true():
    state = load_scan()
    assert len(state["coords"]) == SCAN_VOXELS
    assert int(state["coords"][:, 1:].min()) >= 0
    assert isinstance(state["points"], PointTensor)
    assert f"{SCAN_VOXELS:,}" in BENCHMARKS[0].description


def test_spatial_shape_is_padded_and_rejects_negative_coords():
    coords = torch.tensor([[0, 0, 5, 16], [0, 3, 0, 0]], dtype=torch.int32)
    assert spatial_shape_for(coords) == [16, 16, 32]
    with pytest.raises(ValueError, match="coordinates >= 0"):
        spatial_shape_for(torch.tensor([[0, -1, 0, 0]]))


def test_weight_layout_is_a_permutation_except_for_1x1():
    kernel = torch.arange(27 * 2 * 3, dtype=torch.float32).reshape(27, 2, 3)
    weight = spconv_weight(kernel, (3, 3, 3))
    assert weight.shape == (3, 3, 3, 3, 2)
    assert weight[2, 1, 0, 2, 1] == kernel[(1 * 3 + 0) * 3 + 2, 1, 2]
    single = spconv_weight(kernel[:1], (1, 1, 1))
    assert torch.equal(single.reshape(2, 3), kernel[0])  # spconv's conv1x1 views (C_in, C_out)


@pytest.mark.parametrize(
    ("kernel_size", "stride", "transposed"),
    [(3, 1, False), (1, 1, False), (2, 2, False), (2, 2, True)],
    ids=["subm3", "subm1", "down", "up"],
)
def test_each_conv_kind_matches_spconv_with_copied_weights(kernel_size, stride, transposed):
    pytest.importorskip("spconv")
    x = _voxels(channels=5)
    layer = spnn.Conv3d(5, 7, kernel_size, stride, transposed=transposed)
    model = torch.nn.Sequential(spnn.Conv3d(5, 5, 2, 2), layer) if transposed else layer
    with _one_thread(), torch.no_grad():
        mirror = mirror_in_spconv(model, lambda: model(x))
        ours, theirs = model(x), mirror(to_spconv(x))
    coords = theirs.tensor.indices.clone()
    coords[:, 1:] *= theirs.stride
    order_ours = torch.argsort(ours.coords[:, 1] * 10**6 + ours.coords[:, 2] * 10**3
                               + ours.coords[:, 3])
    order_theirs = torch.argsort(coords[:, 1] * 10**6 + coords[:, 2] * 10**3 + coords[:, 3])
    assert torch.equal(ours.coords[order_ours], coords[order_theirs])
    torch.testing.assert_close(ours.feats[order_ours], theirs.feats[order_theirs],
                               atol=CONV_ATOL, rtol=1e-5)


@pytest.mark.parametrize("name", list_models())
def test_every_model_matches_its_spconv_mirror(name):
    pytest.importorskip("spconv")
    torch.manual_seed(0)
    model = create_model(name, 4, 3, width=0.25, blocks=1).eval()
    x = _voxels(n=1500)
    with _one_thread(), torch.no_grad():
        if name == "spvcnn":
            points = PointTensor(x.feats, x.coords.to(torch.float32) + 0.5)
            mirror = mirror_in_spconv(model, lambda: model(points))
            ours = model(points)
            voxels, _ = points.voxelize()
            theirs = mirror.run(to_spconv(voxels), points)
        else:
            mirror = mirror_in_spconv(model, lambda: model(x))
            ours, theirs = model(x).feats, mirror.run(to_spconv(x)).feats
    torch.testing.assert_close(ours, theirs, atol=CONV_ATOL, rtol=1e-5)


def test_spconv_view_keeps_input_scale_coords():
    spconv = pytest.importorskip("spconv.pytorch")
    coords = torch.tensor([[0, 1, 2, 3], [0, 4, 0, 1]], dtype=torch.int32)
    tensor = spconv.SparseConvTensor(torch.ones(2, 1), coords, [8, 8, 8], 1)
    view = SpconvFeats(tensor, stride=4).as_sparse_tensor()
    assert view.stride == (4, 4, 4)
    assert view.coords[:, 1:].tolist() == [[4, 8, 12], [16, 0, 4]]


def test_quick_layer_case_agrees_with_spconv():
    pytest.importorskip("spconv")
    case = BENCHMARKS[0].build_cases(quick=True)[0]
    with _one_thread(), torch.no_grad():
        state = case.setup()
        quality = case.quality(case.baseline(state), case.candidate(state), state)
    assert quality["max abs err"] < CONV_ATOL


def test_bare_gemm_benchmark_multiplies_exactly_the_pairs_of_the_conv():
    gemm = next(b for b in BENCHMARKS if b.name == "pointcloud-gemm")
    assert [c.name for c in gemm.build_cases(quick=True)] == ["subm3 cached map C32"]
    case = gemm.build_cases(quick=True)[0]
    with _one_thread(), torch.no_grad():
        state = case.setup()
        products = case.baseline(state)
        quality = case.quality(products, case.candidate(state), state)
    assert [len(p) for p in products] == state["map"].pair_counts()
    assert quality["max abs err"] < CONV_ATOL
