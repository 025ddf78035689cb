"""Import MinkUNet weights of TorchSparse / SPVNAS and of spconv 2.x (or 1.x) into edgeinfer.

Both are weight-layout conversions onto our ``MinkUNet`` (the blocks compute what theirs do):

- ``"torchsparse"``: the MinkUNet of SPVNAS (``core/models/semantic_kitti/minkunet.py``, keys
  ``stem.*``, ``stageS.*``, ``upJ.*``, ``classifier.0.*``; its unused ``point_transforms.*``
  are dropped), as ``{"model": state}`` (torchpack), ``{"state_dict": state}`` or bare, with or
  without a ``module.`` prefix. TorchSparse's ``Conv3d.kernel`` is ``(K, C_in, C_out)``
  (``(C_in, C_out)`` for ``1x1x1``); for odd sizes its offsets run x fastest, ours z fastest
  (:func:`torchsparse_kernel`). Channels come from the weights, so any ``cr`` imports exactly.
- ``"spconv"``: a spconv network laid out like our MinkUNet (what ``mirror_in_spconv`` builds:
  ``<our conv>.layer.weight``, ``<our norm>.op.*``). Any other spconv network loads into a
  model you build with :func:`load_spconv_weights` and a ``rename`` of its keys. spconv 2.x
  weights are ``(C_out, kx, ky, kz, C_in)`` with row-major offsets (last axis fastest, ours
  too), except that its ``1x1x1`` convolution reads the same memory as a ``(C_in, C_out)``
  matrix; spconv 1.x weights are ``(kx, ky, kz, C_in, C_out)`` (:func:`spconv_kernel`).

SPVNAS voxelises with ``round(xyz / voxel)`` shifted to a zero minimum and feeds
``(x, y, z, intensity)`` in metres: ``info.input`` records that (``quantize="round_shift"``),
and ``train.voxelize_scan(points, intensity, info.input)`` reproduces it. SPVNAS's SPVCNN
files hold the same keys as its MinkUNet but a different network (see :data:`SPVCNN_REFUSAL`):
a file whose ``point_transforms`` were trained, or whose model-zoo name says SPVCNN/SPVNAS,
is refused rather than run as a MinkUNet.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import torch

from .._info import PointInput, PretrainedInfo
from . import nn as spnn
from .models import MinkUNet, UNetConfig

__all__ = [
    "SEMANTIC_KITTI_CLASSES",
    "SPVCNN_REFUSAL",
    "SPVNAS_FEATURES",
    "coords_from_torchsparse",
    "detect_spconv",
    "detect_torchsparse",
    "load_spconv",
    "load_spconv_weights",
    "load_torchsparse",
    "load_torchsparse_weights",
    "mirror_names",
    "spconv_kernel",
    "spvnas_names",
    "torchsparse_kernel",
]

SEMANTIC_KITTI_CLASSES = (
    "car", "bicycle", "motorcycle", "truck", "other-vehicle", "person", "bicyclist",
    "motorcyclist", "road", "parking", "sidewalk", "other-ground", "building", "fence",
    "vegetation", "trunk", "terrain", "pole", "traffic-sign",
)
"""The 19 evaluated SemanticKITTI classes in label order (named for 19-class imports)."""
SPVNAS_FEATURES = ("x", "y", "z", "intensity")
"""SPVNAS's per-voxel features: the first point's coordinates in metres and its remission."""
SPVNAS_VOXEL_SIZE = 0.05
"""SPVNAS's SemanticKITTI voxel size (m), the default when ``voxel_size`` is not given."""
SPVCNN_REFUSAL = (
    "SPVNAS's SPVCNN re-voxelises the points before its first stage and interpolates with "
    "float point coordinates; edgeinfer's SPVCNN does neither, so its weights would not give "
    "SPVNAS's outputs"
)
_TASK = "semantic segmentation"
_BN = ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")


