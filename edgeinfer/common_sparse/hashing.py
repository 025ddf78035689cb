"""A vectorised coordinate lookup table: build once, query many times.

The table holds the packed int64 keys (``coords.pack_coords``) of its ``N`` rows sorted, plus
the permutation back to row numbers. A query packs its coordinates and binary-searches them
(``torch.searchsorted``): building costs ``O(N log N)``, a query of ``M`` coordinates
``O(M log N)``, memory ``2 N`` int64. No hashing collisions exist: keys are exact.

Coordinates the key layout cannot hold (e.g. a kernel offset stepping past the range) are never
packed; they are simply reported absent (``-1``).

``lookup_shifted`` answers the kernel-map question "which row sits at ``query + step`` for each
of K steps". When the bounding box of table and shifted queries is small (at most
``max_cells`` cells) it uses a direct-address grid: ``O(box)`` to build, ``O(1)`` per lookup;
otherwise the sorted-key table. Both give identical answers (exact lookups).

``lookup_pairs`` returns the same hits as ``(table_rows, query_rows)`` pairs, what kernel maps
need. Without the grid it visits the queries in key order and locates each query once per
*column* of steps (steps equal but for the last axis: 9 for a 3x3x3 kernel, 5 with the
sub-manifold symmetry) instead of once per step: the last-axis neighbours of a key sit in a
short window of the sorted table right after the first of them. Locating sorted queries in
the sorted table is a linear merge (a stable sort of two sorted runs), not binary searches.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from .. import _jit
from ._threads import parallel_map
from .coords import (
    _check_range,
    _pack_unchecked,
    coords_in_range,
    key_layout,
    offset_keys,
    validate_coords,
)

__all__ = ["DEFAULT_MAX_GRID_CELLS", "MAX_WINDOW", "CoordTable", "lookup_pairs", "lookup_shifted"]

DEFAULT_MAX_GRID_CELLS = 1 << 22  # 16 MiB of int32 rows
MAX_WINDOW = 9  # widest key window per column of the windowed search (else one search a step)


def _argsort_keys(keys: np.ndarray) -> np.ndarray:
    """Permutation sorting int64 ``keys`` ascending (ties, if any, keep their order).

    Coordinates usually arrive sorted already (``unique_coords``, strided outputs): that case
    costs one comparison pass; otherwise a stable sort.
    """
    if keys.size < 2 or bool((keys[1:] > keys[:-1]).all()):
        return np.arange(keys.size, dtype=np.int64)
    return np.argsort(keys, kind="stable").astype(np.int64, copy=False)


def _merge_positions(sorted_keys: np.ndarray, needles: np.ndarray) -> np.ndarray:
    """``np.searchsorted(sorted_keys, needles, side="left")`` for *ascending* ``needles``.

    A stable argsort of the two concatenated sorted runs is a single linear merge (numpy's
    stable sort detects runs), about 3-5x cheaper than one binary search per needle here.
    Needles go first, so a needle sorts before an equal key: its merged rank minus its own
    index counts the keys strictly below it.
    """
    order = np.argsort(np.concatenate([needles, sorted_keys]), kind="stable")
    return np.flatnonzero(order < needles.size) - np.arange(needles.size)


@dataclass(frozen=True, eq=False)
class CoordTable:
    """Sorted keys of a coordinate set and their rows; build with ``CoordTable.build``.

    Attributes:
        sorted_keys: ``(N,)`` int64 keys in ascending order.
        rows: ``(N,)`` int64, ``rows[j]`` is the table row holding ``sorted_keys[j]``.
        ndim: number of spatial dimensions D.
        low / high: ``(1+D,)`` int64 per-column min / max of the table's coordinates.
    """

    sorted_keys: torch.Tensor
    rows: torch.Tensor
    ndim: int
    low: torch.Tensor
    high: torch.Tensor

    @classmethod
    def build(cls, coords: Any) -> CoordTable:
        """Index ``coords (N, 1+D)`` (integer, unique rows).

        Raises:
            TypeError / ValueError: bad coords (see ``pack_coords``).
            ValueError: a coordinate occurs twice (merge duplicates with ``unique_coords``).
        """
        coords = validate_coords(coords)
        low, high = _check_range(coords, "coords")
        keys = _pack_unchecked(coords)
        rows_np = _argsort_keys(keys.numpy())
        rows = torch.from_numpy(rows_np)
        sorted_keys = torch.from_numpy(keys.numpy()[rows_np])
        if sorted_keys.numel() > 1:
            repeated = sorted_keys[1:] == sorted_keys[:-1]
            if bool(repeated.any()):
                first = int(rows[1:][repeated][0])
                raise ValueError(
                    f"CoordTable.build needs unique coordinates; row {first} "
                    f"{coords[first].tolist()} occurs more than once "
                    f"({int(repeated.sum())} duplicate rows). Merge duplicates first with "
                    "unique_coords (and reduce their features by the inverse index)"
                )
        return cls(sorted_keys, rows, coords.shape[1] - 1, low, high)

    def __len__(self) -> int:
        return int(self.sorted_keys.numel())

    def query(self, coords: Any, offset: Any = None) -> torch.Tensor:
        """Rows of ``coords (M, 1+D)`` (shifted by ``offset (D,)`` if given); ``-1`` if absent.

        Returns ``(M,)`` int64. Coordinates outside the key range are absent, never aliased.

        Raises:
            TypeError / ValueError: bad coords, or a different D than the table.
        """
        coords = validate_coords(coords, "query coords")
        self._check_ndim(coords.shape[1] - 1)
        if offset is not None:
            shift = torch.as_tensor(offset, dtype=torch.int64).reshape(-1)
            if shift.numel() != self.ndim:
                raise ValueError(f"offset must have D={self.ndim} entries; got {shift.tolist()}")
            coords = coords + torch.cat([shift.new_zeros(1), shift])
        inside = coords_in_range(coords)
        if bool(inside.all()):
            return self.query_keys(_pack_unchecked(coords))
        result = torch.full((coords.shape[0],), -1, dtype=torch.int64)
        result[inside] = self.query_keys(_pack_unchecked(coords[inside]))
        return result

    def query_keys(self, keys: torch.Tensor) -> torch.Tensor:
        """Rows of already packed int64 ``keys (M,)``; ``-1`` where absent. No checks."""
        result = torch.full(keys.shape, -1, dtype=torch.int64)
        if self.sorted_keys.numel() == 0 or keys.numel() == 0:
            return result
        position = torch.searchsorted(self.sorted_keys, keys)
        position.clamp_(max=self.sorted_keys.numel() - 1)
        found = self.sorted_keys[position] == keys
        result[found] = self.rows[position[found]]
        return result

    def _check_ndim(self, ndim: int) -> None:
        if ndim != self.ndim:
            raise ValueError(
                f"query coords have D={ndim} spatial columns but the table was built with "
                f"D={self.ndim}; both must be (batch, x[, y[, z]]) of the same D"
            )


def _sorted_lookup(
    table: CoordTable, queries: torch.Tensor, steps: torch.Tensor
) -> list[torch.Tensor]:
    layout = key_layout(table.ndim)
    low = queries[:, 1:].min(dim=0).values + steps.min(dim=0).values
    high = queries[:, 1:].max(dim=0).values + steps.max(dim=0).values
    safe = bool((low >= layout.spatial_min).all()) and bool((high <= layout.spatial_max).all())
    if not safe:  # some shifted query leaves the key range: check per coordinate
        return [table.query(queries, step) for step in steps]
    keys = _pack_unchecked(queries)  # pack(q) + offset_keys(step) == pack(q + step) here
    return [table.query_keys(keys + delta) for delta in offset_keys(steps).tolist()]


def _grid_lookup(
    table: CoordTable, table_coords: torch.Tensor, queries: torch.Tensor, steps: torch.Tensor,
    max_cells: int,
) -> list[torch.Tensor] | None:
    """Direct-address lookup over the box holding the table and every shifted query."""
    zero = steps.new_zeros(1)
    if queries is table_coords:
        query_low, query_high = table.low, table.high
    else:
        query_low, query_high = torch.aminmax(queries, dim=0)
    low = torch.minimum(table.low, query_low + torch.cat([zero, steps.min(dim=0).values]))
    high = torch.maximum(table.high, query_high + torch.cat([zero, steps.max(dim=0).values]))
    extent = (high - low + 1).tolist()
    volume = 1
    for size in extent:
        volume *= size
    if volume > max_cells:
        return None
    strides = [1] * len(extent)  # row-major (batch, x, y, z)
    for j in range(len(extent) - 2, -1, -1):
        strides[j] = strides[j + 1] * extent[j + 1]
    strides_t = torch.tensor(strides, dtype=torch.int64)
    grid = torch.full((volume,), -1, dtype=torch.int32)
    grid[((table_coords - low) * strides_t).sum(dim=1)] = torch.arange(
        table_coords.shape[0], dtype=torch.int32
    )
    flat = ((queries - low) * strides_t).sum(dim=1)  # (M,)
    deltas = (steps * strides_t[1:]).sum(dim=1).tolist()  # (K,)
    return [grid[flat + delta].to(torch.int64) for delta in deltas]


def lookup_shifted(
    table: CoordTable,
    table_coords: torch.Tensor,
    queries: torch.Tensor,
    steps: torch.Tensor,
    max_cells: int = DEFAULT_MAX_GRID_CELLS,
) -> list[torch.Tensor]:
    """For each step: table rows ``(M,)`` of ``queries + step`` (``-1`` where absent).

    Args:
        table: ``CoordTable.build(table_coords)`` (so the table coords are unique).
        table_coords: int64 ``(N, 1+D)`` coordinates the table was built from.
        queries: int64 ``(M, 1+D)`` in-range coordinates.
        steps: int64 ``(K, D)`` spatial shifts.
        max_cells: largest box for the direct-address grid; ``0`` forces the sorted table.
    """
    if steps.shape[0] == 0:
        return []
    if queries.shape[0] == 0 or len(table) == 0:
        return [torch.full((queries.shape[0],), -1, dtype=torch.int64) for _ in steps]
    found = _grid_lookup(table, table_coords, queries, steps, max_cells) if max_cells > 0 else None
    return found if found is not None else _sorted_lookup(table, queries, steps)


Pairs = list[tuple[torch.Tensor, torch.Tensor]]
_PAD = torch.iinfo(torch.int64).max


def _in_key_range(
    table: CoordTable, table_coords: torch.Tensor, queries: torch.Tensor, steps: torch.Tensor
) -> bool:
    """Whether every ``query + step`` lies inside the key layout (so packed keys add up)."""
    layout = key_layout(table.ndim)
    if queries is table_coords:  # the table already knows its bounding box
        low, high = table.low[1:], table.high[1:]
    else:
        low, high = torch.aminmax(queries[:, 1:], dim=0)
    low = low + steps.min(dim=0).values
    high = high + steps.max(dim=0).values
    return bool((low >= layout.spatial_min).all()) and bool((high <= layout.spatial_max).all())


def _step_columns(steps: torch.Tensor) -> list[list[int]]:
    """Step indices grouped by their leading axes (all but the last), first-seen order."""
    columns: dict[tuple[int, ...], list[int]] = {}
    for k, step in enumerate(steps.tolist()):
        columns.setdefault(tuple(step[:-1]), []).append(k)
    return list(columns.values())


def _window_pairs(
    table: CoordTable, table_coords: torch.Tensor, queries: torch.Tensor, steps: torch.Tensor,
    spacing: int,
) -> Pairs | None:
    """Pairs from one merge per column of steps; ``None`` if it does not apply.

    Queries are visited in key order. The steps of one column (same leading axes, e.g. the 3
    z-steps of one (dx, dy) of a 3x3x3 kernel) hit the key interval ``[b + lo, b + hi]``
    (``b``: the key of the query plus the column's leading step), which holds at most
    ``W = (hi - lo) // spacing + 1`` table keys (last-axis table coordinates are multiples of
    ``spacing``): after locating ``b + lo`` at position ``p`` they sit at ``p .. p + W - 1``,
    so ``b + dz`` is a hit exactly when one of those ``W`` keys equals it. Pairs of each step
    come out in query key order (ascending output row for key-sorted coordinates).
    """
    if not _in_key_range(table, table_coords, queries, steps):
        return None
    columns = _step_columns(steps)
    z_steps = steps[:, -1].tolist()
    widths = [(max(z_steps[k] for k in ks) - min(z_steps[k] for k in ks)) // spacing + 1
              for ks in columns]
    if max(widths) > MAX_WINDOW:
        return None
    sorted_keys, table_rows = table.sorted_keys.numpy(), table.rows.numpy()
    if queries is table_coords:  # sub-manifold: the table already holds them sorted
        query_keys, query_rows = sorted_keys, table_rows
    else:
        packed = _pack_unchecked(queries).numpy()
        query_rows = _argsort_keys(packed)
        query_keys = packed[query_rows]
    # pad with the largest int64: its gap to any in-range key is never a step
    padded = np.concatenate([sorted_keys, np.full(max(widths), _PAD, dtype=np.int64)])
    deltas = offset_keys(steps).tolist()

    windows = _jit.get("window_pairs")
    if windows is not None:
        return _window_pairs_jit(windows, padded, table_rows, query_keys, query_rows, steps,
                                 columns, widths, deltas, z_steps, spacing)  # fmt: skip

    def column_pairs(column: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
        ks, width = columns[column], widths[column]
        low = min(z_steps[k] for k in ks)
        base = query_keys + (deltas[ks[0]] - z_steps[ks[0]])  # key of q + column step, dz=0
        start = _merge_positions(sorted_keys, base + low)
        gaps = [padded[start + j] - base for j in range(width)]  # (M,) each, ascending in j
        found = []
        for k in ks:
            equal = [gap == z_steps[k] for gap in gaps]
            hit = np.logical_or.reduce(equal) if width > 1 else equal[0]
            query = np.flatnonzero(hit)
            position = start[query]
            for j in range(1, width):
                position += j * equal[j][query]
            found.append((torch.from_numpy(table_rows[position]),
                          torch.from_numpy(query_rows[query])))
        return found

    # columns are independent (numpy releases the GIL): spread them over the torch threads
    pairs: Pairs = [(torch.empty(0), torch.empty(0))] * steps.shape[0]
    for ks, found in zip(columns, parallel_map(column_pairs, range(len(columns))), strict=True):
        for k, pair in zip(ks, found, strict=True):
            pairs[k] = pair
    return pairs


def _window_pairs_jit(windows, padded, table_rows, query_keys, query_rows, steps, columns,
                      widths, deltas, z_steps, spacing) -> Pairs:
    """``_window_pairs``'s merges in one numba pass per column (columns in parallel): a
    pointer walks the sorted table once per column instead of a merge sort per column. The
    same pairs in the same order as the numpy merges."""
    n_steps = steps.shape[0]
    base = np.zeros(len(columns), dtype=np.int64)
    low = np.zeros(len(columns), dtype=np.int64)
    slots = np.full((len(columns), max(widths)), -1, dtype=np.int64)  # z slot -> step
    for column, ks in enumerate(columns):
        base[column] = deltas[ks[0]] - z_steps[ks[0]]
        low[column] = min(z_steps[k] for k in ks)
        for k in ks:
            slots[column, (z_steps[k] - low[column]) // spacing] = k
    # two walks: the first counts each step's hits, the second writes them where they belong
    # (exact sizes: a buffer of every step x every query would cost more in page faults)
    counts = np.zeros(n_steps + 1, dtype=np.int64)
    nothing = np.zeros(0, dtype=np.int64)
    windows(padded, table_rows, query_keys, query_rows, base, low, slots, spacing, False,
            counts[1:], nothing, nothing)  # fmt: skip
    starts = np.cumsum(counts)
    found_table = np.empty(int(starts[-1]), dtype=np.int64)
    found_query = np.empty(int(starts[-1]), dtype=np.int64)
    windows(padded, table_rows, query_keys, query_rows, base, low, slots, spacing, True,
            starts[:-1].copy(), found_table, found_query)  # fmt: skip
    return [(torch.from_numpy(found_table[a:b]), torch.from_numpy(found_query[a:b]))
            for a, b in zip(starts[:-1].tolist(), starts[1:].tolist(), strict=True)]


@_jit.kernel("window_pairs")
def _window_pairs_kernel(numba):
    @numba.njit(parallel=True, cache=True, nogil=True)
    def windows(padded, table_rows, query_keys, query_rows, base, low, slots, spacing, fill,
                place, found_table, found_query):
        width = slots.shape[1]
        for column in numba.prange(base.shape[0]):
            j = 0
            for q in range(query_keys.shape[0]):
                key = query_keys[q] + base[column]  # the key of query + the column's step, dz=0
                while padded[j] < key + low[column]:
                    j += 1
                for w in range(width):  # the window's keys: a hit where the gap is a step
                    gap = padded[j + w] - key - low[column]
                    if gap < 0 or gap >= width * spacing:
                        break
                    if gap % spacing == 0:
                        k = slots[column, gap // spacing]
                        if k >= 0:  # count a hit, or write it at its step's next place
                            if fill:
                                found_table[place[k]] = table_rows[j + w]
                                found_query[place[k]] = query_rows[q]
                            place[k] += 1
    return windows


def lookup_pairs(
    table: CoordTable,
    table_coords: torch.Tensor,
    queries: torch.Tensor,
    steps: torch.Tensor,
    max_cells: int = DEFAULT_MAX_GRID_CELLS,
    *,
    spacing: int = 1,
) -> Pairs:
    """For each step, the ``(table_rows, query_rows)`` pairs with ``table[row] == query + step``.

    Same arguments as ``lookup_shifted`` (pass ``queries=table_coords`` itself for a
    sub-manifold lookup: the table's sorted keys are then reused), plus ``spacing``: every
    last-axis table coordinate is a multiple of it (a tensor stride); ``1`` is always correct.
    Within a step every query row appears at most once; the pair order is unspecified.
    """
    if queries.shape[0] == 0 or len(table) == 0 or steps.shape[0] == 0:
        return [_hit_pairs(found) for found in lookup_shifted(table, table_coords, queries, steps)]
    found = _grid_lookup(table, table_coords, queries, steps, max_cells) if max_cells > 0 else None
    if found is None:
        pairs = _window_pairs(table, table_coords, queries, steps, spacing)
        if pairs is not None:
            return pairs
        found = _sorted_lookup(table, queries, steps)
    return [_hit_pairs(rows) for rows in found]


def _hit_pairs(found: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``found (M,)`` table rows or -1 per query -> (table_rows, query_rows) of the hits."""
    query_rows = torch.nonzero(found >= 0).reshape(-1)
    return found[query_rows], query_rows


@_jit.warmer
def _warm() -> None:
    coords = torch.zeros(1, 4, dtype=torch.int64)
    lookup_pairs(CoordTable.build(coords), coords, coords, torch.zeros(1, 3, dtype=torch.int64),
                 max_cells=0)
