"""Import checkpoints of the official temporal-shift-module code (MIT HAN lab) into ``TSMNet``.

Two layouts are read, both key renaming only (our blocks compute what theirs do):

- ``"tsm"``: files saved by its ``main.py`` from ``nn.DataParallel(TSN)`` — ``{"state_dict":
  {"module.base_model.<backbone>": ..., "module.new_fc.*"}, "arch": ...}``; MobileNetV2
  (``features.N.conv.M``) or ResNet-50 (torchvision names); shifted convolutions hold their
  weights under ``.net`` (``TemporalShift(net)``); the head is ``new_fc`` (dropout > 0) or the
  backbone's own ``classifier`` / ``fc``. Offline (bi-directional) shift.
- ``"tsm-online"``: the online demo's MobileNetV2 (``online_demo/mobilenet_v2_tsm.py``), a bare
  state dict ``features.N.conv.M`` + ``classifier``; causal shift of ``C // 8`` channels.

The frames: RGB in ``[0, 1]`` normalised with ImageNet's mean/std (the official transforms);
the model applies it (``VideoModelConfig.input_mean/std``) and ``info.input`` records it.
Temporal pooling (``_tpool`` files), non-local blocks (``.nl.`` keys) and ResNet-101 are refused.
"""

from __future__ import annotations

import re
import warnings
from pathlib import Path
from typing import Any

import torch

from .._checkpoint import load_state_strict
from .._info import FrameInput, PretrainedInfo
from .registry import create_model
from .tsm import TSMNet

__all__ = ["IMAGENET_MEAN", "IMAGENET_STD", "detect_online", "detect_tsm", "load_online",
           "load_tsm", "mobilenet_v2_keys", "resnet_keys"]

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
_TASK = "video classification"


def mobilenet_v2_keys(model: TSMNet, shifted: bool) -> dict[str, str]:
    """``our key -> official key`` for a MobileNetV2 TSMNet (``shifted``: ``.net`` on the first
    conv of each shift site, as ``TemporalShift`` wraps it)."""
    names = {"backbone.stem.0.weight": "features.0.0.weight"}
    names.update(_bn("backbone.stem.1", "features.0.1"))
    for index, block in enumerate(model.backbone.blocks):
        # ours: branch.j = (conv, bn[, relu6]); theirs: one flat Sequential conv.(3j), conv.(3j+1)
        for j in range(len(block.branch)):
            conv = f"features.{index + 1}.conv.{3 * j}"
            if j == 0 and shifted and block.shift_site:
                conv += ".net"
            names[f"backbone.blocks.{index}.branch.{j}.0.weight"] = f"{conv}.weight"
            names.update(_bn(f"backbone.blocks.{index}.branch.{j}.1",
                             f"features.{index + 1}.conv.{3 * j + 1}"))
    last = len(model.backbone.blocks) + 1
    names["backbone.neck.0.weight"] = f"features.{last}.0.weight"
    names.update(_bn("backbone.neck.1", f"features.{last}.1"))
    return names


def resnet_keys(model: TSMNet, shifted: bool) -> dict[str, str]:
    """``our key -> torchvision key`` for a ResNet TSMNet (``.net`` on each shifted conv1)."""
    names = {"backbone.stem.0.weight": "conv1.weight"}
    names.update(_bn("backbone.stem.1", "bn1"))
    depths = [3, 4, 6, 3] if model.config.arch == "resnet50" else [2, 2, 2, 2]
    index = 0
    for stage, repeats in enumerate(depths):
        for number in range(repeats):
            theirs, ours = f"layer{stage + 1}.{number}", f"backbone.blocks.{index}"
            block = model.backbone.blocks[index]
            convs = [0, 3, 6] if len(block.branch) == 8 else [0, 3]
            for j, position in enumerate(convs):
                conv = f"{theirs}.conv{j + 1}" + (".net" if j == 0 and shifted else "")
                names[f"{ours}.branch.{position}.weight"] = f"{conv}.weight"
                names.update(_bn(f"{ours}.branch.{position + 1}", f"{theirs}.bn{j + 1}"))
            if not isinstance(block.shortcut, torch.nn.Identity):
                names[f"{ours}.shortcut.0.weight"] = f"{theirs}.downsample.0.weight"
                names.update(_bn(f"{ours}.shortcut.1", f"{theirs}.downsample.1"))
            index += 1
    return names


