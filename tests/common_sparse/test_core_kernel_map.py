"""Kernel maps against brute-force python loops over a dict of coordinates."""

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from edgeinfer.common_sparse import (
    KernelMap,
    build_strided_map,
    build_submanifold_map,
    kernel_offsets,
    key_layout,
    transpose_kernel_map,
)
from tests.common_sparse.reference import (
    brute_force_pairs,
    brute_force_strided_coords,
    map_triples,
    random_coords,
)


@st.composite
def scenes(draw):
    ndim = draw(st.integers(1, 3))
    tensor_stride = draw(st.sampled_from([1, 2]))
    n = draw(st.integers(0, 40))
    seed = draw(st.integers(0, 10_000))
    low = draw(st.integers(-8, 4))
    coords = random_coords(n, ndim, 8, seed=seed, low=low)
    coords[:, 1:] *= tensor_stride
    return coords, tensor_stride


def test_kernel_offsets_are_centred_for_odd_and_start_at_zero_for_even():
    assert kernel_offsets(3, 1).reshape(-1).tolist() == [-1, 0, 1]
    assert kernel_offsets(2, 2).tolist() == [[0, 0], [0, 1], [1, 0], [1, 1]]
    assert kernel_offsets(3, 3).shape == (27, 3)
    assert kernel_offsets((3, 1), 2).tolist() == [[-1, 0], [0, 0], [1, 0]]
    with pytest.raises(ValueError, match=r"kernel_size must be an int >= 1 or a tuple of 2"):
        kernel_offsets((3, 3, 3), 2)
    with pytest.raises(ValueError, match="ndim must be 1, 2 or 3"):
        kernel_offsets(3, 4)


@settings(max_examples=40, deadline=None)
@given(scenes(), st.sampled_from([1, 2, 3]), st.sampled_from([1, 2]))
def test_submanifold_map_matches_brute_force(scene, kernel_size, dilation):
    coords, tensor_stride = scene
    kernel_map = build_submanifold_map(
        coords, kernel_size, dilation=dilation, tensor_stride=tensor_stride
    )
    assert kernel_map.n_in == kernel_map.n_out == len(coords)
    expected = brute_force_pairs(coords, coords, kernel_size, dilation * tensor_stride)
    assert map_triples(kernel_map) == expected
    for rows in kernel_map.out_rows:
        assert len(set(rows.tolist())) == rows.numel()  # one input per output per offset


@settings(max_examples=40, deadline=None)
@given(scenes(), st.sampled_from([(2, 2), (3, 2), (3, 1), (4, 3), (5, 3)]))
def test_strided_map_matches_brute_force_and_drops_no_site(scene, kernel_and_stride):
    coords, tensor_stride = scene
    kernel_size, stride = kernel_and_stride
    kernel_map, out_coords = build_strided_map(
        coords, kernel_size, stride, tensor_stride=tensor_stride
    )
    s_out = stride * tensor_stride
    assert {tuple(row) for row in out_coords.tolist()} == brute_force_strided_coords(coords, s_out)
    assert out_coords.tolist() == sorted(out_coords.tolist())
    expected = brute_force_pairs(coords, out_coords, kernel_size, tensor_stride)
    assert map_triples(kernel_map) == expected
    used = set(torch.cat([*kernel_map.in_rows, torch.empty(0, dtype=torch.int64)]).tolist())
    assert used == set(range(len(coords)))  # every input reaches an output


@pytest.mark.parametrize("ndim", [1, 2, 3])
def test_kernel_two_stride_two_tiles_exactly(ndim):
    coords = random_coords(200, ndim, 9, seed=ndim, low=-4)
    kernel_map, out_coords = build_strided_map(coords, 2, 2)
    rows = torch.cat(kernel_map.in_rows)
    assert sorted(rows.tolist()) == list(range(len(coords)))  # each input exactly once
    for rows_in, rows_out in zip(kernel_map.in_rows, kernel_map.out_rows, strict=True):
        parents = torch.div(coords[rows_in, 1:], 2, rounding_mode="floor") * 2
        assert torch.equal(parents, out_coords[rows_out, 1:])


