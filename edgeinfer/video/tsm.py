"""TSM / TSN video classifier: a 2-D backbone whose residual branches see shifted time.

``TSMNet`` holds the backbone, the classifier head and the config; the math lives in
:mod:`edgeinfer.video.functional`. The same weights run offline (a clip of ``T`` frames, per-frame
logits averaged) and, with ``shift="causal"``, online one frame at a time (:meth:`TSMNet.step`).
"""

from __future__ import annotations

import torch
from torch import nn

from .config import VideoModelConfig
from .functional import buffer_shapes, clip_frame_logits, shift_sites, stream_step
from .mobilenetv2 import MobileNetV2Backbone
from .resnet import ResNetBackbone
from .shift import check_fold

__all__ = ["TSMNet", "build_backbone", "check_frames", "stream_frame"]


def build_backbone(config: VideoModelConfig) -> nn.Module:
    """The backbone named by ``config.arch`` at ``config.width``, freshly initialised."""
    if config.arch == "mobilenetv2":
        return MobileNetV2Backbone(config.width)
    return ResNetBackbone(config.arch, config.width)


def _init_weights(module: nn.Module) -> None:
    for layer in module.modules():
        if isinstance(layer, nn.Conv2d):
            nn.init.kaiming_normal_(layer.weight, mode="fan_out", nonlinearity="relu")
        elif isinstance(layer, nn.BatchNorm2d):
            nn.init.ones_(layer.weight)
            nn.init.zeros_(layer.bias)
        elif isinstance(layer, nn.Linear):
            nn.init.normal_(layer.weight, 0.0, 0.01)
            nn.init.zeros_(layer.bias)


def _describe(x: object) -> str:
    if isinstance(x, torch.Tensor):
        return f"{x.dtype} tensor of shape {tuple(x.shape)}"
    return type(x).__name__


def check_frames(x: object, name: str, layout: str, *, finite: bool = True) -> torch.Tensor:
    """Return ``x`` if it is a non-empty, finite, floating ``(B, 3, H, W)`` tensor.

    ``finite=False`` leaves the NaN/inf check to the caller; it is also skipped while tracing
    or exporting (a data-dependent check does not trace).

    Raises:
        TypeError: not a floating tensor.
        ValueError: not 4-D with 3 colour channels, an empty batch, or NaN/inf values (they
            would poison every later frame of a stream through the shift buffers).
    """
    if not isinstance(x, torch.Tensor) or not x.is_floating_point():
        raise TypeError(f"{name} must be a floating tensor {layout}; got {_describe(x)}")
    if x.dim() != 4 or x.shape[1] != 3 or x.shape[0] == 0 or x.shape[2] == 0 or x.shape[3] == 0:
        raise ValueError(
            f"{name} must have shape {layout} with 3 colour channels; got {tuple(x.shape)}"
        )
    if not finite or torch.jit.is_tracing() or torch.compiler.is_compiling():
        return x
    good = torch.isfinite(x.detach())
    if not bool(good.all()):
        pixels = int((~good).any(dim=1).sum())
        raise ValueError(
            f"{name} has non-finite values (NaN or inf) at {pixels} pixels; nothing was "
            "computed or kept: drop or repair it and go on"
        )
    return x


def stream_frame(
    model: nn.Module, frame: object, first_shape: tuple[int, ...] | None, *, finite: bool = True
) -> torch.Tensor:
    """One streamed frame ``(3, H, W)`` or ``(B, 3, H, W)`` checked (see :func:`check_frames`),
    held to the stream's ``first_shape`` (None on frame 0) and cast to ``model``'s dtype:
    the eager runners' shared front door. Returns ``(B, 3, H, W)``.

    Raises:
        TypeError / ValueError: as :func:`check_frames`, or a size differing from frame 0.
    """
    if isinstance(frame, torch.Tensor) and frame.dim() == 3:
        frame = frame.unsqueeze(0)
    frame = check_frames(frame, "frame", "(3, H, W) or (B, 3, H, W)", finite=finite)
    if first_shape is not None and tuple(frame.shape) != first_shape:
        raise ValueError(
            f"frame size changed mid-stream: expected {first_shape} (B, 3, H, W) as on frame 0, "
            f"got {tuple(frame.shape)}; resize frames to one size or call reset() first"
        )
    weight = next(model.parameters())
    return frame.to(dtype=weight.dtype, device=weight.device)


