"""spnn.Conv3d against dense conv3d / conv_transpose3d, the kernel-map cache, properties."""

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from edgeinfer.common_sparse import KernelMapKey, build_submanifold_map, kernel_offsets
from edgeinfer.pointcloud import SparseTensor
from edgeinfer.pointcloud import nn as spnn
from tests.common_sparse.reference import (
    brute_force_strided_coords,
    dense_conv_at_sites,
    dense_to_sparse_weight,
    map_triples,
    random_coords,
)
from tests.pointcloud.pc_reference import dense_selection, dense_transposed_conv_at_sites
from tests.pointcloud.pc_tolerances import CONV_ATOL, CONV_RTOL, SCIPY_ATOL

C_IN, C_OUT = 4, 3
ONES = (1, 1, 1)


def _tensor(n=150, extent=10, low=-5, stride=1, seed=0, batches=2, channels=C_IN):
    coords = random_coords(n, 3, extent, batches=batches, seed=seed, low=low)
    coords[:, 1:] *= stride
    feats = torch.randn(len(coords), channels, generator=torch.Generator().manual_seed(seed))
    return SparseTensor(feats, coords.to(torch.int32), stride)


def _layer(k, c_in=C_IN, c_out=C_OUT, seed=0, **kwargs):
    torch.manual_seed(seed)
    return spnn.Conv3d(c_in, c_out, kernel_size=k, **kwargs)


def _dense_weight(layer, k):
    """The dense ``(C_out, C_in, k, k, k)`` weight equivalent to ``layer.kernel``."""
    kernel = layer.kernel.detach()
    return kernel.reshape(k, k, k, kernel.shape[1], kernel.shape[2]).permute(4, 3, 0, 1, 2)


@pytest.mark.parametrize(("k", "dilation", "tensor_stride", "low"), [
    (3, 1, 1, -5), (1, 1, 1, 0), (5, 1, 1, -5), (3, 2, 1, -5), (3, 1, 2, -4), (2, 1, 1, 3),
])
def test_submanifold_matches_dense_conv(k, dilation, tensor_stride, low):
    x = _tensor(low=low, stride=tensor_stride, seed=k + dilation)
    layer = _layer(k, dilation=dilation, bias=True)
    y = layer(x)
    assert y.coords is x.coords and y.stride == x.stride and y.cache is x.cache
    coords = x.coords.to(torch.int64)
    expected = dense_conv_at_sites(coords, x.feats, _dense_weight(layer, k), coords,
                                   dilation=dilation, tensor_stride=tensor_stride)
    torch.testing.assert_close(y.feats, expected + layer.bias.detach(), atol=CONV_ATOL,
                               rtol=CONV_RTOL)


def test_dense_weight_round_trip_matches_the_core_layout():
    layer = _layer(3)
    assert torch.equal(dense_to_sparse_weight(_dense_weight(layer, 3)), layer.kernel.detach())
    assert torch.equal(layer.kernel_offsets, kernel_offsets(3, 3))
    assert layer.kernel.shape == (27, C_IN, C_OUT)
    assert _layer(1).kernel.shape == (1, C_IN, C_OUT)


@pytest.mark.parametrize(("k", "stride", "tensor_stride"), [(2, 2, 1), (3, 2, 1), (2, 2, 2)])
def test_strided_matches_dense_conv_and_the_coordinate_formula(k, stride, tensor_stride):
    x = _tensor(low=-6, stride=tensor_stride, seed=k * stride)
    layer = _layer(k, stride=stride)
    y = layer(x)
    s_out = stride * tensor_stride
    assert y.stride == (s_out,) * 3
    coords = x.coords.to(torch.int64)
    expected_sites = sorted(brute_force_strided_coords(coords, s_out))
    assert y.coords.tolist() == [list(site) for site in expected_sites]  # sorted, unique
    expected = dense_conv_at_sites(coords, x.feats, _dense_weight(layer, k),
                                   y.coords.to(torch.int64), stride=stride,
                                   tensor_stride=tensor_stride)
    torch.testing.assert_close(y.feats, expected, atol=CONV_ATOL, rtol=CONV_RTOL)


