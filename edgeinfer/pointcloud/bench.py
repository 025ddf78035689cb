"""Point-cloud benchmark: edgeinfer layers and networks against spconv 2.x on a LiDAR scan.

Input: ``datasets.generate_scene(0)`` (64 beams), shifted to non-negative metres and
voxelised with ``sparse_quantize`` at 0.05 m: ``SCAN_VOXELS`` voxels. Every row builds the
spconv layer or network with the *same* weights (``models.spconv_mirror``) and runs it in the
same process on the same input. "map+conv" rows start from a tensor without kernel maps on
both sides, so the map build is timed; "cached" rows reuse maps built in setup. Rows needing
spconv are skipped with the reason when it is not installed.

Quality: max abs error against spconv (rows matched by coordinate where the two order them
differently); networks also report the relative error. The kernel-map row compares the pair
sets with spconv's ``get_indice_pairs`` (number of differing pairs).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..bench import Benchmark, Case, max_abs_error, relative_error

__all__ = [
    "BENCHMARKS", "SCAN_VOXELS", "VOXEL_SIZE", "load_scan", "make_cases", "make_gemm_cases",
]

VOXEL_SIZE = 0.05
SCAN_VOXELS = 87_058  # voxels of generate_scene(0) at VOXEL_SIZE (checked by the tests)
_SPCONV = ("spconv",)


def load_scan() -> dict[str, Any]:
    """The benchmark scan: ``coords (M, 4)`` int32 >= 0, ``feats (M, 4)`` (x, y, z in
    metres / 50, intensity), ``points`` as a ``PointTensor``, and spconv's ``shape``."""
    import torch

    from ..datasets import generate_scene
    from .models import PointTensor
    from .models.spconv_mirror import spatial_shape_for
    from .quantize import sparse_quantize

    scan = generate_scene(0)
    xyz = torch.from_numpy(scan.points - scan.points.min(axis=0))
    point_feats = torch.cat(
        [xyz / 50.0, torch.from_numpy(np.asarray(scan.intensity, dtype=np.float32))[:, None]],
        dim=1,
    )
    voxels, indices = sparse_quantize(xyz, VOXEL_SIZE, return_inverse=False)
    coords = torch.cat([torch.zeros(len(voxels), 1, dtype=torch.int32), voxels], dim=1)
    return {
        "coords": coords, "feats": point_feats[indices], "shape": spatial_shape_for(coords),
        "points": PointTensor.from_points(xyz, point_feats, VOXEL_SIZE),
    }


def _fresh(coords: Any, feats: Any) -> Any:
    """A stride-1 ``SparseTensor`` with an empty kernel-map cache (coords already checked)."""
    from .tensor import SparseCache, SparseTensor

    cache = SparseCache()
    return SparseTensor.derived(feats, cache.put_coords((1, 1, 1), coords), (1, 1, 1), cache)


def _spconv_input(state: dict[str, Any], feats: Any = None) -> Any:
    import spconv.pytorch as spconv

    feats = state["feats"] if feats is None else feats
    return spconv.SparseConvTensor(feats, state["coords"], state["shape"], 1)


def _sorted_feats(coords: Any, feats: Any) -> Any:
    from ..common_sparse import pack_coords

    return feats[pack_coords(coords).argsort()]


# ---------------------------------------------------------------- layers