def _bn(ours: str, theirs: str) -> dict[str, str]:
    return {f"{ours}.{k}": f"{theirs}.{k}"
            for k in ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")}


def _state_of(payload: Any) -> dict[str, Any] | None:
    state = payload.get("state_dict", payload) if isinstance(payload, dict) else None
    if not isinstance(state, dict) or not state:
        return None
    return {str(k).removeprefix("module."): v for k, v in state.items()}


def detect_tsm(payload: Any) -> bool:
    """True for a ``TSN`` state dict of the official ``main.py`` (``base_model.`` keys)."""
    state = _state_of(payload)
    return state is not None and any(k.startswith("base_model.") for k in state)


def detect_online(payload: Any) -> bool:
    """True for the online demo's bare MobileNetV2 state dict."""
    state = _state_of(payload)
    return state is not None and "features.0.0.weight" in state and "classifier.weight" in state \
        and not any(k.startswith("base_model.") for k in state)


def _refuse_variants(state: dict[str, Any], source: Path) -> None:
    if any(".nl." in key or "non_local" in key for key in state):
        raise ValueError(f"{source}: a non-local TSM (keys with '.nl.'); edgeinfer runs plain "
                         "residual-shift TSM only (no non-local blocks)")  # fmt: skip
    if "tpool" in source.name:
        raise ValueError(f"{source}: a temporal-pooling TSM ('tpool' in the file name); "
                         "edgeinfer runs TSM without temporal pooling")  # fmt: skip
    if "base_model.layer3.6.conv1.weight" in state or "base_model.layer3.6.conv1.net.weight" \
            in state:
        raise ValueError(f"{source}: a ResNet-101 TSM (shifting every other block); edgeinfer "
                         "imports MobileNetV2 and ResNet-50 TSM checkpoints")  # fmt: skip


def _from_name(source: Path, key: str, default: int) -> int:
    found = re.search(rf"{key}(\d+)", source.name)
    return int(found.group(1)) if found else default


def _import(state: dict[str, Any], source: Path, name: str, head: str, shifted: bool,
            config: dict[str, Any]) -> TSMNet:
    classes = state[f"{head}.weight"].shape[0]
    model = create_model(name, num_classes=classes, input_mean=IMAGENET_MEAN,
                         input_std=IMAGENET_STD, **config)  # fmt: skip
    keys = (mobilenet_v2_keys if name == "tsm_mobilenetv2" else resnet_keys)(model, shifted)
    keys["head.1.weight"], keys["head.1.bias"] = f"{head}.weight", f"{head}.bias"
    expected = set(keys.values())
    renamed = {ours: state[theirs] for ours, theirs in keys.items() if theirs in state}
    extra = sorted(set(state) - expected)
    if extra:  # a key of theirs we would drop: refuse rather than load half a model
        raise ValueError(f"{source}: keys this importer does not map: {extra[:5]} "
                         f"({len(extra)} in all); not a {name} checkpoint of the official code")
    missing = sorted(theirs for theirs in expected if theirs not in state)
    if missing:
        raise ValueError(f"{source}: missing official keys {missing[:5]} ({len(missing)} in all)")
    load_state_strict(model, {k: v.float() if v.is_floating_point() else v
                              for k, v in renamed.items()}, source, f"a {name}")  # fmt: skip
    return model.eval()


def _check_shift(trained: str, shift: str | None) -> str:
    if shift is None:
        return trained
    if shift != trained:
        warnings.warn(f"this checkpoint was trained with shift={trained!r}; running it with "
                      f"shift={shift!r} changes its accuracy (retrain or fine-tune for it)",
                      stacklevel=4)  # fmt: skip
    return shift


def _info(model: TSMNet, state_name: str, source: Path, fmt: str) -> PretrainedInfo:
    classes = tuple(f"class_{i}" for i in range(model.config.num_classes))
    return PretrainedInfo("video", state_name, _TASK, classes,
                          FrameInput((224, 224), "RGB", IMAGENET_MEAN, IMAGENET_STD),
                          str(source), fmt)  # fmt: skip


def load_tsm(payload: Any, source: Path, shift: str | None) -> tuple[TSMNet, PretrainedInfo]:
    """A ``TSN``/``TSM`` checkpoint of the official ``main.py`` -> ``(model, info)``.

    Raises:
        ValueError: an unsupported variant or backbone, or keys that do not map (named).
    """
    state = _state_of(payload)
    if state is None:
        raise ValueError(f"{source}: not an official TSM checkpoint (no state_dict)")
    _refuse_variants(state, source)
    if any(k.startswith("base_model.features.") for k in state):
        name = "tsm_mobilenetv2"
    elif "base_model.layer4.2.conv3.weight" in state:
        name = "tsm_resnet50"
    else:
        raise ValueError(f"{source}: an official TSM checkpoint of a backbone edgeinfer does not "
                         "import (MobileNetV2 and ResNet-50 are supported)")  # fmt: skip
    shifted = any(k.endswith(".net.weight") for k in state)
    head = "new_fc" if "new_fc.weight" in state else \
        "base_model.classifier" if name == "tsm_mobilenetv2" else "base_model.fc"
    if f"{head}.weight" not in state:
        raise ValueError(f"{source}: no classifier ({head}.weight) in the checkpoint")
    inner = {(k if k.startswith("new_fc.") else k.removeprefix("base_model.")): v
             for k, v in state.items()}
    head = head.removeprefix("base_model.")
    trained = "bidirectional" if shifted else "none"
    config = {"shift": _check_shift(trained, shift), "dropout": 0.0,
              "n_segment": _from_name(source, "segment", 8),
              "fold_div": _from_name(source, "shift", 8)}  # fmt: skip
    model = _import(inner, source, name, head, shifted, config)
    return model, _info(model, name, source, "tsm")


def load_online(payload: Any, source: Path, shift: str | None) -> tuple[TSMNet, PretrainedInfo]:
    """The online demo's MobileNetV2 state dict -> ``(model, info)`` (causal shift)."""
    state = _state_of(payload)
    if state is None:
        raise ValueError(f"{source}: not an online-demo TSM state dict")
    config = {"shift": _check_shift("causal", shift), "dropout": 0.0, "fold_div": 8}
    model = _import(state, source, "tsm_mobilenetv2", "classifier", False, config)
    return model, _info(model, "tsm_mobilenetv2", source, "tsm-online")