class TSMNet(nn.Module):
    """Temporal Shift Module classifier (TSN when ``config.shift == "none"``).

    ``forward(clip (N*T, 3, H, W)) -> (N, num_classes)``: per-frame logits averaged over
    ``T = config.n_segment``. Parameters and MACs do not depend on ``config.shift``.

    Raises:
        TypeError: ``config`` is not a :class:`VideoModelConfig`.
        ValueError: a shift site would move no channel (``C < fold_div``: raise ``width`` or
            lower ``fold_div``).
    """

    def __init__(self, config: VideoModelConfig) -> None:
        super().__init__()
        if not isinstance(config, VideoModelConfig):
            raise TypeError(f"config must be a VideoModelConfig; got {type(config).__name__}")
        self.config = config
        self.backbone = build_backbone(config)
        self.head = nn.Sequential(
            nn.Dropout(config.dropout), nn.Linear(self.backbone.num_features, config.num_classes)
        )
        _init_weights(self)
        shape = (1, 3, 1, 1)  # not saved: the config holds the values
        self.register_buffer("input_mean", torch.tensor(config.input_mean).view(shape), False)
        self.register_buffer("input_std", torch.tensor(config.input_std).view(shape), False)
        self._buffer_shapes: dict[tuple[int, int, int], list[tuple[int, ...]]] = {}
        if config.shift != "none":
            for index in shift_sites(self.backbone):
                channels = self.backbone.blocks[index].in_channels
                check_fold(channels, config.fold_div, where=f"block {index} (width={config.width})")

    def normalize(self, frames: torch.Tensor) -> torch.Tensor:
        """``(frames - input_mean) / input_std`` per channel (``frames`` itself when the config
        has no normalisation): what every forward applies to its ``[0, 1]`` frames first."""
        if not self.config.normalised:
            return frames
        mean, std = self.input_mean.to(frames.dtype), self.input_std.to(frames.dtype)
        return (frames - mean) / std

    @property
    def num_shift_sites(self) -> int:
        """Number of shifted blocks (0 for TSN)."""
        return 0 if self.config.shift == "none" else len(shift_sites(self.backbone))

    def forward(self, clip: torch.Tensor) -> torch.Tensor:
        """``(N*T, 3, H, W) -> (N, num_classes)``, the mean of :meth:`forward_frames` over T."""
        return self.forward_frames(clip).mean(dim=1)

    def forward_frames(self, clip: torch.Tensor) -> torch.Tensor:
        """Per-frame logits ``(N, T, num_classes)`` of ``clip (N*T, 3, H, W)``.

        Raises:
            TypeError: ``clip`` not a floating tensor.
            ValueError: not ``(N*T, 3, H, W)`` or ``N*T`` not a multiple of ``n_segment``.
        """
        check_frames(clip, "clip", "(N*T, 3, H, W)")
        t = self.config.n_segment
        if clip.shape[0] % t:
            raise ValueError(
                f"clip has {clip.shape[0]} frames, not a multiple of n_segment={t}; stack whole "
                f"{t}-frame clips as (N*T, 3, H, W) or build the model with another n_segment"
            )
        return clip_frame_logits(
            self.backbone, self.head, self.normalize(clip), n_segment=t, shift=self.config.shift,
            fold_div=self.config.fold_div,
        )

    def init_buffers(
        self, batch: int = 1, height: int = 224, width: int = 224, *,
        dtype: torch.dtype = torch.float32, device: torch.device | str | None = None,
    ) -> tuple[torch.Tensor, ...]:
        """Zero shift buffers for a stream of ``(batch, 3, height, width)`` frames.

        Returns one ``(batch, fold, h, w)`` tensor per shift site (empty for TSN).

        Raises:
            ValueError: the model is bidirectional (it cannot stream), or a size < 1.
        """
        self._check_streamable()
        for name, value in (("batch", batch), ("height", height), ("width", width)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be an int >= 1; got {value!r}")
        if self.config.shift == "none":
            return ()
        shapes = buffer_shapes(self.backbone, self.config.fold_div, batch, height, width)
        return tuple(torch.zeros(shape, dtype=dtype, device=device) for shape in shapes)

    def step(
        self, frame: torch.Tensor, buffers: tuple[torch.Tensor, ...]
    ) -> tuple[torch.Tensor, tuple[torch.Tensor, ...]]:
        """One online step: ``frame (N, 3, H, W)``, ``buffers`` from :meth:`init_buffers` or the
        previous step -> ``(logits (N, num_classes), new_buffers)``. ``buffers`` are not
        modified. Without autograd (``torch.no_grad``/``inference_mode``) and outside tracing,
        the shift swaps the buffers in place (:func:`~edgeinfer.video.stream_step`
        ``in_place=True``): the same numbers, fewer copies.

        Raises:
            ValueError: bidirectional model; bad frame shape; buffers not matching the frame.
        """
        self._check_streamable()
        check_frames(frame, "frame", "(N, 3, H, W)")
        batch, _, height, width = frame.shape
        self._check_buffers(buffers, batch, height, width)
        in_place = not (
            torch.is_grad_enabled() or torch.jit.is_tracing() or torch.compiler.is_compiling()
        )
        return stream_step(
            self.backbone, self.head, self.normalize(frame), tuple(buffers),
            fold_div=self.config.fold_div,
            in_place=in_place,
        )

    def _check_streamable(self) -> None:
        if self.config.shift == "bidirectional":
            raise ValueError(
                "a model with shift='bidirectional' cannot stream: each frame needs the next "
                "frame's features. Build it with shift='causal' (same parameters; "
                "load_state_dict works across shift modes)"
            )

    def _expected_buffers(self, batch: int, height: int, width: int) -> list[tuple[int, ...]]:
        # buffer shapes per frame size, remembered: step() checks them on every frame
        key = (batch, height, width)
        shapes = self._buffer_shapes.get(key)
        if shapes is None:
            shapes = [] if self.config.shift == "none" else buffer_shapes(
                self.backbone, self.config.fold_div, batch, height, width
            )
            self._buffer_shapes = {**self._buffer_shapes, key: shapes}  # architecture is fixed
        return shapes

    def _check_buffers(self, buffers: object, batch: int, height: int, width: int) -> None:
        expected = self._expected_buffers(batch, height, width)
        if not isinstance(buffers, (tuple, list)) or len(buffers) != len(expected):
            count = len(buffers) if isinstance(buffers, (tuple, list)) else _describe(buffers)
            raise ValueError(
                f"buffers must be a tuple of {len(expected)} tensors (one per shift site); got "
                f"{count}. Start from model.init_buffers(batch, height, width)"
            )
        for index, (buffer, shape) in enumerate(zip(buffers, expected, strict=True)):
            if not isinstance(buffer, torch.Tensor) or buffer.shape != shape:
                raise ValueError(
                    f"buffers[{index}] must have shape {shape} for frames of shape "
                    f"{(batch, 3, height, width)}; got {_describe(buffer)}. Use "
                    f"model.init_buffers({batch}, {height}, {width}) for this frame size"
                )