def torchsparse_kernel(kernel: torch.Tensor) -> torch.Tensor:
    """A TorchSparse ``Conv3d.kernel`` as ours: ``(K, C_in, C_out)``, cubic ``K``.

    ``(C_in, C_out)`` (a ``1x1x1`` kernel) gains the leading axis; odd sizes are reordered
    from TorchSparse's x-fastest offsets to our z-fastest ones; even sizes (``2x2x2``) already
    run z fastest.

    Raises:
        ValueError: not 2-D or 3-D, or ``K`` not a cube.
    """
    if kernel.dim() == 2:
        return kernel.unsqueeze(0)
    if kernel.dim() != 3:
        raise ValueError(f"a TorchSparse kernel is (K, C_in, C_out) or (C_in, C_out); got "
                         f"shape {tuple(kernel.shape)}")  # fmt: skip
    volume, c_in, c_out = kernel.shape
    size = round(volume ** (1 / 3))
    if size ** 3 != volume:
        raise ValueError(f"a TorchSparse kernel of {volume} offsets is not k x k x k "
                         f"(shape {tuple(kernel.shape)})")  # fmt: skip
    if size % 2 == 0:
        return kernel
    # theirs: index (z * k + y) * k + x; ours: (x * k + y) * k + z
    grid = kernel.reshape(size, size, size, c_in, c_out).permute(2, 1, 0, 3, 4)
    return grid.reshape(volume, c_in, c_out).contiguous()


def spconv_kernel(weight: torch.Tensor, *, layout: str = "2.x") -> torch.Tensor:
    """A spconv convolution weight as our ``(K, C_in, C_out)`` kernel.

    ``layout="2.x"``: ``(C_out, kx, ky, kz, C_in)`` ("KRSC"); a ``1x1x1`` weight is the
    ``(C_in, C_out)`` matrix spconv 2.x multiplies by, stored in that shape's memory.
    ``layout="1.x"``: ``(kx, ky, kz, C_in, C_out)`` ("RSCK").

    Raises:
        ValueError: an unknown layout or a weight that is not 5-D.
    """
    if layout not in ("2.x", "1.x"):
        raise ValueError(f"layout must be '2.x' (C_out, kx, ky, kz, C_in) or '1.x' "
                         f"(kx, ky, kz, C_in, C_out); got {layout!r}")  # fmt: skip
    if weight.dim() != 5:
        raise ValueError(f"a spconv weight is 5-D; got shape {tuple(weight.shape)}")
    if layout == "1.x":
        *size, c_in, c_out = weight.shape
        return weight.reshape(-1, c_in, c_out).contiguous()
    c_out, *size, c_in = weight.shape
    if size == [1, 1, 1]:
        return weight.contiguous().reshape(1, c_in, c_out)
    return weight.permute(1, 2, 3, 4, 0).reshape(-1, c_in, c_out).contiguous()


def coords_from_torchsparse(coords: Any) -> torch.Tensor:
    """TorchSparse 1.x / 2.0 coordinates ``(N, 4)`` as ``(x, y, z, batch)`` -> our
    ``(batch, x, y, z)`` (TorchSparse 2.1 already puts the batch first).

    Raises:
        ValueError: not an integer ``(N, 4)`` array.
    """
    coords = torch.as_tensor(coords)
    if coords.dim() != 2 or coords.shape[1] != 4 or coords.is_floating_point():
        raise ValueError(f"coords must be integer (N, 4) as (x, y, z, batch); got "
                         f"{coords.dtype} of shape {tuple(coords.shape)}")  # fmt: skip
    return coords[:, [3, 0, 1, 2]].contiguous()


def _unwrap(payload: Any) -> dict[str, Any] | None:
    state = payload
    if isinstance(payload, dict):
        for key in ("model", "state_dict"):
            if isinstance(payload.get(key), dict):
                state = payload[key]
                break
    if not isinstance(state, dict) or not state:
        return None
    return {str(k).removeprefix("module."): v for k, v in state.items()}


