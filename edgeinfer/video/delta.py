"""Changed-pixel updates for a static camera (DeltaCNN / Skip-Conv style).

Most pixels of a fixed camera's frame equal the previous frame's. :class:`DeltaRunner` keeps, for
the first ``stages`` stages of the backbone (MobileNetV2: the stem conv, then the leading
inverted-residual blocks without an identity path; ResNet: the 7x7 stem conv), every layer's
pre-activation map, and on each frame

1. compares the frame with a *reference image*: a pixel is active when
   ``max_c |frame - reference| > threshold``; only active pixels are copied into the reference;
2. runs the layers on the change only: the conv of the change is added to the cached
   pre-activation where it can be non-zero, and the activation (batch norm is folded into the
   conv) is recomputed there only; the change of the activation is the next layer's input —
   sparse all the way through the prefix, exact at every layer. Two ways, by
   ``DeltaConfig.method``: ``"box"`` (default, :mod:`~edgeinfer.video.delta_box`) skips every
   tile outside the bounding box of each image's change and convolves the box densely;
   ``"im2col"``/``"kernel_map"`` (:func:`~edgeinfer.video.delta_conv.update_layer`) take
   exactly the changed sites through a ``common_sparse`` kernel map to the outputs whose
   receptive field holds one. When a layer's reached outputs (its boxes) exceed
   ``dense_above`` of its sites (scattered changes dilate quickly through 3x3 convs) that
   layer and the rest of the prefix are recomputed densely from the cached activations
   instead (also exact);
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

Cost: each sparse layer is ``O(M * K * C_in * C_out)`` for ``M`` reached outputs (the box's
sites for ``"box"``) plus ``O(H*W)`` for the changed mask of the frame. The row methods pay
per site for gathers, scatters and kernel-map building, several times a dense site; the box
pays only for the unchanged sites inside the box. So the gain depends on how clustered the
changes are (moving objects: a blob, where the box wins; sensor noise: scattered pixels,
which a threshold above the noise removes).
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator
from dataclasses import dataclass

import torch
from torch.nn import functional

from .delta_box import change_box, out_box, update_box
from .delta_conv import DELTA_METHODS, Grid, activate, update_layer
from .delta_prefix import DeltaPrefix, delta_prefix, max_delta_stages
from .shift import shift_step
from .tsm import TSMNet, stream_frame

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
        method: ``"box"`` (dense conv over the bounding box of each image's change, see
            :mod:`~edgeinfer.video.delta_box`), ``"im2col"`` (the changed sites' gathered
            patches, one GEMM per layer) or ``"kernel_map"`` (``common_sparse.sparse_conv``,
            one GEMM per kernel offset).
        dense_above: when a frame's change reaches more than this fraction of a layer's output
            sites (its boxes' sites with ``"box"``), that layer and the rest of the prefix run
            densely on that frame (exact either way; a speed knob: a reached site costs a few
            times a dense one with the row methods, somewhat more than one with ``"box"``).

    Raises:
        TypeError / ValueError: a field of the wrong type or out of range.
    """

    threshold: float = 0.0
    stages: int | None = None
    refresh_every: int | None = None
    method: str = "box"
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
        self._undo: list | None = None  # the open transaction's undo log (see _transaction)
        self.reset()

    def reset(self) -> None:
        """Forget the stream: the next frame is frame 0 (dense) and may have any size."""
        self._reference: torch.Tensor | None = None  # (B, 3, H, W), laid out as frame 0
        self._maps: list[torch.Tensor] = []  # pre-activation (B, C, h, w) per layer
        self._caches: list[torch.Tensor] = []  # the same as (B*h*w, C) rows (views)
        self._grids: list[Grid] = []  # input grid per layer, then the output grid
        self._buffers: tuple[torch.Tensor, ...] = ()
        self._frame_shape: tuple[int, ...] | None = None
        self.frames_seen = 0

    @property
    def reference(self) -> torch.Tensor | None:
        """The reference image ``(B, 3, H, W)`` the caches correspond to (a copy), or None."""
        return None if self._reference is None else self._reference.clone()

    def step(self, frame: torch.Tensor) -> torch.Tensor:
        """Logits ``(B, num_classes)`` of frame ``(3, H, W)`` (B = 1) or ``(B, 3, H, W)``.

        Raises:
            TypeError: ``frame`` not a floating tensor.
            ValueError: wrong rank/channels, a size differing from frame 0 (``reset()``), or
                NaN/inf values (reported before the runner changes: the next good frame
                continues the stream as if the bad one never came).
        """
        with torch.inference_mode(), self._transaction():
            return self._dense_rest(self.step_prefix(frame))

    _STATE = ("_reference", "_maps", "_caches", "_grids", "_buffers", "_frame_shape",
              "frames_seen", "last_stats")  # fmt: skip

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[None]:
        """All of the block's state changes, or none: when the block raises (a fault in the
        network, not bad input, which is refused before anything changes), the caches are
        put back from the undo log and the attributes restored, so the next frame continues
        the stream as if the failed one never came."""
        if self._undo is not None:  # step -> step_prefix: the outer block owns the change
            yield
            return
        saved = {name: getattr(self, name) for name in self._STATE}
        saved["_maps"], saved["_caches"] = list(self._maps), list(self._caches)
        self._undo = []
        try:
            yield
        except BaseException:
            for entry in reversed(self._undo):
                if len(entry) == 3:  # rows of a row cache
                    entry[0].index_copy_(0, entry[1], entry[2])
                else:  # a window of a map or of the reference
                    entry[0].copy_(entry[1])
            for name, value in saved.items():
                setattr(self, name, value)
            raise
        finally:
            self._undo = None

    def step_prefix(self, frame: torch.Tensor) -> torch.Tensor:
        """Advance only the early stages by one frame: the part :meth:`step` runs on changes.

        Returns the prefix output ``(B, C, h, w)`` that :meth:`step` feeds to the rest of the
        network (what the model's stem and first ``stages - 1`` blocks give on the reference
        image). The shift buffers of the rest do not advance, so a stream should use either
        :meth:`step` or this (e.g. to time the delta path alone), not both.

        Raises:
            TypeError / ValueError: as :meth:`step`.
        """
        # NaN/inf are checked below on the frame or its change score, before any state changes
        frame = stream_frame(self.model, frame, self._frame_shape, finite=False)
        shape = tuple(frame.shape)
        frame = self.model.normalize(frame)  # the deltas of normalised frames: still exact
        every = self.config.refresh_every
        dense = self._frame_shape is None or (every is not None and self.frames_seen % every == 0)
        with torch.inference_mode(), self._transaction():
            x = self._dense_prefix(frame) if dense else self._sparse_prefix(frame)
            self._frame_shape = shape
            self.frames_seen += 1
        return x

    def _check_finite(self, frame: torch.Tensor, values: torch.Tensor) -> None:
        # values: the frame or its change score; checked before any state changes, so a
        # corrupt frame is reported and the stream can go on from the last good one
        if bool(torch.isfinite(values).all()):
            return
        pixels = int((~torch.isfinite(frame)).any(dim=1).sum())
        raise ValueError(
            f"frame {self.frames_seen} has non-finite values (NaN or inf) at {pixels} pixels; "
            "the runner's state is unchanged: drop or repair the frame and go on"
        )

    def _dense_prefix(self, frame: torch.Tensor) -> torch.Tensor:
        self._check_finite(frame, frame)
        batch, _, height, width = frame.shape
        if self._frame_shape is None:
            self._buffers = self.model.init_buffers(
                batch, height, width, dtype=frame.dtype, device=frame.device
            )
        changed = 1.0
        if self._reference is not None:
            score = self._change_score(frame)
            changed = int(torch.count_nonzero(score > self.config.threshold)) / score.numel()
        # owned, in the frame's layout (a frame from an HWC array stays channels-last), so the
        # per-frame difference is one pass over matching memory
        self._reference = frame.clone()
        self._maps, self._caches, self._grids = [], [], [Grid(batch, height, width)]
        x = frame.contiguous(memory_format=torch.channels_last)
        for layer in self.prefix.layers:
            z = self._keep(layer.dense(x))
            self._grids.append(Grid(batch, z.shape[2], z.shape[3]))
            x = activate(z, layer.act)
        totals = tuple(grid.sites for grid in self._grids[1:])
        self.last_stats = DeltaStats(
            self.frames_seen, True, changed, self.prefix.names, totals, totals, len(totals)
        )
        return x

    def _keep(self, z: torch.Tensor, index: int | None = None) -> torch.Tensor:
        # store z (B, C, h, w) channels_last as layer index's cache (appended when None), with
        # its (B*h*w, C) row view for the row methods: both views of one tensor
        z = z.contiguous(memory_format=torch.channels_last)
        rows = z.permute(0, 2, 3, 1).reshape(-1, z.shape[1])
        if index is None:
            self._maps.append(z)
            self._caches.append(rows)
        else:
            self._maps[index], self._caches[index] = z, rows
        return z

    def _change_score(self, frame: torch.Tensor) -> torch.Tensor:
        # max_c |frame - reference| per pixel, (B, H, W); a pixel is applied when above threshold
        assert self._reference is not None
        diff = torch.sub(frame, self._reference).abs_()
        batch, channels, height, width = diff.shape
        if channels > 1 and diff.is_contiguous(memory_format=torch.channels_last):
            # channels innermost: a max-pool over each pixel's run of C values is one
            # vectorised pass (a max over a dim of 3 is several times slower)
            runs = diff.permute(0, 2, 3, 1).reshape(1, 1, -1)
            return functional.max_pool1d(runs, channels, channels).view(batch, height, width)
        return diff.amax(dim=1)

    def _sparse_prefix(self, frame: torch.Tensor) -> torch.Tensor:
        score = self._change_score(frame)  # non-finite exactly where the frame is
        self._check_finite(frame, score)
        if self.config.method == "box":
            active, changed = self._update_boxes(frame, score)
        else:
            mask = score > self.config.threshold  # the pixels to apply
            changed = int(torch.count_nonzero(mask))
            active = self._update_rows(frame, mask)
        layers = self.prefix.layers
        totals = tuple(grid.sites for grid in self._grids[1:])
        dense_layers = len(layers) - len(active)
        if dense_layers:
            self._recompute_from(len(active))
        self.last_stats = DeltaStats(
            self.frames_seen, False, changed / score.numel(), self.prefix.names,
            tuple(active) + totals[len(active):], totals, dense_layers,
        )
        return self._activation(len(layers) - 1)  # channels_last: no transposing copy

    def _update_rows(self, frame: torch.Tensor, mask: torch.Tensor) -> list[int]:
        # im2col / kernel_map: the change as rows of changed sites; returns active sites per
        # layer updated (fewer than the layers when one went over dense_above)
        assert self._reference is not None
        rows = torch.nonzero(mask.reshape(-1)).reshape(-1)
        diff = frame - self._reference
        planes = diff.transpose(0, 1).reshape(diff.shape[1], -1)  # (3, B*H*W), a view at B=1
        delta = planes.index_select(1, rows).t().contiguous()  # (P, 3)
        self._reference = torch.where(mask.unsqueeze(1), frame, self._reference)
        active: list[int] = []
        for index, layer in enumerate(self.prefix.layers):
            if rows.numel():
                result = update_layer(
                    layer, self._caches[index], delta, rows, self._grids[index],
                    self.config.method, self.config.dense_above, self._undo,
                )
                if result is None:
                    break
                rows, delta = result
            active.append(int(rows.numel()))
        return active

    def _update_boxes(self, frame: torch.Tensor, score: torch.Tensor) -> tuple[list[int], int]:
        # box: per image, the change as a dense crop over its bounding box (delta_box); the
        # reference changes inside the boxes only. Returns the active sites per layer updated
        # and the number of applied pixels (all inside the boxes)
        threshold = self.config.threshold
        boxes = [change_box(image_score, threshold) for image_score in score]
        deltas: list[torch.Tensor | None] = []
        changed = 0
        for b, box in enumerate(boxes):
            if box is None:
                deltas.append(None)
                continue
            window = (slice(b, b + 1), slice(None), slice(box.top, box.bottom),
                      slice(box.left, box.right))
            new, reference = frame[window], self._reference[window]  # (1, 3, h, w) views
            applied = score[window[0], None, window[2], window[3]] > threshold
            changed += int(torch.count_nonzero(applied))
            if self._undo is not None:
                self._undo.append((reference, reference.clone()))
            if threshold == 0:
                # a pixel that is not applied equals its reference in every channel: the
                # box's difference is the change and its new pixels the new reference (this
                # skips two passes that broadcast the mask over the channels, a slow pattern)
                deltas.append(new - reference)
                reference.copy_(new)
            else:
                deltas.append((new - reference) * applied)
                reference.copy_(torch.where(applied, new, reference))
        active: list[int] = []
        for index, layer in enumerate(self.prefix.layers):
            grid = self._grids[index + 1]
            outs = [None if box is None else out_box(box, grid.height, grid.width,
                                                     layer.kernel, layer.stride)
                    for box in boxes]
            sites = sum(out.sites for out in outs if out is not None)
            if sites > self.config.dense_above * grid.sites:
                break
            cache = self._maps[index]
            for b, (box, out) in enumerate(zip(boxes, outs, strict=True)):
                if box is not None and out is not None:
                    deltas[b] = update_box(layer, cache[b : b + 1], deltas[b], box, out,
                                           self._undo)  # fmt: skip
            boxes = outs
            active.append(sites)
        return active, changed

    def _activation(self, index: int) -> torch.Tensor:
        # act(z) of layer ``index`` (-1: the reference image) as (B, C, h, w)
        if index < 0:
            assert self._reference is not None
            return self._reference
        return activate(self._maps[index], self.prefix.layers[index].act)

    def _recompute_from(self, start: int) -> None:
        # dense pre-activations of layers start.. from the (up to date) layer start - 1
        x = self._activation(start - 1)
        for index in range(start, len(self.prefix.layers)):
            layer = self.prefix.layers[index]
            z = self._keep(layer.dense(x), index)
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

