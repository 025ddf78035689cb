"""The fused numba backend of sparse_conv against the dense reference; its determinism and
how a backend is chosen."""

import pytest
import torch

from edgeinfer import _jit
from edgeinfer.common_sparse import (
    build_strided_map,
    build_submanifold_map,
    fused,
    sparse_conv,
    transpose_kernel_map,
)
from edgeinfer.common_sparse.conv import BACKEND_ENV, resolve_backend
from edgeinfer.common_sparse.fused import block_pairs, kernel_for, tile_for
from tests.common_sparse.reference import (
    dense_conv_at_sites,
    dense_to_sparse_weight,
    loop_conv,
    map_triples,
    random_coords,
)
from tests.common_sparse.tolerances import CONV_ATOL, CONV_RTOL

pytestmark = pytest.mark.skipif(not _jit.available(), reason="numba is not installed")
C_IN = 6
WIDTHS = [3, 8, 16, 32, 48, 96]  # 3: the generic kernel; the others: each tile kernel
# (96: two tiles of 48 with AVX-512, six of 16 without)


def _inputs(n_rows, ndim, kernel_size, c_out, seed=0, dtype=torch.float32):
    gen = torch.Generator().manual_seed(seed)
    feats = torch.randn(n_rows, C_IN, generator=gen, dtype=dtype)
    weight = torch.randn(c_out, C_IN, *([kernel_size] * ndim), generator=gen, dtype=dtype)
    return feats, weight / (kernel_size**ndim * C_IN) ** 0.5


def _epilogue(n_out, c_out, seed, dtype=torch.float32):
    gen = torch.Generator().manual_seed(seed + 100)
    return (torch.randn(c_out, generator=gen, dtype=dtype),
            torch.randn(n_out, c_out, generator=gen, dtype=dtype))


def test_kernel_choice(monkeypatch):
    assert kernel_for(16) == "fused_conv_t16" and kernel_for(3) == kernel_for(12) == "fused_conv"
    monkeypatch.setattr(fused, "_widest_tile", lambda: 48)  # AVX-512: 32 vector registers
    assert [tile_for(c) for c in (8, 24, 32, 64, 96, 256, 20)] == [8, 8, 32, 32, 48, 32, None]
    monkeypatch.setattr(fused, "_widest_tile", lambda: 16)  # AVX2, NEON: tiles of at most 16
    assert [tile_for(c) for c in (8, 24, 32, 48, 96)] == [8, 8, 16, 16, 16]


def test_narrow_tiles_match_the_wide_ones(monkeypatch):
    """Where the host has no AVX-512 the same channels run in tiles of 16: the same sum."""
    coords = random_coords(600, 3, 14, seed=5)
    feats, weight = _inputs(len(coords), 3, 3, 96, seed=5)
    weight = dense_to_sparse_weight(weight)
    kernel_map = build_submanifold_map(coords, 3)
    bias, initial = _epilogue(len(coords), 96, 5)

    def run():
        return sparse_conv(feats, weight, kernel_map, kernel_map.n_out, bias=bias,
                           initial=initial, relu=True, backend="numba")  # fmt: skip

    monkeypatch.setattr(fused, "_widest_tile", lambda: 48)
    wide = run()
    monkeypatch.setattr(fused, "_widest_tile", lambda: 16)
    assert kernel_for(96) == "fused_conv_t16"
    assert torch.equal(run(), wide)  # tiles split channels, not the sum of any one element


@pytest.mark.parametrize(("c_out", "dtype"), [(c, torch.float32) for c in WIDTHS]
                         + [(c, torch.float64) for c in (3, 16)])  # float64: two kernels' compile
@pytest.mark.parametrize(("kernel_size", "dilation", "tensor_stride"),
                         [(3, 1, 1), (3, 2, 2), (2, 1, 1), (1, 1, 1), (5, 1, 1)])