def test_negative_coordinates_floor_towards_minus_infinity():
    coords = torch.tensor([[0, -1, -3], [0, -2, -4], [0, 1, 0]])
    _, out_coords = build_strided_map(coords, 2, 2)
    assert out_coords.tolist() == [[0, -2, -4], [0, 0, 0]]


def test_transposed_map_swaps_rows_and_matches_brute_force():
    coords = random_coords(60, 3, 6, seed=3, low=-3)
    down, out_coords = build_strided_map(coords, 3, 2)
    up = transpose_kernel_map(down)
    assert (up.n_in, up.n_out, up.transposed) == (down.n_out, down.n_in, True)
    expected = {(k, o, i) for k, i, o in brute_force_pairs(coords, out_coords, 3, 1)}
    assert map_triples(up) == expected
    assert map_triples(transpose_kernel_map(up)) == map_triples(down)


def test_combinations_that_would_drop_sites_are_rejected():
    coords = random_coords(10, 2, 8)
    with pytest.raises(ValueError, match=r"cannot reach input offsets \[1\].*would be dropped"):
        build_strided_map(coords, 1, 2)
    with pytest.raises(ValueError, match="dilation 1"):
        build_strided_map(coords, 3, 2, dilation=2)
    with pytest.raises(ValueError, match=r"kernel_size >= stride"):
        build_strided_map(coords, 3, 3)


def test_coords_must_be_multiples_of_tensor_stride():
    coords = torch.tensor([[0, 2, 4], [0, 3, 4]])
    with pytest.raises(ValueError, match=r"multiples of it; row 1 is \[0, 3, 4\]"):
        build_submanifold_map(coords, 3, tensor_stride=2)


def test_duplicate_coords_are_rejected_by_builders():
    with pytest.raises(ValueError, match="unique coordinates"):
        build_submanifold_map(torch.tensor([[0, 1], [0, 1]]), 3)


@pytest.mark.parametrize("max_grid_cells", [0, 1 << 22])
def test_maps_at_the_edge_of_the_key_range(max_grid_cells):
    top = key_layout(2).spatial_max
    coords = random_coords(30, 2, 5, seed=1, low=top - 4)
    kernel_map = build_submanifold_map(coords, 3, max_grid_cells=max_grid_cells)
    assert map_triples(kernel_map) == brute_force_pairs(coords, coords, 3, 1)
    bottom = key_layout(2).spatial_min
    coords = random_coords(30, 2, 5, seed=2, low=bottom)
    down, out_coords = build_strided_map(coords, 3, 2, max_grid_cells=max_grid_cells)
    assert map_triples(down) == brute_force_pairs(coords, out_coords, 3, 1)


def test_empty_and_single_point_maps():
    empty = build_submanifold_map(torch.zeros(0, 4, dtype=torch.int64), 3)
    assert (empty.n_in, empty.n_out, sum(empty.pair_counts())) == (0, 0, 0)
    down, out_coords = build_strided_map(torch.zeros(0, 3, dtype=torch.int64), 2, 2)
    assert down.n_out == 0 and out_coords.shape == (0, 3)
    one = build_submanifold_map(torch.tensor([[0, 5, -5, 7]]), 3)
    assert one.pair_counts() == [0] * 13 + [1] + [0] * 13


def test_kernel_map_validates_its_fields():
    rows = torch.zeros(2, dtype=torch.int64)
    with pytest.raises(ValueError, match="one \\(in_rows, out_rows\\) pair per offset"):
        KernelMap((rows,), (rows,), kernel_offsets(3, 1), 2, 2)
    with pytest.raises(TypeError, match="must be int64"):
        KernelMap((rows.int(),), (rows,), kernel_offsets(1, 1), 2, 2)
