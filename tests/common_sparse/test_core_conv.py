"""sparse_conv against dense convNd, a python loop and scipy; determinism properties."""

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from edgeinfer.common_sparse import (
    ConvPlan,
    build_strided_map,
    build_submanifold_map,
    plan_offset_groups,
    sparse_conv,
    transpose_kernel_map,
)
from tests.common_sparse.reference import (
    dense_conv_at_sites,
    dense_to_sparse_weight,
    loop_conv,
    map_triples,
    random_coords,
)
from tests.common_sparse.tolerances import CONV_ATOL, CONV_RTOL, GRAD_ATOL, SCIPY_ATOL

C_IN, C_OUT = 5, 3


def _inputs(n_rows, ndim, kernel_size, seed=0, dtype=torch.float32):
    gen = torch.Generator().manual_seed(seed)
    feats = torch.randn(n_rows, C_IN, generator=gen, dtype=dtype)
    volume = kernel_size**ndim
    weight = torch.randn(C_OUT, C_IN, *([kernel_size] * ndim), generator=gen, dtype=dtype)
    return feats, weight / (volume * C_IN) ** 0.5


SUBM_CASES = [  # (ndim, kernel_size, dilation, tensor_stride)
    (1, 3, 1, 1), (1, 5, 2, 1), (2, 3, 1, 1), (2, 2, 1, 2), (2, 3, 2, 2),
    (3, 3, 1, 1), (3, 3, 1, 4), (3, 2, 1, 1), (3, 1, 1, 1), (3, 5, 1, 1),
]


@pytest.mark.parametrize(("ndim", "kernel_size", "dilation", "tensor_stride"), SUBM_CASES)
def test_submanifold_conv_matches_dense_conv_at_active_sites(ndim, kernel_size, dilation,
                                                             tensor_stride):
    coords = random_coords(150, ndim, 10, seed=ndim + kernel_size, low=-5)
    coords[:, 1:] *= tensor_stride
    feats, weight = _inputs(len(coords), ndim, kernel_size)
    kernel_map = build_submanifold_map(
        coords, kernel_size, dilation=dilation, tensor_stride=tensor_stride
    )
    out = sparse_conv(feats, dense_to_sparse_weight(weight), kernel_map, kernel_map.n_out)
    expected = dense_conv_at_sites(coords, feats, weight, coords, dilation=dilation,
                                   tensor_stride=tensor_stride)
    torch.testing.assert_close(out, expected, atol=CONV_ATOL, rtol=CONV_RTOL)


STRIDED_CASES = [  # (ndim, kernel_size, stride, tensor_stride)
    (1, 2, 2, 1), (1, 3, 2, 1), (2, 2, 2, 1), (2, 3, 2, 2), (2, 5, 3, 1),
    (3, 2, 2, 1), (3, 3, 2, 1), (3, 2, 2, 2),
]


@pytest.mark.parametrize(("ndim", "kernel_size", "stride", "tensor_stride"), STRIDED_CASES)
def test_strided_conv_matches_dense_strided_conv(ndim, kernel_size, stride, tensor_stride):
    coords = random_coords(150, ndim, 11, seed=ndim * stride, low=-6)
    coords[:, 1:] *= tensor_stride
    feats, weight = _inputs(len(coords), ndim, kernel_size, seed=1)
    kernel_map, out_coords = build_strided_map(
        coords, kernel_size, stride, tensor_stride=tensor_stride
    )
    out = sparse_conv(feats, dense_to_sparse_weight(weight), kernel_map, kernel_map.n_out)
    expected = dense_conv_at_sites(coords, feats, weight, out_coords, stride=stride,
                                   tensor_stride=tensor_stride)
    torch.testing.assert_close(out, expected, atol=CONV_ATOL, rtol=CONV_RTOL)


def test_transposed_conv_matches_loop_and_dense_conv_transpose():
    coords = random_coords(120, 3, 8, seed=5, low=0, batches=1)
    down, out_coords = build_strided_map(coords, 2, 2)
    up = transpose_kernel_map(down)
    feats, _ = _inputs(len(out_coords), 3, 2, seed=2)
    weight = torch.randn(8, C_IN, C_OUT, generator=torch.Generator().manual_seed(3))
    out = sparse_conv(feats, weight, up, up.n_out)
    torch.testing.assert_close(out, loop_conv(feats, weight, map_triples(up), up.n_out),
                               atol=CONV_ATOL, rtol=CONV_RTOL)
    # dense: conv_transpose3d(stride 2) puts x[j] @ W_d at 2 j + d, the same as the map
    dense = torch.zeros(1, C_IN, 5, 5, 5)
    half = out_coords[:, 1:] // 2
    dense[0, :, half[:, 0], half[:, 1], half[:, 2]] = feats.T
    dense_weight = weight.reshape(2, 2, 2, C_IN, C_OUT).permute(3, 4, 0, 1, 2)
    full = torch.nn.functional.conv_transpose3d(dense, dense_weight, stride=2)[0]
    expected = full[:, coords[:, 1], coords[:, 2], coords[:, 3]].T
    torch.testing.assert_close(out, expected, atol=CONV_ATOL, rtol=CONV_RTOL)


@pytest.mark.parametrize("strided", [False, True])
def test_scipy_selection_matrices_reproduce_sparse_conv(strided):
    coords = random_coords(100, 2, 9, seed=4, low=-4)
    kernel_map = build_strided_map(coords, 3, 2)[0] if strided else build_submanifold_map(coords, 3)
    feats, weight = _inputs(len(coords), 2, 3, seed=6)
    weight = dense_to_sparse_weight(weight)
    out = sparse_conv(feats, weight, kernel_map, kernel_map.n_out)
    x, w = feats.numpy(), weight.numpy()
    expected = sum(s @ x @ w[k] for k, s in enumerate(kernel_map.to_scipy()))
    torch.testing.assert_close(out, torch.from_numpy(expected).float(), atol=SCIPY_ATOL, rtol=0)