def test_submanifold_with_bias_initial_relu_matches_dense(c_out, kernel_size, dilation,
                                                          tensor_stride, dtype):
    coords = random_coords(160, 3, 9, seed=kernel_size + c_out, low=-4)
    coords[:, 1:] *= tensor_stride
    feats, weight = _inputs(len(coords), 3, kernel_size, c_out, seed=c_out, dtype=dtype)
    kernel_map = build_submanifold_map(coords, kernel_size, dilation=dilation,
                                       tensor_stride=tensor_stride)  # fmt: skip
    bias, initial = _epilogue(len(coords), c_out, c_out, dtype)
    dense = dense_conv_at_sites(coords, feats, weight, coords, dilation=dilation,
                                tensor_stride=tensor_stride)  # fmt: skip
    sparse = dense_to_sparse_weight(weight)
    for extra, expected in (({}, dense), ({"bias": bias}, dense + bias),
                            ({"initial": initial, "bias": bias, "relu": True},
                             torch.relu(dense + bias + initial))):  # fmt: skip
        out = sparse_conv(feats, sparse, kernel_map, kernel_map.n_out, backend="numba", **extra)
        torch.testing.assert_close(out, expected, atol=CONV_ATOL, rtol=CONV_RTOL)


@pytest.mark.parametrize("c_out", WIDTHS)
@pytest.mark.parametrize(("kernel_size", "stride"), [(2, 2), (3, 2)])
def test_strided_and_transposed_match_dense_and_the_loop(c_out, kernel_size, stride):
    coords = random_coords(150, 3, 10, seed=c_out * stride, low=0, batches=1)
    feats, weight = _inputs(len(coords), 3, kernel_size, c_out, seed=2)
    down, out_coords = build_strided_map(coords, kernel_size, stride)
    sparse = dense_to_sparse_weight(weight)
    out = sparse_conv(feats, sparse, down, down.n_out, backend="numba")
    expected = dense_conv_at_sites(coords, feats, weight, out_coords, stride=stride)
    torch.testing.assert_close(out, expected, atol=CONV_ATOL, rtol=CONV_RTOL)
    up = transpose_kernel_map(down)
    coarse = torch.randn(down.n_out, C_IN, generator=torch.Generator().manual_seed(4))
    back = sparse_conv(coarse, sparse, up, up.n_out, backend="numba", relu=True)
    reference = torch.relu(loop_conv(coarse, sparse, map_triples(up), up.n_out))
    torch.testing.assert_close(back, reference, atol=CONV_ATOL, rtol=CONV_RTOL)


@pytest.mark.parametrize("c_out", [16, 5])
def test_the_backends_agree_and_each_is_deterministic(c_out):
    coords = random_coords(3000, 3, 24, seed=9)
    feats, weight = _inputs(len(coords), 3, 3, c_out, seed=9)
    weight = dense_to_sparse_weight(weight)
    kernel_map = build_submanifold_map(coords, 3)
    previous = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        one = sparse_conv(feats, weight, kernel_map, kernel_map.n_out, backend="numba")
        torch.set_num_threads(2)
        two = sparse_conv(feats, weight, kernel_map, kernel_map.n_out, backend="numba")
    finally:
        torch.set_num_threads(previous)
    assert torch.equal(one, two)  # one thread owns each output row, in a fixed order
    reference = sparse_conv(feats, weight, kernel_map, kernel_map.n_out, backend="torch")
    torch.testing.assert_close(one, reference, atol=CONV_ATOL, rtol=CONV_RTOL)
    perm = torch.randperm(len(coords), generator=torch.Generator().manual_seed(10))
    permuted = build_submanifold_map(coords[perm], 3)
    moved = sparse_conv(feats[perm], weight, permuted, permuted.n_out, backend="numba")
    assert torch.equal(moved, one[perm])  # the input row order changes nothing but the rows