def detect_torchsparse(payload: Any) -> bool:
    """True for an SPVNAS MinkUNet state dict (``stem.0.kernel`` and ``stage1.0.net.0.kernel``)."""
    state = _unwrap(payload)
    return state is not None and "stem.0.kernel" in state and "stage1.0.net.0.kernel" in state


def detect_spconv(payload: Any) -> bool:
    """True for a spconv MinkUNet in edgeinfer's layout (``trunk.stem.0.conv.layer.weight``)."""
    state = _unwrap(payload)
    return state is not None and "trunk.stem.0.conv.layer.weight" in state


def _bn(names: dict[str, str], ours: str, theirs: str) -> None:
    names.update({f"{ours}.{key}": f"{theirs}.{key}" for key in _BN})


def _spvnas_block(names: dict[str, str], ours: str, theirs: str) -> None:
    names[f"{ours}.conv1.kernel"] = f"{theirs}.net.0.kernel"
    _bn(names, f"{ours}.norm1", f"{theirs}.net.1")
    names[f"{ours}.conv2.kernel"] = f"{theirs}.net.3.kernel"
    _bn(names, f"{ours}.norm2", f"{theirs}.net.4")
    names[f"{ours}.shortcut.0.kernel"] = f"{theirs}.downsample.0.kernel"
    _bn(names, f"{ours}.shortcut.1", f"{theirs}.downsample.1")


def spvnas_names(model: MinkUNet) -> dict[str, str]:
    """``our key -> SPVNAS key`` for every weight of a MinkUNet."""
    names = {"classifier.weight": "classifier.0.weight", "classifier.bias": "classifier.0.bias"}
    for index in range(2):
        names[f"trunk.stem.{index}.conv.kernel"] = f"stem.{3 * index}.kernel"
        _bn(names, f"trunk.stem.{index}.norm", f"stem.{3 * index + 1}")
    for index in range(4):
        down, up = f"trunk.down.{index}", f"trunk.up.{index}"
        names[f"{down}.down.conv.kernel"] = f"stage{index + 1}.0.net.0.kernel"
        _bn(names, f"{down}.down.norm", f"stage{index + 1}.0.net.1")
        names[f"{up}.up.conv.kernel"] = f"up{index + 1}.0.net.0.kernel"
        _bn(names, f"{up}.up.norm", f"up{index + 1}.0.net.1")
        for block in range(model.config.blocks):
            _spvnas_block(names, f"{down}.blocks.{block}", f"stage{index + 1}.{block + 1}")
            _spvnas_block(names, f"{up}.blocks.{block}", f"up{index + 1}.1.{block}")
    return {ours: names[ours] for ours in model.state_dict()}


def mirror_names(model: torch.nn.Module) -> dict[str, str]:
    """``our key -> the key mirror_in_spconv gives it`` (convs ``.layer.``, norms ``.op.``)."""
    names = {key: key for key in model.state_dict()}
    for name, module in model.named_modules():
        inner = "layer" if isinstance(module, spnn.Conv3d) else \
            "op" if isinstance(module, spnn.BatchNorm) else None
        if inner is not None:
            prefix = f"{name}." if name else ""
            for key in module.state_dict():
                names[prefix + key] = f"{prefix}{inner}.{'weight' if key == 'kernel' else key}"
    return names


Convert = Callable[[torch.Tensor, tuple[int, int, int], tuple[int, ...], str], torch.Tensor]