def _layer_setup(channels: int, kind: str) -> dict[str, Any]:
    """State of a layer row: the scan with random ``channels`` feats and both layers."""
    import torch

    from . import nn as spnn
    from .models.spconv_mirror import SpconvFeats, mirror_in_spconv

    state = load_scan()
    gen = torch.Generator().manual_seed(channels)
    state["feats"] = torch.randn(len(state["coords"]), channels, generator=gen)
    size, stride = (3, 1) if kind.startswith("subm") else (2, 2)
    layer = spnn.Conv3d(channels, channels, size, stride, transposed=kind == "up")
    if kind == "up":  # the input is the downsampled scan; both sides reuse the down map
        down = spnn.Conv3d(channels, channels, 2, 2)
        fine = _fresh(state["coords"], state["feats"])
        state["coarse"] = down(fine)
        pair = torch.nn.Sequential(down, layer)
        mirror = mirror_in_spconv(pair, lambda: pair(_fresh(state["coords"], state["feats"])))
        state["spconv_coarse"] = mirror[0](SpconvFeats(_spconv_input(state)))
        state["spconv"] = mirror[1]
    else:
        state["spconv"] = mirror_in_spconv(
            layer, lambda: layer(_fresh(state["coords"], state["feats"])))
    state["layer"] = layer
    if kind == "subm cached":
        state["cached"] = _fresh(state["coords"], state["feats"])
        layer(state["cached"])
        state["spconv_cached"] = state["spconv"](SpconvFeats(_spconv_input(state))).tensor
    return state


def _layer_baseline(kind: str):
    def run(state: dict[str, Any]) -> Any:
        from .models.spconv_mirror import SpconvFeats

        if kind == "up":
            return state["spconv"](state["spconv_coarse"]).tensor
        if kind == "subm cached":
            tensor = state["spconv_cached"].replace_feature(state["feats"])
            return state["spconv"](SpconvFeats(tensor)).tensor
        return state["spconv"](SpconvFeats(_spconv_input(state))).tensor

    return run


def _layer_candidate(kind: str):
    def run(state: dict[str, Any]) -> Any:
        if kind == "up":
            return state["layer"](state["coarse"])
        if kind == "subm cached":
            return state["layer"](state["cached"].replace(feats=state["feats"]))
        return state["layer"](_fresh(state["coords"], state["feats"]))

    return run


def _layer_quality(baseline: Any, candidate: Any, _state: Any) -> dict[str, float]:
    """Max abs error, rows matched by coordinate (spconv keeps coarse coords in stride units)."""
    import torch

    stride = candidate.stride[0]
    coords = baseline.indices.clone()
    coords[:, 1:] *= stride
    if coords.shape != candidate.coords.shape:
        return {"max abs err": float("inf"), "row count diff": len(coords) - len(candidate.coords)}
    ref = _sorted_feats(coords, baseline.features)
    out = _sorted_feats(candidate.coords, candidate.feats)
    same_sites = torch.equal(_sorted_feats(coords, coords), _sorted_feats(candidate.coords,
                                                                          candidate.coords))
    return {"max abs err": max_abs_error(ref, out) if same_sites else float("inf")}


def _map_baseline(state: dict[str, Any]) -> Any:
    import spconv.pytorch.ops as ops
    from spconv.core import ConvAlgo

    return ops.get_indice_pairs(state["coords"], 1, state["shape"], ConvAlgo.Native, [3] * 3,
                                [1] * 3, [1] * 3, [1] * 3, [0] * 3, subm=True)


def _map_candidate(state: dict[str, Any]) -> Any:
    from ..common_sparse import build_submanifold_map

    return build_submanifold_map(state["coords"], 3)