def test_sites_without_pairs_get_the_start_and_nan_propagates():
    coords = random_coords(40, 3, 6, seed=1, low=0, batches=1)
    down, _ = build_strided_map(coords, 2, 2)
    up = transpose_kernel_map(down)
    feats = torch.randn(down.n_out, C_IN)
    feats[0, 0] = float("nan")
    weight = torch.randn(8, C_IN, 8)
    bias = torch.randn(8)
    out = sparse_conv(feats, weight, up, up.n_out, bias=bias, relu=True, backend="numba")
    reference = torch.relu(sparse_conv(feats, weight, up, up.n_out, bias=bias, backend="torch"))
    assert torch.equal(torch.isnan(out), torch.isnan(reference)) and bool(torch.isnan(out).any())
    finite = ~torch.isnan(reference)
    torch.testing.assert_close(out[finite], reference[finite], atol=CONV_ATOL, rtol=CONV_RTOL)
    empty = build_submanifold_map(torch.zeros(0, 4, dtype=torch.int32), 3)
    assert sparse_conv(torch.zeros(0, C_IN), torch.zeros(27, C_IN, 8), empty, 0,
                       backend="numba").shape == (0, 8)  # fmt: skip
    assert block_pairs(empty).start.tolist() == [0]


def test_backend_choice_env_and_gradients(monkeypatch):
    feats, weight = torch.randn(4, 16), torch.randn(27, 16, 16)
    assert resolve_backend(None, feats, weight, needs_grad=False) == "numba"
    assert resolve_backend(None, feats, weight, needs_grad=True) == "torch"  # autograd
    assert resolve_backend(None, feats, torch.randn(27, 16, 256), needs_grad=False) == "numba"
    assert resolve_backend(None, feats, torch.randn(27, 16, 20), needs_grad=False) == "torch"
    assert resolve_backend(None, feats.half(), weight.half(), needs_grad=False) == "torch"
    monkeypatch.setenv(BACKEND_ENV, "torch")
    assert resolve_backend(None, feats, weight, needs_grad=False) == "torch"
    assert resolve_backend("numba", feats, weight, needs_grad=False) == "numba"
    monkeypatch.setenv(BACKEND_ENV, "cuda")
    with pytest.raises(ValueError, match=r"\$EDGEINFER_BACKEND must be one of"):
        resolve_backend(None, feats, weight, needs_grad=False)
    with pytest.raises(ValueError, match="backend must be one of"):
        resolve_backend("fast", feats, weight, needs_grad=False)
    monkeypatch.delenv(BACKEND_ENV)
    monkeypatch.setenv(_jit.ENV, "0")
    assert resolve_backend(None, feats, weight, needs_grad=False) == "torch"
    with pytest.raises(ValueError, match="backend='numba' needs numba"):
        resolve_backend("numba", feats, weight, needs_grad=False)


def test_training_takes_the_torch_path_and_gets_gradients():
    coords = random_coords(200, 3, 8, seed=3)
    feats = torch.randn(len(coords), 16, requires_grad=True)
    weight = torch.randn(27, 16, 16, requires_grad=True)
    kernel_map = build_submanifold_map(coords, 3)
    out = sparse_conv(feats, weight, kernel_map, kernel_map.n_out, relu=True)
    out.sum().backward()
    assert feats.grad is not None and weight.grad is not None
    with torch.no_grad():
        fused = sparse_conv(feats, weight, kernel_map, kernel_map.n_out, relu=True)
    torch.testing.assert_close(fused, out.detach(), atol=CONV_ATOL, rtol=CONV_RTOL)


def test_block_pairs_group_every_pair_by_block_and_offset_in_map_order():
    coords = random_coords(700, 3, 12, seed=8)
    down, _ = build_strided_map(coords, 3, 2)
    for kernel_map in (build_submanifold_map(coords, 3), down, transpose_kernel_map(down)):
        pairs = block_pairs(kernel_map, block=32)
        volume = kernel_map.volume
        for b in range(-(-kernel_map.n_out // 32)):
            for k in range(volume):
                lo, hi = pairs.start[b * volume + k], pairs.start[b * volume + k + 1]
                out_rows, in_rows = kernel_map.out_rows[k], kernel_map.in_rows[k]
                inside = (out_rows // 32) == b
                assert pairs.target[lo:hi].tolist() == out_rows[inside].tolist()
                assert pairs.source[lo:hi].tolist() == in_rows[inside].tolist()
        assert pairs.start[-1] == sum(kernel_map.pair_counts())