def _fill(model: torch.nn.Module, state: Mapping[str, Any],
          rename: Mapping[str, str] | Callable[[str], str], convert: Convert, source: object,
          what: str, ignore: tuple[str, ...] = ()) -> torch.nn.Module:
    """Load ``state`` (their keys) into ``model``: every key found, used, and of fitting shape,
    kernels through ``convert(value, kernel_size, our_shape, their_key)``; else nothing."""
    lookup = rename.__getitem__ if isinstance(rename, Mapping) else rename
    sizes = {f"{name}.kernel".lstrip("."): module.config.geometry.kernel_size
             for name, module in model.named_modules() if isinstance(module, spnn.Conv3d)}
    loaded: dict[str, Any] = {}
    missing, used = [], set()
    for ours, target in model.state_dict().items():
        try:
            theirs = lookup(ours)
        except KeyError:
            theirs = None
        if theirs is None or theirs not in state:
            if ours.endswith(".num_batches_tracked"):  # old files lack it; eval does not use it
                loaded[ours] = target.clone()
            else:
                missing.append(f"{theirs or '?'} (for {ours})")
            continue
        used.add(theirs)
        value = state[theirs]
        if not isinstance(value, torch.Tensor):
            raise ValueError(f"{source}: {theirs} is a {type(value).__name__}, not a tensor")
        value = value.float() if value.is_floating_point() else value
        if ours in sizes:
            value = convert(value, sizes[ours], tuple(target.shape), theirs)
        elif tuple(value.shape) != tuple(target.shape):
            raise ValueError(f"{source}: {theirs}: file shape {tuple(value.shape)}, but {ours} "
                             f"of {what} is {tuple(target.shape)}")  # fmt: skip
        loaded[ours] = value.to(target.dtype)
    unused = sorted(k for k in set(state) - used if not str(k).startswith(ignore))
    if missing or unused:  # refuse rather than load half a model or drop weights
        raise ValueError(f"{source}: the weights do not fit {what}: missing {missing[:5]}, "
                         f"not mapped {unused[:5]} ({len(missing)}/{len(unused)} in all)")
    model.load_state_dict(loaded, strict=True)
    return model


def _torchsparse_convert(source: object) -> Convert:
    def convert(value: torch.Tensor, size: tuple[int, int, int], ours: tuple[int, ...],
                theirs: str) -> torch.Tensor:
        volume, c_in, c_out = ours
        allowed = [(volume, c_in, c_out)] + ([(c_in, c_out)] if volume == 1 else [])
        if tuple(value.shape) not in allowed:
            raise ValueError(f"{source}: {theirs}: TorchSparse kernel of shape "
                             f"{tuple(value.shape)}; a {'x'.join(map(str, size))} conv "
                             f"{c_in} -> {c_out} needs {allowed[-1]}")  # fmt: skip
        return torchsparse_kernel(value)
    return convert


def _spconv_convert(source: object, layout: str) -> Convert:
    def convert(value: torch.Tensor, size: tuple[int, int, int], ours: tuple[int, ...],
                theirs: str) -> torch.Tensor:
        _, c_in, c_out = ours
        want = (c_out, *size, c_in) if layout == "2.x" else (*size, c_in, c_out)
        if tuple(value.shape) != want:
            raise ValueError(f"{source}: {theirs}: spconv {layout} weight of shape "
                             f"{tuple(value.shape)}; a {'x'.join(map(str, size))} conv "
                             f"{c_in} -> {c_out} needs {want}")  # fmt: skip
        return spconv_kernel(value, layout=layout)
    return convert


def load_torchsparse_weights(
    model: torch.nn.Module, state: Mapping[str, Any], *,
    rename: Mapping[str, str] | Callable[[str], str] | None = None,
    source: object = "the TorchSparse state dict",
) -> torch.nn.Module:
    """Fill ``model`` from a TorchSparse network's ``state`` (kernels via
    :func:`torchsparse_kernel`).

    Args:
        rename: our key -> their key (a dict or a function). Default: SPVNAS's MinkUNet names
            (:func:`spvnas_names`, ``model`` a MinkUNet); SPVNAS's unused ``point_transforms.*``
            are ignored then.

    Raises:
        ValueError: missing or unmapped keys, or a shape that does not fit (their key, its
            shape and the shape the layer needs); nothing is loaded then.
    """
    ignore: tuple[str, ...] = ()
    if rename is None:
        if not isinstance(model, MinkUNet):
            raise TypeError(f"rename= is needed for a {type(model).__name__}; the default "
                            "names are SPVNAS's MinkUNet")  # fmt: skip
        rename, ignore = spvnas_names(model), ("point_transforms.",)
    return _fill(model, state, rename, _torchsparse_convert(source), source,
                 f"a {type(model).__name__}", ignore)


