"""The fast paths of the core against the plain ones: windowed key search, tiling strided
maps, and the buffered no-grad convolution (bitwise equal to the autograd path)."""

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import edgeinfer.common_sparse.conv as conv_module
from edgeinfer.common_sparse import (
    CoordTable,
    KernelMap,
    build_strided_map,
    build_submanifold_map,
    kernel_offsets,
    key_layout,
    sparse_conv,
    transpose_kernel_map,
)
from edgeinfer.common_sparse.hashing import lookup_pairs, lookup_shifted
from tests.common_sparse.reference import (
    brute_force_pairs,
    brute_force_strided_coords,
    map_triples,
    random_coords,
)


def _pair_sets(pairs):
    return [set(zip(rows_in.tolist(), rows_out.tolist(), strict=True))
            for rows_in, rows_out in pairs]


def _hit_sets(found):
    return [{(int(row), q) for q, row in enumerate(rows.tolist()) if row >= 0} for rows in found]


@settings(max_examples=40, deadline=None)
@given(
    ndim=st.integers(1, 3),
    kernel_size=st.sampled_from([1, 2, 3, 5]),
    dilation=st.integers(1, 3),
    spacing=st.sampled_from([1, 2]),
    seed=st.integers(0, 10_000),
    same=st.booleans(),
)
def test_windowed_search_matches_the_sorted_lookup(ndim, kernel_size, dilation, spacing, seed,
                                                    same):
    coords = random_coords(60, ndim, 9, seed=seed, low=-4)
    coords[:, 1:] *= spacing
    queries = coords if same else random_coords(50, ndim, 9, seed=seed + 1, low=-4) * spacing
    steps = kernel_offsets(kernel_size, ndim) * dilation * spacing
    table = CoordTable.build(coords)
    expected = _hit_sets(lookup_shifted(table, coords, queries, steps, max_cells=0))
    # max_cells=0: no direct-address grid, so the windowed key search answers
    assert _pair_sets(lookup_pairs(table, coords, queries, steps, 0, spacing=spacing)) == expected
    assert _pair_sets(lookup_pairs(table, coords, queries, steps, 0)) == expected
    assert _pair_sets(lookup_pairs(table, coords, queries, steps)) == expected  # grid


@pytest.mark.parametrize(("same", "spacing", "kernel_size"),
                         [(True, 1, 3), (False, 1, 3), (True, 2, 3), (False, 2, 5), (True, 1, 2)])
def test_windowed_search_numba_walk_equals_the_numpy_merges(monkeypatch, same, spacing,
                                                            kernel_size):
    """The numba walk returns the very pairs, in the very order, of the numpy merges."""
    from edgeinfer import _jit

    if not _jit.available():
        pytest.skip("numba is not installed")
    coords = random_coords(400, 3, 14, seed=spacing, low=-6)
    coords[:, 1:] *= spacing
    queries = coords if same else random_coords(300, 3, 14, seed=9, low=-6) * spacing
    steps = kernel_offsets(kernel_size, 3) * spacing
    table = CoordTable.build(coords)
    walked = lookup_pairs(table, coords, queries, steps, 0, spacing=spacing)
    monkeypatch.setenv(_jit.ENV, "0")
    merged = lookup_pairs(table, coords, queries, steps, 0, spacing=spacing)
    assert sum(rows.numel() for rows, _ in walked) > len(queries)  # neighbours were found
    for (table_a, query_a), (table_b, query_b) in zip(walked, merged, strict=True):
        assert torch.equal(table_a, table_b) and torch.equal(query_a, query_b)


def test_windowed_search_falls_back_near_the_edge_of_the_key_range():
    top = key_layout(3).spatial_max
    coords = random_coords(40, 3, 5, seed=3, low=top - 4)
    steps = kernel_offsets(3, 3)
    table = CoordTable.build(coords)
    expected = _hit_sets(lookup_shifted(table, coords, coords, steps, max_cells=0))
    assert _pair_sets(lookup_pairs(table, coords, coords, steps, 0)) == expected


@pytest.mark.parametrize("max_grid_cells", [0, 1 << 22])
@pytest.mark.parametrize("ndim", [1, 2, 3])
def test_submanifold_map_without_grid_matches_brute_force(max_grid_cells, ndim):
    coords = random_coords(300, ndim, 12, seed=ndim, low=-6)
    kernel_map = build_submanifold_map(coords, 3, max_grid_cells=max_grid_cells)
    assert map_triples(kernel_map) == brute_force_pairs(coords, coords, 3, 1)
    wide = build_submanifold_map(coords * 2, 3, tensor_stride=2, dilation=2, max_grid_cells=0)
    assert map_triples(wide) == brute_force_pairs(coords * 2, coords * 2, 3, 4)


