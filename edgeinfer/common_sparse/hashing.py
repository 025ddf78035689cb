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
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from .coords import (
    _pack_unchecked,
    coords_in_range,
    key_layout,
    offset_keys,
    pack_coords,
    validate_coords,
)

__all__ = ["DEFAULT_MAX_GRID_CELLS", "CoordTable", "lookup_shifted"]

DEFAULT_MAX_GRID_CELLS = 1 << 22  # 16 MiB of int32 rows


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
        keys = pack_coords(coords)
        sorted_keys, rows = torch.sort(keys, stable=True)
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
        ndim = coords.shape[1] - 1
        if coords.shape[0]:
            low, high = coords.min(dim=0).values, coords.max(dim=0).values
        else:
            low = high = torch.zeros(ndim + 1, dtype=torch.int64)
        return cls(sorted_keys, rows, ndim, low, high)

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
    table_coords: torch.Tensor, queries: torch.Tensor, steps: torch.Tensor, max_cells: int
) -> list[torch.Tensor] | None:
    """Direct-address lookup over the box holding the table and every shifted query."""
    zero = steps.new_zeros(1)
    low = torch.minimum(
        table_coords.min(dim=0).values,
        queries.min(dim=0).values + torch.cat([zero, steps.min(dim=0).values]),
    )
    high = torch.maximum(
        table_coords.max(dim=0).values,
        queries.max(dim=0).values + torch.cat([zero, steps.max(dim=0).values]),
    )
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
    found = _grid_lookup(table_coords, queries, steps, max_cells) if max_cells > 0 else None
    return found if found is not None else _sorted_lookup(table, queries, steps)
