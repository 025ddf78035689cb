"""Changed-pixel updates for a static camera (DeltaCNN / Skip-Conv style).

Most pixels of a fixed camera's frame equal the previous frame's. :class:`DeltaRunner` keeps, for
the first ``stages`` stages of the backbone (MobileNetV2: the stem conv, then the leading
inverted-residual blocks without an identity path; ResNet: the 7x7 stem conv), every layer's
pre-activation map, and on each frame

1. compares the frame with a *reference image*: a pixel is active when
   ``max_c |frame - reference| > threshold``; only active pixels are copied into the reference;
2. runs the layers on the change only (:func:`~edgeinfer.video.delta_conv.update_layer`): each
   conv of the change goes through a ``common_sparse`` kernel map from the changed sites to the
   outputs whose receptive field holds one, is added to the cached pre-activation, and the
   activation (batch norm is folded into the conv) is recomputed at those outputs only; the
   change of the activation is the next layer's input — sparse all the way through the
   prefix, exact at every layer. When a layer's reached outputs exceed ``dense_above`` of its
   sites (scattered changes dilate quickly through 3x3 convs) that layer and the rest of the
   prefix are recomputed densely from the cached activations instead (also exact);
3. runs the rest of the network densely on the prefix's cached output (with the shift buffers
   of a causal TSM carried, as :class:`~edgeinfer.video.StreamingRunner` does).

Why a per-pixel reference: the caches always equal the dense prefix of the reference image (up
to float rounding), and every reference pixel is within ``threshold`` of the current frame, so
the error is that of perturbing the input by at most ``threshold`` per pixel, *not* a sum of
skipped changes (a pixel drifting slowly by ``threshold / 2`` per frame is caught when its total
change passes ``threshold``). With ``threshold=0`` every changed pixel is applied and the logits
equal the dense model's up to float rounding, which accumulates in the caches over frames;
``refresh_every=N`` recomputes the prefix densely (and resets the reference) every ``N`` frames
to bound that drift.

Cost: each sparse layer is ``O(M * K * C_in * C_out)`` for ``M`` reached outputs plus
``O(H*W)`` bookkeeping (the changed mask and its max-pool). A 3x3 layer reaches up to 9x the
sites of its input, so the gain depends on how clustered the changes are (moving objects: a
blob; sensor noise: scattered pixels, which a threshold above the noise removes).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from .delta_conv import DELTA_METHODS, FoldedConv, Grid, activate, fold_conv_bn, update_layer
from .mobilenetv2 import MobileNetV2Backbone
from .resnet import ResNetBackbone
from .shift import shift_step
from .tsm import TSMNet, check_frames

__all__ = ["DeltaConfig", "DeltaPrefix", "DeltaRunner", "DeltaStats", "delta_prefix",
           "max_delta_stages"]


@dataclass(frozen=True)
class DeltaConfig:
    """How :class:`DeltaRunner` skips unchanged pixels.

    Attributes:
        threshold: a pixel is updated when ``max_c |frame - reference| > threshold``, in the
            frame's units (0: every changed pixel, dense-equivalent).
        stages: leading backbone stages run on changes (see :func:`max_delta_stages`);
            ``None``: as many as the backbone allows.
        refresh_every: recompute the prefix densely every ``N`` frames (frame 0 always is);
            ``None``: only on frame 0.
        method: ``"im2col"`` (gathered patches, one GEMM per layer) or ``"kernel_map"``
            (``common_sparse.sparse_conv``, one GEMM per kernel offset).
        dense_above: when a frame's change reaches more than this fraction of a layer's output
            sites, that layer and the rest of the prefix run densely on that frame (exact
            either way; a speed knob: a changed site costs a few times a dense one).

    Raises:
        TypeError / ValueError: a field of the wrong type or out of range.
    """

    threshold: float = 0.0
    stages: int | None = None
    refresh_every: int | None = None
    method: str = "im2col"
    dense_above: float = 0.3

    def __post_init__(self) -> None:
        value = self.threshold
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise TypeError(f"threshold must be a float >= 0; got {type(value).__name__}")
        if not math.isfinite(value) or value < 0:
            raise ValueError(f"threshold must be a finite float >= 0 (0 = exact); got {value}")
        for name in ("stages", "refresh_every"):
            value = getattr(self, name)
            if value is None:
                continue
            if isinstance(value, bool) or not isinstance(value, int):
                raise TypeError(f"{name} must be None or an int >= 1; got {value!r}")
            if value < 1:
                raise ValueError(f"{name} must be None or an int >= 1; got {value}")
        value = self.dense_above
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1:
            raise ValueError(f"dense_above must be a float in [0, 1]; got {value!r}")
        if self.method not in DELTA_METHODS:
            raise ValueError(f"method must be one of {list(DELTA_METHODS)}; got {self.method!r}")


@dataclass(frozen=True)
class DeltaStats:
    """What the last :meth:`DeltaRunner.step` computed.

    Attributes:
        frame: index of the frame in the stream.
        dense: True when the prefix was recomputed densely (frame 0 or a refresh).
        changed_fraction: fraction of pixels whose change passed the threshold (1.0 on frame 0).
        layer_names: the sparse layers, e.g. ``("stem", "blocks.0.0", ...)``.
        active_sites: output sites recomputed per layer (all of them on a dense layer).
        total_sites: output sites per layer.
        dense_layers: prefix layers computed densely on this frame (all on a dense frame;
            the trailing ones after a change reached more than ``dense_above``).
    """

    frame: int
    dense: bool
    changed_fraction: float
    layer_names: tuple[str, ...]
    active_sites: tuple[int, ...]
    total_sites: tuple[int, ...]
    dense_layers: int

    @property
    def active_fraction(self) -> tuple[float, ...]:
        """``active_sites / total_sites`` per layer."""
        return tuple(a / t for a, t in zip(self.active_sites, self.total_sites, strict=True))


@dataclass(frozen=True, eq=False)
class DeltaPrefix:
    """The sparse part of a backbone: ``layers`` (named ``names``), then ``tail`` (dense, e.g.
    ResNet's max-pool) and the blocks from ``first_block`` on, run densely."""

    layers: tuple[FoldedConv, ...]
    names: tuple[str, ...]
    tail: nn.Module
    first_block: int


def _conv_bn_act(seq: nn.Module, name: str) -> FoldedConv:
    if not isinstance(seq, nn.Sequential) or not isinstance(seq[0], nn.Conv2d) \
            or not isinstance(seq[1], nn.BatchNorm2d):
        raise ValueError(f"{name} is not a (conv, batch norm[, activation]) sequence: {seq}")
    act = "none"
    if len(seq) > 2:
        act = "relu6" if isinstance(seq[2], nn.ReLU6) else "relu"
    return fold_conv_bn(seq[0], seq[1], act)


def max_delta_stages(backbone: nn.Module) -> int:
    """How many leading stages can run on changes: the stem, then (MobileNetV2) each leading
    block with neither an identity path nor a temporal shift (a shift mixes in the previous
    frame's features, so its input changes everywhere).

    Raises:
        TypeError: a backbone other than MobileNetV2 / ResNet.
    """
    if isinstance(backbone, ResNetBackbone):
        return 1
    if not isinstance(backbone, MobileNetV2Backbone):
        raise TypeError(
            f"backbone must be a MobileNetV2Backbone or ResNetBackbone; got {type(backbone)}"
        )
    stages = 1
    for block in backbone.blocks:
        if block.has_identity or block.shift_site:
            break
        stages += 1
    return stages


def delta_prefix(backbone: nn.Module, stages: int | None = None) -> DeltaPrefix:
    """Fold the first ``stages`` stages of an eval-mode ``backbone`` for :func:`update_layer`.

    Raises:
        TypeError: unsupported backbone.
        ValueError: ``stages`` above :func:`max_delta_stages` (the limit and why is said).
    """
    limit = max_delta_stages(backbone)
    stages = limit if stages is None else stages
    if not 1 <= stages <= limit:
        raise ValueError(
            f"stages must be in [1, {limit}] for this backbone; got {stages}. Stage "
            f"{limit + 1} is a block with an identity path or a temporal shift (or ResNet's "
            "first block after the max-pool), which this runner computes densely"
        )
    if isinstance(backbone, ResNetBackbone):
        stem = _conv_bn_act(backbone.stem[:3], "stem")
        return DeltaPrefix((stem,), ("stem",), backbone.stem[3:], 0)
    layers, names = [_conv_bn_act(backbone.stem, "stem")], ["stem"]
    for index in range(stages - 1):
        for part, seq in enumerate(backbone.blocks[index].branch):
            layers.append(_conv_bn_act(seq, f"blocks.{index}.branch.{part}"))
            names.append(f"blocks.{index}.{part}")
    return DeltaPrefix(tuple(layers), tuple(names), nn.Identity(), stages - 1)


def _channels_last(x: torch.Tensor) -> torch.Tensor:
    # (B, C, H, W) -> (B*H*W, C): a view when x is in channels_last memory format, else a copy
    return x.permute(0, 2, 3, 1).reshape(-1, x.shape[1])


class DeltaRunner:
    """Stream frames of a static camera through a causal TSM or TSN model, updating the early
    stages only where pixels changed (see the module docstring).

    ``step(frame)`` returns the logits that :class:`~edgeinfer.video.StreamingRunner` returns
    for the *reference* frames (equal to the input frames when ``threshold == 0``, up to float
    rounding). Runs under ``torch.inference_mode``; the BN folding happens at construction, so
    later weight changes need a new runner.

    Raises:
        TypeError: ``model`` not a :class:`TSMNet` or ``config`` not a :class:`DeltaConfig`.
        ValueError: bidirectional or training-mode model; ``config.stages`` too large.
    """

    def __init__(self, model: TSMNet, config: DeltaConfig | None = None) -> None:
        if not isinstance(model, TSMNet):
            raise TypeError(f"model must be a TSMNet (from create_model); got {type(model)}")
        config = DeltaConfig() if config is None else config
        if not isinstance(config, DeltaConfig):
            raise TypeError(f"config must be a DeltaConfig; got {type(config).__name__}")
        if model.config.shift == "bidirectional":
            raise ValueError(
                "DeltaRunner streams, so it needs shift='causal' or 'none'; this model is "
                "'bidirectional'. Rebuild with create_model(..., shift='causal') and load the "
                "same state_dict"
            )
        if model.training:
            raise ValueError("model is in training mode; call model.eval() before DeltaRunner")
        self.model, self.config = model, config
        with torch.no_grad():
            self.prefix = delta_prefix(model.backbone, config.stages)
        self.last_stats: DeltaStats | None = None
        self.reset()

    def reset(self) -> None:
        """Forget the stream: the next frame is frame 0 (dense) and may have any size."""
        self._reference: torch.Tensor | None = None  # (B*H*W, 3) channels-last
        self._caches: list[torch.Tensor] = []  # pre-activation (B*h*w, C) per layer
        self._grids: list[Grid] = []  # input grid per layer, then the output grid
        self._buffers: tuple[torch.Tensor, ...] = ()
        self._frame_shape: tuple[int, ...] | None = None
        self.frames_seen = 0

    @property
    def reference(self) -> torch.Tensor | None:
        """The reference image ``(B, 3, H, W)`` the caches correspond to (a copy), or None."""
        if self._reference is None:
            return None
        grid = self._grids[0]
        image = self._reference.reshape(grid.batch, grid.height, grid.width, 3)
        return image.permute(0, 3, 1, 2).clone(memory_format=torch.contiguous_format)

    def step(self, frame: torch.Tensor) -> torch.Tensor:
        """Logits ``(B, num_classes)`` of frame ``(3, H, W)`` (B = 1) or ``(B, 3, H, W)``.

        Raises:
            TypeError: ``frame`` not a floating tensor.
            ValueError: wrong rank/channels, or a size differing from frame 0 (``reset()``).
        """
        if isinstance(frame, torch.Tensor) and frame.dim() == 3:
            frame = frame.unsqueeze(0)
        if self._frame_shape is None:
            check_frames(frame, "frame", "(3, H, W) or (B, 3, H, W)")
        elif not isinstance(frame, torch.Tensor) or tuple(frame.shape) != self._frame_shape:
            got = tuple(frame.shape) if isinstance(frame, torch.Tensor) else type(frame).__name__
            raise ValueError(
                f"frame size changed mid-stream: expected {self._frame_shape} as on frame 0, got "
                f"{got}; resize frames to one size or call reset() first"
            )
        every = self.config.refresh_every
        dense = self._frame_shape is None or (every is not None and self.frames_seen % every == 0)
        with torch.inference_mode():
            x = self._dense_prefix(frame) if dense else self._sparse_prefix(frame)
            logits = self._dense_rest(x)
        self._frame_shape = tuple(frame.shape)
        self.frames_seen += 1
        return logits

    def _dense_prefix(self, frame: torch.Tensor) -> torch.Tensor:
        batch, _, height, width = frame.shape
        if self._frame_shape is None:
            self._buffers = self.model.init_buffers(
                batch, height, width, dtype=frame.dtype, device=frame.device
            )
        changed = 1.0
        current = _channels_last(frame)
        if self._reference is not None:
            score = (current - self._reference).abs().amax(dim=1)
            changed = float((score > self.config.threshold).float().mean())
        # owned, row-major (B*H*W, 3): updated in place on later frames
        self._reference = current.clone(memory_format=torch.contiguous_format)
        self._caches, self._grids = [], [Grid(batch, height, width)]
        x = frame.contiguous(memory_format=torch.channels_last)  # caches become views of z
        for layer in self.prefix.layers:
            z = layer.dense(x)
            self._caches.append(_channels_last(z))
            self._grids.append(Grid(batch, z.shape[2], z.shape[3]))
            x = activate(z, layer.act)
        totals = tuple(grid.sites for grid in self._grids[1:])
        self.last_stats = DeltaStats(
            self.frames_seen, True, changed, self.prefix.names, totals, totals, len(totals)
        )
        return x

    def _sparse_prefix(self, frame: torch.Tensor) -> torch.Tensor:
        assert self._reference is not None
        current = _channels_last(frame)
        diff = current - self._reference  # (B*H*W, 3)
        rows = torch.nonzero(diff.abs().amax(dim=1) > self.config.threshold).reshape(-1)
        self._reference.index_copy_(0, rows, current.index_select(0, rows))
        delta = diff.index_select(0, rows)
        changed = rows.numel() / max(1, diff.shape[0])
        layers, active = self.prefix.layers, []
        for index, layer in enumerate(layers):
            if rows.numel():
                result = update_layer(
                    layer, self._caches[index], delta, rows, self._grids[index],
                    self.config.method, self.config.dense_above,
                )
                if result is None:
                    break
                rows, delta = result
            active.append(int(rows.numel()))
        totals = tuple(grid.sites for grid in self._grids[1:])
        dense_layers = len(layers) - len(active)
        if dense_layers:
            self._recompute_from(len(active))
        self.last_stats = DeltaStats(
            self.frames_seen, False, changed, self.prefix.names,
            tuple(active) + totals[len(active):], totals, dense_layers,
        )
        return self._activation(len(layers) - 1)  # channels_last: no transposing copy

    def _activation(self, index: int) -> torch.Tensor:
        # act(z) of layer ``index`` (-1: the reference image) as (B, C, h, w), channels_last
        if index < 0:
            cache, grid = self._reference, self._grids[0]
        else:
            cache = activate(self._caches[index], self.prefix.layers[index].act)
            grid = self._grids[index + 1]
        return cache.reshape(grid.batch, grid.height, grid.width, -1).permute(0, 3, 1, 2)

    def _recompute_from(self, start: int) -> None:
        # dense pre-activations of layers start.. from the (up to date) layer start - 1
        x = self._activation(start - 1)
        for index in range(start, len(self.prefix.layers)):
            layer = self.prefix.layers[index]
            z = layer.dense(x)
            self._caches[index] = _channels_last(z)
            x = activate(z, layer.act)

    def _dense_rest(self, x: torch.Tensor) -> torch.Tensor:
        # the tail of the stem and the remaining blocks, as functional.stream_step runs them
        backbone, fold_div = self.model.backbone, self.model.config.fold_div
        x = self.prefix.tail(x)
        remaining, new_buffers = iter(self._buffers), []
        for block in backbone.blocks[self.prefix.first_block:]:
            shifted = x
            if self._buffers and block.shift_site:
                shifted, cached = shift_step(x, next(remaining), fold_div)
                new_buffers.append(cached)
            x = block(x, shifted)
        self._buffers = tuple(new_buffers)
        return self.model.head(backbone.neck(x).mean(dim=(2, 3)))