@pytest.mark.parametrize("ndim", [1, 2, 3])
@pytest.mark.parametrize("tensor_stride", [1, 2])
def test_tiling_strided_map_matches_brute_force(ndim, tensor_stride):
    coords = random_coords(200, ndim, 11, seed=5, low=-7)
    coords[:, 1:] *= tensor_stride
    down, out_coords = build_strided_map(coords, 2, 2, tensor_stride=tensor_stride)
    s_out = 2 * tensor_stride
    assert {tuple(row) for row in out_coords.tolist()} == brute_force_strided_coords(coords, s_out)
    assert out_coords.shape[0] == len(brute_force_strided_coords(coords, s_out))
    assert map_triples(down) == brute_force_pairs(coords, out_coords, 2, tensor_stride)
    assert sum(down.pair_counts()) == coords.shape[0]  # every input in exactly one pair
    up = transpose_kernel_map(down)
    assert (up.n_in, up.n_out) == (down.n_out, down.n_in)


def test_tiling_strided_map_rejects_duplicates():
    with pytest.raises(ValueError, match="unique coordinates"):
        build_strided_map(torch.tensor([[0, 1, 3], [0, 5, 2], [0, 1, 3]]), 2, 2)


def _conv_inputs(n_out_channels=7, seed=0):
    coords = random_coords(2500, 3, 20, seed=seed)
    gen = torch.Generator().manual_seed(seed)
    feats = torch.randn(len(coords), 6, generator=gen)
    weight = torch.randn(27, 6, n_out_channels, generator=gen)
    return coords, feats, weight