def load_spconv_weights(
    model: torch.nn.Module, state: Mapping[str, Any], *,
    rename: Mapping[str, str] | Callable[[str], str] | None = None, layout: str = "2.x",
    source: object = "the spconv state dict",
) -> torch.nn.Module:
    """Fill ``model`` (any edgeinfer point-cloud model) from a spconv network's ``state``.

    Args:
        rename: our key -> their key (a dict or a function); for a ``Conv3d`` it gets our
            ``...kernel`` / ``...bias`` key. Default: the names ``mirror_in_spconv`` gives
            (:func:`mirror_names`).
        layout: ``"2.x"`` or ``"1.x"`` weights (see :func:`spconv_kernel`).

    Raises:
        ValueError: missing or unmapped keys, or a shape that does not fit (their key, its
            shape and the shape the layer needs); nothing is loaded then.
    """
    spconv_kernel(torch.zeros(1, 1, 1, 1, 1), layout=layout)  # checks the layout name
    return _fill(model, state, mirror_names(model) if rename is None else rename,
                 _spconv_convert(source, layout), source, f"a {type(model).__name__}")


def _is_spvcnn(state: Mapping[str, Any], source: Path) -> bool:
    """SPVCNN and MinkUNet files of SPVNAS share their keys; only SPVCNN runs (and so trains)
    its ``point_transforms``: trained batch-norm counters there, or a model-zoo folder name
    (``..._SPVCNN@119GMACs``, ``..._SPVNAS@65GMACs``), say SPVCNN."""
    named = "/".join(source.parts[-2:]).lower()
    if "spvcnn" in named or "spvnas@" in named:
        return True
    counter = state.get("point_transforms.0.1.num_batches_tracked")
    return isinstance(counter, torch.Tensor) and counter.numel() == 1 and int(counter) > 0


def _dim(state: Mapping[str, Any], key: str, axis: int, source: Path, what: str) -> int:
    value = state.get(key)
    if not isinstance(value, torch.Tensor) or value.dim() <= max(axis, -axis - 1):
        found = "missing" if value is None else f"of shape {tuple(getattr(value, 'shape', ()))}"
        raise ValueError(f"{source}: {key} is {found}; it sizes {what} (the file is truncated "
                         "or not this architecture)")  # fmt: skip
    return int(value.shape[axis])


def _build(state: Mapping[str, Any], source: Path, what: str, key: Callable[[str], str],
           axis: int, counted: str) -> MinkUNet:
    """The MinkUNet whose channels and block count the file's weights give."""
    stem = key("trunk.stem.0.conv.kernel")
    channels = [_dim(state, stem, axis, source, what)]
    channels += [_dim(state, key(f"trunk.down.{i}.blocks.0.conv1.kernel"), axis, source, what)
                 for i in range(4)]
    channels += [_dim(state, key(f"trunk.up.{j}.up.conv.kernel"), axis, source, what)
                 for j in range(4)]
    in_axis = -2 if axis == -1 else -1  # torchsparse (K, C_in, C_out); spconv (C_out, .., C_in)
    in_channels = _dim(state, stem, in_axis, source, what)
    blocks = sum(1 for k in state if re.fullmatch(counted, str(k)))
    classes = _dim(state, key("classifier.weight"), 0, source, what)
    try:
        return MinkUNet(UNetConfig(in_channels, classes, blocks=blocks, channels=tuple(channels)))
    except (TypeError, ValueError) as error:
        raise ValueError(f"{source}: the weights do not describe {what}: {error}") from error


