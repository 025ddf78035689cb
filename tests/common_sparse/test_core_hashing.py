"""CoordTable against a python dict; out-of-range queries never alias."""

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from edgeinfer.common_sparse import CoordTable, key_layout
from edgeinfer.common_sparse.hashing import lookup_shifted
from tests.common_sparse.reference import random_coords

small = st.tuples(st.integers(0, 2), st.integers(-6, 6), st.integers(-6, 6))


@settings(max_examples=60, deadline=None)
@given(st.lists(small, unique=True, max_size=40), st.lists(small, max_size=40))
def test_query_matches_python_dict(table_rows, query_rows):
    table = CoordTable.build(torch.tensor(table_rows, dtype=torch.int64).reshape(-1, 3))
    where = {row: i for i, row in enumerate(table_rows)}
    rows = table.query(torch.tensor(query_rows, dtype=torch.int64).reshape(-1, 3))
    assert rows.tolist() == [where.get(row, -1) for row in query_rows]
    assert len(table) == len(table_rows)


def test_duplicates_in_table_are_an_error():
    coords = torch.tensor([[0, 1, 2], [0, 3, 4], [0, 1, 2]])
    with pytest.raises(ValueError, match=r"unique coordinates; row 2 \[0, 1, 2\].*unique_coords"):
        CoordTable.build(coords)


def test_out_of_range_query_reports_absent_instead_of_aliasing():
    layout = key_layout(3)
    # (y=0, z=max+1) would carry into the y field of the packed key and alias (y=1, z=min)
    alias = [0, 0, 1, layout.spatial_min]
    table = CoordTable.build(torch.tensor([alias, [0, 0, 0, layout.spatial_max]]))
    query = torch.tensor([[0, 0, 0, layout.spatial_max + 1], alias])
    assert table.query(query).tolist() == [-1, 0]
    edge = torch.tensor([[0, 0, 0, layout.spatial_max]])
    assert table.query(edge, offset=[0, 0, 1]).tolist() == [-1]
    assert table.query(edge - torch.tensor([0, 0, 0, 1]), offset=[0, 0, 1]).tolist() == [1]


def test_empty_table_and_empty_query():
    empty = CoordTable.build(torch.zeros(0, 3, dtype=torch.int64))
    assert empty.query(torch.tensor([[0, 1, 1]])).tolist() == [-1]
    table = CoordTable.build(torch.tensor([[0, 1, 1]]))
    assert table.query(torch.zeros(0, 3, dtype=torch.int64)).shape == (0,)


def test_query_with_different_ndim_is_an_error():
    table = CoordTable.build(torch.tensor([[0, 1, 1]]))
    with pytest.raises(ValueError, match="D=3 spatial columns but the table was built with D=2"):
        table.query(torch.tensor([[0, 1, 1, 1]]))


@pytest.mark.parametrize("ndim", [1, 2, 3])
@pytest.mark.parametrize("near_edge", [False, True])
def test_grid_and_sorted_lookup_agree_with_dict(ndim, near_edge):
    low = key_layout(ndim).spatial_max - 9 if near_edge else -4
    coords = random_coords(60, ndim, 8, seed=ndim, low=low + 2)
    queries = random_coords(40, ndim, 10, seed=7, low=low)  # up to the edge of the range
    steps = torch.tensor([[-2] * ndim, [0] * ndim, [1] * ndim, [3] + [0] * (ndim - 1)])
    table = CoordTable.build(coords)
    where = {tuple(row): i for i, row in enumerate(coords.tolist())}
    expected = [
        [where.get((q[0], *[v + s for v, s in zip(q[1:], step, strict=True)]), -1)
         for q in queries.tolist()]
        for step in steps.tolist()
    ]
    for max_cells in (0, 1 << 22):
        found = lookup_shifted(table, coords, queries, steps, max_cells)
        assert [rows.tolist() for rows in found] == expected