@pytest.mark.parametrize(("k", "tensor_stride"), [(2, 1), (3, 1), (2, 2)])
def test_transposed_maps_back_onto_the_finer_sites(k, tensor_stride):
    x = _tensor(low=-6, stride=tensor_stride, seed=10 + k)
    down = _layer(k, stride=2)(x)
    coarse = down.replace(feats=torch.randn(len(down), C_IN))
    up = _layer(k, stride=2, transposed=True)
    y = up(coarse)
    assert y.coords is x.coords and y.stride == x.stride
    expected = dense_transposed_conv_at_sites(
        coarse.coords, coarse.feats, up.kernel.detach(), k, x.coords, stride=2,
        fine_stride=tensor_stride,
    )
    torch.testing.assert_close(y.feats, expected, atol=CONV_ATOL, rtol=CONV_RTOL)


def test_transposed_reuses_the_cached_strided_map():
    x = _tensor(seed=3)
    down = _layer(2, stride=2)(x)
    strided = x.cache.kernel_maps.get(KernelMapKey(ONES, (2, 2, 2), (2, 2, 2), ONES))
    _layer(2, c_in=C_OUT, stride=2, transposed=True)(down)
    up_map = x.cache.kernel_maps.get(KernelMapKey(ONES, (2, 2, 2), (2, 2, 2), ONES, True))
    assert up_map.in_rows is strided.out_rows and up_map.out_rows is strided.in_rows


def test_unet_down_up_returns_exactly_the_input_sites():
    x = _tensor(n=300, extent=14, seed=4)
    h1 = _layer(3, c_out=8)(x)
    h2 = _layer(2, c_in=8, c_out=8, stride=2)(h1)
    h3 = _layer(3, c_in=8, c_out=8, stride=2)(h2)
    assert h3.stride == (4, 4, 4)
    u2 = _layer(3, c_in=8, c_out=8, stride=2, transposed=True)(h3)
    assert u2.coords is h2.coords and u2.stride == (2, 2, 2)
    u1 = _layer(2, c_in=8, c_out=C_OUT, stride=2, transposed=True)(u2)
    assert u1.coords is x.coords and torch.equal(u1.coords, x.coords)


def test_transposed_stride_one_is_the_transpose_of_the_submanifold_map():
    x = _tensor(seed=6)
    layer = _layer(3, transposed=True)
    y = layer(x)
    expected = dense_transposed_conv_at_sites(x.coords, x.feats, layer.kernel.detach(), 3,
                                              x.coords, stride=1)
    torch.testing.assert_close(y.feats, expected, atol=CONV_ATOL, rtol=CONV_RTOL)


def test_layers_with_one_key_share_one_cached_map():
    x = _tensor(seed=7)
    y = _layer(3, c_out=C_IN, seed=1)(x)
    key = KernelMapKey(ONES, ONES, (3, 3, 3), ONES)
    first = x.cache.kernel_maps.get(key)
    _layer(3, seed=2)(y)
    assert len(x.cache.kernel_maps) == 1 and x.cache.kernel_maps.get(key) is first
    _layer(3, dilation=2)(y)
    assert len(x.cache.kernel_maps) == 2


def test_kernel_map_as_scipy_equals_the_dense_definition():
    x = _tensor(n=60, extent=6, seed=8)
    layer = _layer(3, stride=2)
    y = layer(x)
    kernel_map = x.cache.kernel_maps.get(KernelMapKey(ONES, (2, 2, 2), (3, 3, 3), ONES))
    matrices = kernel_map.to_scipy()
    for k, offset in enumerate(layer.kernel_offsets.tolist()):
        expected = dense_selection(x.coords, y.coords, offset, step=1)
        assert torch.equal(torch.from_numpy(matrices[k].toarray()), expected)
    feats, kernel = x.feats.numpy(), layer.kernel.detach().numpy()
    product = sum(s @ feats @ kernel[k] for k, s in enumerate(matrices))
    torch.testing.assert_close(y.feats.detach(), torch.from_numpy(product), atol=SCIPY_ATOL,
                               rtol=0)