def _map_quality(baseline: Any, candidate: Any, _state: Any) -> dict[str, float]:
    """Pairs in one map but not the other, over the offsets spconv stores (the first half;
    it mirrors the rest, as edgeinfer does)."""
    _, pairs, counts = baseline
    differing = 0
    for k in range(candidate.volume // 2):
        n = int(counts[k])
        theirs = set(zip(pairs[0, k, :n].tolist(), pairs[1, k, :n].tolist(), strict=True))
        ours = set(zip(candidate.in_rows[k].tolist(), candidate.out_rows[k].tolist(),
                       strict=True))
        differing += len(theirs ^ ours)
    return {"differing pairs": float(differing)}


# ---------------------------------------------------------------- networks


def _net_setup(name: str, width: float) -> dict[str, Any]:
    """The scan plus the eval-mode model and its spconv mirror (same weights)."""
    import torch

    from ..datasets import SCENE_CLASSES
    from .models import create_model
    from .models.spconv_mirror import mirror_in_spconv, spatial_shape_for

    state = load_scan()
    torch.manual_seed(0)
    model = create_model(name, 4, len(SCENE_CLASSES), width).eval()
    if name == "spvcnn":  # the model voxelises the points itself: spconv gets those voxels
        state["shape"] = spatial_shape_for(state["points"].voxelize()[0].coords)
        state["mirror"] = mirror_in_spconv(model, lambda: model(state["points"]))
    else:
        state["mirror"] = mirror_in_spconv(
            model, lambda: model(_fresh(state["coords"], state["feats"])))
    state["model"], state["name"] = model, name
    return state


def _net_baseline(state: dict[str, Any]) -> Any:
    import spconv.pytorch as spconv

    from .models.spconv_mirror import SpconvFeats

    if state["name"] == "spvcnn":  # same voxelisation as the model's forward
        voxels, _ = state["points"].voxelize()
        tensor = SpconvFeats(spconv.SparseConvTensor(voxels.feats, voxels.coords,
                                                     state["shape"], 1))
        return state["mirror"].run(tensor, state["points"])
    return state["mirror"].run(SpconvFeats(_spconv_input(state))).feats


def _net_candidate(state: dict[str, Any]) -> Any:
    model = state["model"]
    if state["name"] == "spvcnn":
        return model(state["points"])
    return model(_fresh(state["coords"], state["feats"])).feats


def _net_quality(baseline: Any, candidate: Any, _state: Any) -> dict[str, float]:
    return {"max abs err": max_abs_error(baseline, candidate),
            "rel err": relative_error(baseline, candidate)}


# ---------------------------------------------------------------- cases


def _layer_case(label: str, channels: int, kind: str, quick: bool = False) -> Case:
    return Case(
        name=f"{label} C{channels}",
        setup=lambda: _layer_setup(channels, kind),
        baseline=_layer_baseline(kind),
        candidate=_layer_candidate(kind),
        quality=_layer_quality,
        params={"channels": channels},
        quick=quick,
        requires=_SPCONV,
    )


def _net_case(name: str, width: float, quick: bool = False) -> Case:
    return Case(
        name=f"{name} width {width:g} (net)",
        setup=lambda: _net_setup(name, width),
        baseline=_net_baseline,
        candidate=_net_candidate,
        quality=_net_quality,
        params={"width": width},
        quick=quick,
        count_macs=False,
        requires=_SPCONV,
    )


def make_cases() -> list[Case]:
    """Layer rows (sub-manifold at 16..128 channels, strided, transposed, map only, cached
    map) and network rows; the 32-channel sub-manifold conv and MinkUNet 0.5 are quick."""
    cases = [_layer_case("subm3 map+conv", c, "subm", quick=c == 32) for c in (16, 32, 64, 128)]
    cases += [
        _layer_case("subm3 cached map", 32, "subm cached"),
        _layer_case("k2s2 down map+conv", 32, "down"),
        _layer_case("k2s2 up (transposed, cached map)", 32, "up"),
        Case(
            name="subm3 kernel map only (vs spconv get_indice_pairs)",
            setup=load_scan,
            baseline=_map_baseline,
            candidate=_map_candidate,
            quality=_map_quality,
            count_macs=False,
            quick=False,
            requires=_SPCONV,
        ),
        _net_case("minkunet", 0.5, quick=True),
        _net_case("minkunet", 1.0),
        _net_case("spvcnn", 0.5),
    ]
    return cases


# ---------------------------------------------------------------- conv vs its bare GEMMs


def _gemm_setup(channels: int) -> dict[str, Any]:
    """The scan's sub-manifold 3x3x3 map (built untimed), random feats/weights, and the
    input rows of every offset already gathered (what the bare-GEMM baseline multiplies)."""
    import torch

    from ..common_sparse import build_submanifold_map

    state = load_scan()
    gen = torch.Generator().manual_seed(channels)
    feats = torch.randn(len(state["coords"]), channels, generator=gen)
    weight = torch.randn(27, channels, channels, generator=gen) / channels**0.5
    kernel_map = build_submanifold_map(state["coords"], 3)
    gathered = [feats.index_select(0, rows) for rows in kernel_map.in_rows]
    return {"feats": feats, "weight": weight, "map": kernel_map, "gathered": gathered}


def _gemm_baseline(state: dict[str, Any]) -> Any:
    return [rows @ state["weight"][k] for k, rows in enumerate(state["gathered"])]


def _gemm_candidate(state: dict[str, Any]) -> Any:
    from ..common_sparse import sparse_conv

    return sparse_conv(state["feats"], state["weight"], state["map"], state["map"].n_out)


def _gemm_quality(baseline: Any, candidate: Any, state: dict[str, Any]) -> dict[str, float]:
    """The conv output against the bare products scattered by ``index_add_`` in float64."""
    import torch

    kernel_map = state["map"]
    reference = torch.zeros(kernel_map.n_out, candidate.shape[1], dtype=torch.float64)
    for rows_out, product in zip(kernel_map.out_rows, baseline, strict=True):
        reference.index_add_(0, rows_out, product.double())
    return {"max abs err": max_abs_error(reference, candidate.double())}


def make_gemm_cases() -> list[Case]:
    """Cached-map sub-manifold conv vs the bare GEMMs of its pairs at 16/32/64 channels."""
    return [
        Case(
            name=f"subm3 cached map C{channels}",
            setup=lambda channels=channels: _gemm_setup(channels),
            baseline=_gemm_baseline,
            candidate=_gemm_candidate,
            quality=_gemm_quality,
            params={"channels": channels},
            quick=channels == 32,
        )
        for channels in (16, 32, 64)
    ]


BENCHMARKS = (
    Benchmark(
        name="pointcloud",
        title="Point cloud: sparse conv layers and MinkUNet / SPVCNN vs spconv 2.x (CPU)",
        baseline="spconv",
        cases=make_cases,
        description=(
            f"generate_scene(0), 64 beams, voxelised at {VOXEL_SIZE} m: {SCAN_VOXELS:,} "
            "voxels, batch 1. spconv layers/networks carry the same weights and run on the "
            "same input in the same process. 'map+conv': kernel maps built inside the timed "
            "call on both sides; 'cached map': maps built in setup. Networks in eval mode, "
            "random weights; SPVCNN's point<->voxel steps are the same edgeinfer code on both "
            "sides (spconv has none), only its convolutions differ; edgeinfer folds each "
            "eval-mode BatchNorm into the conv before it, the spconv copy runs them as separate "
            "layers (spconv has no folding). Quality: max abs error vs spconv (rows matched by "
            "coordinate). Peak RSS: one call of each side in a fresh process after the setup."
        ),
        isolate_memory=True,
    ),
    Benchmark(
        name="pointcloud-gemm",
        title="Point cloud: sub-manifold conv with a cached kernel map vs its bare GEMMs",
        baseline="bare GEMMs",
        cases=make_gemm_cases,
        description=(
            f"The same scan ({SCAN_VOXELS:,} voxels), 3x3x3 sub-manifold map built in setup. "
            "Baseline: one torch matmul per kernel offset on that offset's input rows, "
            "gathered in setup (the GEMM work of the conv and nothing else). edgeinfer: "
            "sparse_conv with the cached map, default backend (the fused numba kernel where "
            "numba runs, else gather + GEMM + scatter-add). A speed-up of "
            "1/1.2 = 0.83 means the conv costs 1.2x its bare GEMMs. Quality: max abs error "
            "against the bare products summed in float64."
        ),
        isolate_memory=True,
    ),
)