def _probe() -> MinkUNet:
    """A 1-channel MinkUNet: its key names say which weights size a file's model."""
    with torch.random.fork_rng():  # building it must not move the caller's random stream
        return MinkUNet(UNetConfig(1, 1, blocks=1, channels=(1,) * 9))


def _info(model: MinkUNet, source: Path, fmt: str, voxel_size: float | None,
          features: tuple[str, ...], quantize: str, given: Any) -> PretrainedInfo:
    classes = model.config.num_classes
    names = SEMANTIC_KITTI_CLASSES if classes == len(SEMANTIC_KITTI_CLASSES) else \
        tuple(f"class_{i}" for i in range(classes))
    if given is not None:
        features = tuple(str(name) for name in given)
        if len(features) != model.config.in_channels:
            raise ValueError(f"features= names {len(features)} columns {list(features)}; the "
                             f"file's model reads {model.config.in_channels}")  # fmt: skip
    spec = PointInput(SPVNAS_VOXEL_SIZE if voxel_size is None else voxel_size, features, quantize)
    size = "the voxel_size argument" if voxel_size is not None else \
        f"assumed: {SPVNAS_VOXEL_SIZE} m, SPVNAS's SemanticKITTI setting"
    return PretrainedInfo("pointcloud", "minkunet", _TASK, names, spec, str(source), fmt,
                          {"voxel_size": size})


def load_torchsparse(payload: Any, source: Path, voxel_size: float | None = None,
                     features: Any = None) -> tuple[MinkUNet, PretrainedInfo]:
    """An SPVNAS / TorchSparse MinkUNet file -> ``(model, info)``.

    ``voxel_size`` (metres) is recorded in ``info.input`` (default 0.05, SPVNAS's
    SemanticKITTI setting; the file does not say), and ``features`` (default SPVNAS's
    ``x, y, z, intensity``).

    Raises:
        ValueError: an SPVCNN/SPVNAS file, unmapped or missing keys, or shapes that do not fit.
    """
    state = _unwrap(payload)
    if state is None:
        raise ValueError(f"{source}: not a TorchSparse MinkUNet (no state dict)")
    if _is_spvcnn(state, source):
        raise ValueError(f"{source}: {SPVCNN_REFUSAL}")
    what = "an SPVNAS / TorchSparse MinkUNet"
    probe = spvnas_names(_probe())
    model = _build(state, source, what, probe.__getitem__, -1, r"stage1\.[1-9]\d*\.net\.0\.kernel")
    load_torchsparse_weights(model, state, source=source)
    return model.eval(), _info(model, source, "torchsparse", voxel_size, SPVNAS_FEATURES,
                               "round_shift", features)


def load_spconv(payload: Any, source: Path, voxel_size: float | None = None,
                features: Any = None) -> tuple[MinkUNet, PretrainedInfo]:
    """A spconv 2.x MinkUNet in edgeinfer's layout (``mirror_in_spconv``) -> ``(model, info)``.

    The file records neither voxel size nor features: ``info.input`` says ``voxel_size``
    (default 0.05), ``features`` (default ``feature_i`` placeholders, which nothing computes:
    name the columns your training used) and ``floor`` quantisation.

    Raises:
        ValueError: unmapped or missing keys, or shapes that do not fit.
    """
    state = _unwrap(payload)
    if state is None:
        raise ValueError(f"{source}: not a spconv MinkUNet (no state dict)")
    what = "a spconv MinkUNet in edgeinfer's layout"
    probe = mirror_names(_probe())
    model = _build(state, source, what, probe.__getitem__, 0,
                   r"trunk\.down\.0\.blocks\.\d+\.conv1\.layer\.weight")
    load_spconv_weights(model, state, source=source)
    unnamed = tuple(f"feature_{i}" for i in range(model.config.in_channels))
    return model.eval(), _info(model, source, "spconv", voxel_size, unnamed, "floor", features)