@settings(max_examples=20, deadline=None)
@given(st.integers(0, 10_000), st.sampled_from(["subm", "strided", "up"]))
def test_row_order_does_not_change_results(seed, kind):
    x = _tensor(n=80, extent=7, low=-3, seed=seed)
    perm = torch.randperm(len(x), generator=torch.Generator().manual_seed(seed + 1))
    x_perm = SparseTensor(x.feats[perm], x.coords[perm])

    def run(tensor):
        if kind == "subm":
            return _layer(3)(tensor)
        down = _layer(3, c_out=C_IN, stride=2)(tensor)
        return down if kind == "strided" else _layer(3, stride=2, transposed=True)(down)

    out, out_perm = run(x), run(x_perm)
    if kind == "strided":  # output sites are sorted: the same rows
        assert torch.equal(out_perm.coords, out.coords)
        assert torch.equal(out_perm.feats, out.feats)
    else:
        assert torch.equal(out_perm.coords, out.coords[perm])
        assert torch.equal(out_perm.feats, out.feats[perm])


@settings(max_examples=15, deadline=None)
@given(st.integers(0, 10_000), st.sampled_from([1, 2, 3]), st.sampled_from([1, 2]))
def test_cached_map_equals_a_fresh_map(seed, k, stride):
    x = _tensor(n=80, extent=8, seed=seed)
    layer = _layer(k if stride == 1 or k >= stride else 2, stride=stride)
    first, second = layer(x), layer(x)  # miss, then hit
    fresh = layer(SparseTensor(x.feats, x.coords.clone()))
    assert torch.equal(first.feats, second.feats) and torch.equal(first.feats, fresh.feats)
    subm = x.cache.kernel_maps.get(KernelMapKey(ONES, ONES, (k,) * 3, ONES))
    if subm is not None:
        assert map_triples(subm) == map_triples(build_submanifold_map(x.coords, k))


def test_results_are_bitwise_identical_at_one_and_two_threads():
    x = _tensor(n=2000, extent=20, seed=9)
    layers = [_layer(3, c_out=8), _layer(2, c_in=8, c_out=8, stride=2),
              _layer(2, c_in=8, c_out=C_OUT, stride=2, transposed=True)]

    def run():
        out = x
        for layer in layers:
            out = layer(out)
        return out.feats

    previous = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        one = run()
        torch.set_num_threads(2)
        two = run()
    finally:
        torch.set_num_threads(previous)
    assert torch.equal(one, two)


def test_negative_coordinates_and_two_batch_items_stay_apart():
    coords = torch.tensor([[0, -1, -1, -1], [1, 0, 0, 0], [0, 0, 0, 0]], dtype=torch.int32)
    x = SparseTensor(torch.ones(3, 1), coords)
    layer = spnn.Conv3d(1, 1, kernel_size=3)
    torch.nn.init.ones_(layer.kernel)
    assert layer(x).feats.reshape(-1).tolist() == [2.0, 1.0, 2.0]  # batch 1 sees only itself


def test_errors_name_the_layer_and_the_fix():
    x = _tensor(seed=11, channels=16)
    with pytest.raises(ValueError, match=r"Conv3d\(32, 64, kernel_size=3\): expected 32 input "
                                         r"channels, got 16"):
        spnn.Conv3d(32, 64, kernel_size=3)(x)
    with pytest.raises(ValueError, match=r"Conv3d\(16, 8, kernel_size=1, stride=2\): .*dropped"):
        spnn.Conv3d(16, 8, kernel_size=1, stride=2)(x)
    coarse = SparseTensor(x.feats, x.coords * 2, stride=(2, 2, 2))  # made by hand: no finer sites
    with pytest.raises(ValueError, match=r"transposed=True\): .*cache has none"):
        spnn.Conv3d(16, 8, kernel_size=2, stride=2, transposed=True)(coarse)
    with pytest.raises(ValueError, match="input stride divisible"):
        spnn.Conv3d(16, 8, kernel_size=2, stride=2, transposed=True)(x)
    with pytest.raises(TypeError, match="share a dtype"):
        spnn.Conv3d(16, 8)(x.replace(feats=x.feats.double()))
    with pytest.raises(ValueError, match="kernel_size must be an int >= 1"):
        spnn.Conv3d(16, 8, kernel_size=0)
    with pytest.raises(ValueError, match="in_channels must be an int >= 1"):
        spnn.Conv3d(0, 8)