@settings(max_examples=25, deadline=None)
@given(st.integers(1, 3), st.integers(0, 10_000), st.sampled_from(["subm", "strided"]))
def test_input_row_order_does_not_change_results(ndim, seed, kind):
    coords = random_coords(80, ndim, 7, seed=seed, low=-3)
    feats, weight = _inputs(len(coords), ndim, 3, seed=seed)
    weight = dense_to_sparse_weight(weight)
    perm = torch.randperm(len(coords), generator=torch.Generator().manual_seed(seed + 1))

    def run(c, f):
        if kind == "subm":
            kernel_map = build_submanifold_map(c, 3)
            return sparse_conv(f, weight, kernel_map, kernel_map.n_out)
        kernel_map, _ = build_strided_map(c, 3, 2)  # out coords are sorted: same order
        return sparse_conv(f, weight, kernel_map, kernel_map.n_out)

    out, out_perm = run(coords, feats), run(coords[perm], feats[perm])
    assert torch.equal(out_perm, out[perm] if kind == "subm" else out)


def test_results_are_bitwise_identical_at_one_and_two_threads():
    coords = random_coords(3000, 3, 24, seed=9)
    feats, weight = _inputs(len(coords), 3, 3, seed=9)
    weight = dense_to_sparse_weight(weight)
    kernel_map = build_submanifold_map(coords, 3)
    previous = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        one = sparse_conv(feats, weight, kernel_map, kernel_map.n_out)
        torch.set_num_threads(2)
        two = sparse_conv(feats, weight, kernel_map, kernel_map.n_out)
    finally:
        torch.set_num_threads(previous)
    assert torch.equal(one, two)


@pytest.mark.parametrize("plan", [ConvPlan(max_group=32), ConvPlan(group_ratio=0.1, max_group=4)])
def test_batched_offsets_match_one_gemm_per_offset(plan):
    coords = random_coords(800, 3, 14, seed=2)
    feats, weight = _inputs(len(coords), 3, 3, seed=2)
    weight = dense_to_sparse_weight(weight)
    kernel_map = build_submanifold_map(coords, 3)
    assert any(len(group) > 1 for group in plan_offset_groups(kernel_map.pair_counts(), plan))
    reference = sparse_conv(feats, weight, kernel_map, kernel_map.n_out, ConvPlan())
    batched = sparse_conv(feats, weight, kernel_map, kernel_map.n_out, plan)
    torch.testing.assert_close(batched, reference, atol=CONV_ATOL, rtol=CONV_RTOL)


def test_plan_groups_similar_counts_largest_first():
    groups = plan_offset_groups([10, 0, 100, 95, 9, 60], ConvPlan(group_ratio=0.9, max_group=8))
    assert groups == [[2, 3], [5], [0, 4]]
    with pytest.raises(ValueError, match="group_ratio must be in"):
        ConvPlan(group_ratio=0.0)


def test_autograd_matches_the_loop_reference():
    coords = random_coords(40, 2, 6, seed=3)
    kernel_map, _ = build_strided_map(coords, 3, 2)
    feats, weight = _inputs(len(coords), 2, 3, seed=3, dtype=torch.float64)
    weight = dense_to_sparse_weight(weight)
    grads = []
    for fn in (
        lambda f, w: sparse_conv(f, w, kernel_map, kernel_map.n_out),
        lambda f, w: loop_conv(f, w, map_triples(kernel_map), kernel_map.n_out),
    ):
        f, w = feats.clone().requires_grad_(), weight.clone().requires_grad_()
        (fn(f, w) ** 2).sum().backward()
        grads.append((f.grad, w.grad))
    torch.testing.assert_close(grads[0], grads[1], atol=GRAD_ATOL, rtol=0)


def test_empty_input_and_single_point():
    empty = build_submanifold_map(torch.zeros(0, 4, dtype=torch.int64), 3)
    weight = torch.randn(27, C_IN, C_OUT)
    assert sparse_conv(torch.zeros(0, C_IN), weight, empty, 0).shape == (0, C_OUT)
    one = build_submanifold_map(torch.tensor([[0, 3, -2, 1]]), 3)
    feats = torch.randn(1, C_IN)
    assert torch.equal(sparse_conv(feats, weight, one, 1), feats @ weight[13])


def test_bad_arguments_raise_with_the_fix():
    kernel_map = build_submanifold_map(random_coords(10, 3, 5), 3)
    n = kernel_map.n_in
    feats, weight = torch.randn(n, C_IN), torch.randn(27, C_IN, C_OUT)
    with pytest.raises(ValueError, match=r"weight must have shape \(K=27, C_in=5, C_out\)"):
        sparse_conv(feats, torch.randn(9, C_IN, C_OUT), kernel_map, n)
    with pytest.raises(ValueError, match=f"got feats with {n} rows and n_out={n + 1}"):
        sparse_conv(feats, weight, kernel_map, n + 1)
    with pytest.raises(TypeError, match="share a dtype"):
        sparse_conv(feats.double(), weight, kernel_map, n)
    with pytest.raises(TypeError, match="floating"):
        sparse_conv(feats.long(), weight, kernel_map, n)
    with pytest.raises(TypeError, match="must be a KernelMap"):
        sparse_conv(feats, weight, "map", n)
