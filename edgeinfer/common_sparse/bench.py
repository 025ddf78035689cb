"""Benchmark of the sparse core: sub-manifold 3x3x3 conv vs dense ``conv3d`` on a 3-D scene.

The scene is a set of random planes voxelised in a ``G^3`` grid (deterministic numpy RNG),
thinned or thickened to a target occupancy, like the surfaces of a LiDAR scan. The baseline
runs ``torch.nn.functional.conv3d`` on the densified grid (densified untimed, in setup) and
reads the result back at the active sites; edgeinfer builds the kernel map and runs
``sparse_conv``, both timed. Quality is the max abs error at the active sites.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ..bench import Benchmark, Case, PlotSpec, max_abs_error

__all__ = ["BENCHMARKS", "SceneSpec", "make_cases", "make_scene"]


@dataclass(frozen=True)
class SceneSpec:
    """A synthetic sparse scene: ``grid`` voxels per side, target ``occupancy`` fraction."""

    grid: int
    occupancy: float
    channels: int
    seed: int = 0

    def __post_init__(self) -> None:
        if self.grid < 4 or not 0.0 < self.occupancy <= 0.5 or self.channels < 1:
            raise ValueError(
                "SceneSpec needs grid >= 4, 0 < occupancy <= 0.5 and channels >= 1; got "
                f"grid={self.grid}, occupancy={self.occupancy}, channels={self.channels}"
            )


def _plane_voxels(grid: int, rng: np.random.Generator) -> np.ndarray:
    """Voxels ``(~G^2, 3)`` of one random plane crossing the grid."""
    normal = rng.normal(size=3)
    axis = int(np.argmax(np.abs(normal)))
    others = [a for a in range(3) if a != axis]
    u, v = np.meshgrid(np.arange(grid), np.arange(grid), indexing="ij")
    centre = rng.uniform(0.2, 0.8) * grid
    tilt = normal[others[0]] * (u - grid / 2) + normal[others[1]] * (v - grid / 2)
    depth = centre - tilt / normal[axis]
    voxels = np.zeros((u.size, 3), dtype=np.int64)
    voxels[:, others[0]], voxels[:, others[1]] = u.ravel(), v.ravel()
    voxels[:, axis] = np.floor(depth).ravel()
    return voxels[(voxels[:, axis] >= 0) & (voxels[:, axis] < grid)]


def make_scene(spec: SceneSpec) -> np.ndarray:
    """Unique voxel coordinates ``(N, 3)`` int64 of ``spec``'s scene, sorted lexicographically."""
    rng = np.random.default_rng(spec.seed)
    target = int(spec.occupancy * spec.grid**3)
    voxels = np.zeros((0, 3), dtype=np.int64)
    while len(voxels) < target:
        voxels = np.unique(np.concatenate([voxels, _plane_voxels(spec.grid, rng)]), axis=0)
    keep = np.sort(rng.permutation(len(voxels))[:target])
    return voxels[keep]


def _setup(spec: SceneSpec) -> dict[str, Any]:
    import torch

    xyz = torch.from_numpy(make_scene(spec))
    coords = torch.cat([torch.zeros(len(xyz), 1, dtype=torch.int64), xyz], dim=1)
    gen = torch.Generator().manual_seed(spec.seed)
    feats = torch.randn(len(xyz), spec.channels, generator=gen)
    weight = torch.randn(spec.channels, spec.channels, 3, 3, 3, generator=gen) / 27**0.5
    dense = torch.zeros(1, spec.channels, spec.grid, spec.grid, spec.grid)
    dense[0, :, xyz[:, 0], xyz[:, 1], xyz[:, 2]] = feats.T
    # dense weight (C_out, C_in, a, b, c) -> per offset (27, C_in, C_out), offsets row-major
    sparse_weight = weight.permute(2, 3, 4, 1, 0).reshape(27, spec.channels, spec.channels)
    return {"coords": coords, "feats": feats, "weight": weight, "dense": dense,
            "sparse_weight": sparse_weight.contiguous(), "xyz": xyz}


def _dense(state: dict[str, Any]) -> Any:
    import torch.nn.functional as F  # noqa: N812

    out = F.conv3d(state["dense"], state["weight"], padding=1)[0]
    xyz = state["xyz"]
    return out[:, xyz[:, 0], xyz[:, 1], xyz[:, 2]].T


def _sparse(state: dict[str, Any]) -> Any:
    from .conv import sparse_conv
    from .kernel_map import build_submanifold_map

    kernel_map = build_submanifold_map(state["coords"], 3)
    return sparse_conv(state["feats"], state["sparse_weight"], kernel_map, kernel_map.n_out)


def _quality(reference: Any, result: Any, _state: Any) -> dict[str, float]:
    return {"max abs err": max_abs_error(reference, result)}


_SCENES = (
    (SceneSpec(64, 0.005, 16), True),
    (SceneSpec(64, 0.02, 16), True),
    (SceneSpec(64, 0.08, 16), True),
    (SceneSpec(96, 0.005, 32), False),
    (SceneSpec(96, 0.02, 32), False),
    (SceneSpec(96, 0.05, 32), False),
    (SceneSpec(96, 0.15, 32), False),
)


def make_cases() -> list[Case]:
    """One case per scene of ``_SCENES`` (the 64^3 ones are quick)."""
    cases = []
    for spec, quick in _SCENES:
        cases.append(
            Case(
                name=f"subm3 {spec.grid}^3 C{spec.channels} occ {100 * spec.occupancy:g}%",
                setup=lambda spec=spec: _setup(spec),
                baseline=_dense,
                candidate=_sparse,
                quality=_quality,
                params={"occupancy %": 100 * spec.occupancy, "grid": spec.grid,
                        "channels": spec.channels},
                quick=quick,
            )
        )
    return cases


BENCHMARKS = (
    Benchmark(
        name="sparse-core",
        title="Sparse core: 3x3x3 sub-manifold conv (kernel map + gather-GEMM-scatter)",
        baseline="dense torch conv3d",
        cases=make_cases,
        description=(
            "Random planes voxelised in a G^3 grid at a target occupancy; dense conv3d on the "
            "densified grid (densify untimed) read back at active sites vs edgeinfer kernel-map "
            "build + sparse_conv (both timed)."
        ),
        plot=PlotSpec(x="occupancy %", xlabel="occupied voxels (%)", series="grid", log_x=True),
        isolate_memory=True,
    ),
)