@pytest.mark.parametrize(("chunk_rows", "batch_rows"), [(7, 5), (64, 1000), (4096, 1 << 16)])
@pytest.mark.parametrize("max_group", [1, 4])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_no_grad_path_is_bitwise_the_autograd_path(monkeypatch, chunk_rows, batch_rows,
                                                   max_group, dtype):
    # small batch_rows: many output-row blocks; max_group 4: products of bmm-batched offsets
    monkeypatch.setattr(conv_module, "CHUNK_ROWS", chunk_rows)
    monkeypatch.setattr(conv_module, "BATCH_BYTES", batch_rows * 4 * 7)
    plan = conv_module.ConvPlan(group_ratio=0.5, max_group=max_group)
    coords, feats, weight = _conv_inputs()
    feats, weight = feats.to(dtype), weight.to(dtype)
    down = build_strided_map(coords, 3, 2)[0]
    for kernel_map in (build_submanifold_map(coords, 3), down, transpose_kernel_map(down)):
        k, rows = kernel_map.volume, feats[: kernel_map.n_in]
        with torch.no_grad():
            fast = sparse_conv(rows, weight[:k], kernel_map, kernel_map.n_out, plan)
            again = sparse_conv(rows, weight[:k], kernel_map, kernel_map.n_out, plan)  # cached
        slow = sparse_conv(rows, weight[:k].clone().requires_grad_(), kernel_map,
                           kernel_map.n_out, plan)
        reference = torch.zeros(kernel_map.n_out, weight.shape[2], dtype=torch.float64)
        for j in range(k):
            reference.index_add_(0, kernel_map.out_rows[j],
                                 rows[kernel_map.in_rows[j]].double() @ weight[j].double())
        assert torch.equal(fast, slow.detach())
        assert torch.equal(again, fast)
        torch.testing.assert_close(fast.double(), reference, atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("grad", [False, True])
def test_pairs_in_any_order_within_an_offset_give_the_same_bits(monkeypatch, grad):
    # maps built here list each offset's pairs by output row; a map whose pairs come in
    # another order (e.g. made by hand) must give the same sums, on every block size
    monkeypatch.setattr(conv_module, "BATCH_BYTES", 300 * 4 * 7)
    coords, feats, weight = _conv_inputs(seed=3)
    built = build_submanifold_map(coords, 3)
    gen = torch.Generator().manual_seed(8)
    shuffled = [torch.randperm(rows.numel(), generator=gen) for rows in built.in_rows]
    mixed = KernelMap(tuple(r[p] for r, p in zip(built.in_rows, shuffled, strict=True)),
                      tuple(r[p] for r, p in zip(built.out_rows, shuffled, strict=True)),
                      built.offsets, built.n_in, built.n_out)
    weight = weight.clone().requires_grad_(grad)
    with torch.set_grad_enabled(grad):
        # the centre offset is not recognised as the identity in the shuffled map: the
        # reference is the built map without its identity shortcut
        plain = KernelMap(tuple(r.clone() for r in built.in_rows), built.out_rows,
                          built.offsets, built.n_in, built.n_out)
        expected = sparse_conv(feats, weight, plain, built.n_out)
        got = sparse_conv(feats, weight, mixed, built.n_out)
    assert torch.equal(got, expected)


@pytest.mark.parametrize("grad", [False, True])
def test_output_rows_without_pairs_and_blocks_smaller_than_a_row(monkeypatch, grad):
    # rows 0-2 and 5 receive nothing, row 3 receives more pairs than a block holds
    monkeypatch.setattr(conv_module, "BATCH_BYTES", 2 * 4 * 3)  # 2 pair rows at 3 channels
    rows_in = (torch.tensor([0, 1]), torch.tensor([2, 0]), torch.tensor([1]))
    rows_out = (torch.tensor([3, 4]), torch.tensor([3, 4]), torch.tensor([3]))
    kernel_map = KernelMap(rows_in, rows_out, kernel_offsets(3, 1), 3, 6)
    gen = torch.Generator().manual_seed(2)
    feats = torch.randn(3, 2, generator=gen, dtype=torch.float64)
    weight = torch.randn(3, 2, 3, generator=gen, dtype=torch.float64).requires_grad_(grad)
    with torch.set_grad_enabled(grad):
        got = sparse_conv(feats, weight, kernel_map, 6)
    expected = torch.zeros(6, 3, dtype=torch.float64)
    for k in range(3):
        expected.index_add_(0, rows_out[k], feats[rows_in[k]] @ weight[k].detach())
    torch.testing.assert_close(got.detach(), expected)
    assert not got[[0, 1, 2, 5]].any()


def test_half_precision_no_grad_path_matches_autograd_path():
    coords, feats, weight = _conv_inputs()
    feats, weight = feats.to(torch.bfloat16), weight.to(torch.bfloat16)
    kernel_map = build_submanifold_map(coords, 3)
    with torch.no_grad():
        fast = sparse_conv(feats, weight, kernel_map, kernel_map.n_out)
    slow = sparse_conv(feats, weight.clone().requires_grad_(), kernel_map, kernel_map.n_out)
    assert fast.dtype == torch.bfloat16
    assert torch.equal(fast, slow.detach())


def test_no_grad_path_is_bitwise_identical_at_one_and_two_threads():
    coords, feats, weight = _conv_inputs(n_out_channels=32, seed=4)
    feats = torch.randn(len(coords), 32, generator=torch.Generator().manual_seed(1))
    weight = torch.randn(27, 32, 32, generator=torch.Generator().manual_seed(2))
    kernel_map = build_submanifold_map(coords, 3, max_grid_cells=0)
    down, _ = build_strided_map(coords, 2, 2)
    previous = torch.get_num_threads()
    results = []
    try:
        for threads in (1, 2):
            torch.set_num_threads(threads)
            with torch.no_grad():
                results.append((sparse_conv(feats, weight, kernel_map, kernel_map.n_out),
                                sparse_conv(feats, weight[:8], down, down.n_out)))
    finally:
        torch.set_num_threads(previous)
    assert all(torch.equal(a, b) for a, b in zip(*results, strict=True))


def test_windowed_map_build_is_identical_at_one_and_two_threads():
    # the per-column merges run on a thread pool at 2 threads; pairs must not change
    coords = random_coords(3000, 3, 30, seed=9, low=-15)
    previous = torch.get_num_threads()
    maps = []
    try:
        for threads in (1, 2):
            torch.set_num_threads(threads)
            maps.append((build_submanifold_map(coords, 3, max_grid_cells=0),
                         build_strided_map(coords, 3, 2, max_grid_cells=0)[0]))
    finally:
        torch.set_num_threads(previous)
    for one, two in zip(*maps, strict=True):
        for a, b in zip(one.in_rows + one.out_rows, two.in_rows + two.out_rows, strict=True):
            assert torch.equal(a, b)


@pytest.mark.parametrize("strided", [False, True], ids=["submanifold", "strided"])
def test_bias_and_initial_start_the_output(strided):
    coords, feats, weight = _conv_inputs(seed=5)
    kernel_map = build_strided_map(coords, 2, 2)[0] if strided else build_submanifold_map(coords, 3)
    weight = weight[: kernel_map.volume]
    gen = torch.Generator().manual_seed(6)
    bias = torch.randn(weight.shape[2], generator=gen)
    initial = torch.randn(kernel_map.n_out, weight.shape[2], generator=gen)
    kept = initial.clone()
    with torch.no_grad():
        plain = sparse_conv(feats, weight, kernel_map, kernel_map.n_out)
        fast = sparse_conv(feats, weight, kernel_map, kernel_map.n_out, bias=bias, initial=initial)
    slow = sparse_conv(feats, weight.clone().requires_grad_(), kernel_map, kernel_map.n_out,
                       bias=bias, initial=initial)
    torch.testing.assert_close(fast, plain + bias + initial, atol=1e-5, rtol=1e-5)
    assert torch.equal(fast, slow.detach())  # same start, same order on both paths
    assert torch.equal(initial, kept)  # the initial tensor is not written


def test_bad_bias_or_initial_is_rejected_by_name():
    coords, feats, weight = _conv_inputs()
    kernel_map = build_submanifold_map(coords, 3)
    n = kernel_map.n_out
    with pytest.raises(ValueError, match=r"bias must have shape \(7,\)"):
        sparse_conv(feats, weight, kernel_map, n, bias=torch.zeros(3))
    with pytest.raises(ValueError, match="initial must have shape"):
        sparse_conv(feats, weight, kernel_map, n, initial=torch.zeros(n + 1, 7))
    with pytest.raises(TypeError, match="initial must be a torch\\.Tensor of the features' dtype"):
        sparse_conv(feats, weight, kernel_map, n, initial=torch.zeros(n, 7, dtype=torch.float64))
