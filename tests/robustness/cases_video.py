"""Hostile frames, files and mid-stream failures for the video engine's runners and export.

Stateful cases feed a stream, then a bad frame (or a step that raises), then more good frames,
and compare every good frame's logits with an undisturbed run of the good frames alone: the
bad call must be refused clearly and leave no trace.
"""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
import torch

from tests.robustness.hostile import Case, Silent, expect_clear, overwritten, random_bytes, write

SIZE = 32
_FRAMES = 6


@functools.cache
def _model(shift: str = "causal"):
    from edgeinfer.video import create_model

    torch.manual_seed(0)
    model = create_model("tsm_mobilenetv2", num_classes=5, n_segment=4, shift=shift, width=0.25)
    return model.eval()


def _frames() -> list[torch.Tensor]:
    generator = torch.Generator().manual_seed(3)
    return [torch.rand(3, SIZE, SIZE, generator=generator) for _ in range(_FRAMES)]


def _uint8_frames() -> list[np.ndarray]:
    """Three frames of a still scene, then three of another (the gate sees the change)."""
    rng = np.random.default_rng(4)
    base = rng.integers(0, 256, (SIZE, SIZE, 3), dtype=np.uint8)
    changed = base.copy()
    changed[:8] = 255 - changed[:8]
    return [base.copy() for _ in range(3)] + [changed.copy() for _ in range(3)]


@functools.cache
def _onnx_path() -> Path:
    import tempfile

    from edgeinfer.video import export

    folder = Path(tempfile.mkdtemp(prefix="edgeinfer-hostile-"))
    return export(_model(), "onnx", folder / "stream.onnx", height=SIZE, width=SIZE)


@functools.cache
def _pte_bytes() -> bytes:
    import tempfile

    from edgeinfer.video import export

    with tempfile.TemporaryDirectory() as folder:
        return export(_model(), "executorch", Path(folder) / "s.pte", height=SIZE,
                      width=SIZE).read_bytes()


def _undisturbed(make, frames) -> list[torch.Tensor]:
    runner = make()
    return [runner.step(frame).clone() for frame in frames]


def _disturbed(make, frames, bad_call, match: str, at: int = 3) -> bool:
    """Good frames ``[:at]``, the bad call (must raise clearly), good frames ``[at:]``; the
    good frames' logits must equal the undisturbed stream's exactly."""
    runner = make()
    seen = [runner.step(frame).clone() for frame in frames[:at]]
    expect_clear(lambda: bad_call(runner), match)
    seen += [runner.step(frame).clone() for frame in frames[at:]]
    reference = _undisturbed(make, frames)
    for index, (got, want) in enumerate(zip(seen, reference, strict=True)):
        if not torch.equal(got, want):
            raise Silent(f"frame {index} differs from the undisturbed stream by "
                         f"{float((got - want).abs().max()):.3g} after the bad call")
    return True


def _nan_frame() -> torch.Tensor:
    frame = torch.rand(3, SIZE, SIZE)
    frame[1, 5, 7] = float("nan")
    return frame


def _streaming():
    from edgeinfer.video import StreamingRunner

    return StreamingRunner(_model())


def _failing_once(runner_attr: str):
    """A bad call that makes the model's step raise once, mid-stream (a bug or OOM there)."""

    def call(runner):
        target = runner.model if runner_attr == "model" else runner.runner.model
        original = target.step

        def broken(*args, **kwargs):
            raise ValueError("frame: injected failure inside the network step")

        target.step = broken
        try:
            # the gated stream's first changed frame: one the gate sends to the network
            runner.step(_frames()[0] if runner_attr == "model" else _uint8_frames()[3])
        finally:
            target.step = original

    return call


def _stream_cases() -> list[Case]:
    entry = "StreamingRunner"
    frames = _frames()
    ok = _streaming
    return [
        Case(entry, "NaN pixel mid-stream", lambda tmp: _disturbed(
            ok, frames, lambda r: r.step(_nan_frame()), r"frame.*NaN")),
        Case(entry, "inf frame first", lambda tmp: _disturbed(
            ok, frames, lambda r: r.step(torch.full((3, SIZE, SIZE), float("inf"))),
            r"frame.*NaN or inf", at=0)),
        Case(entry, "frame size changes mid-stream", lambda tmp: _disturbed(
            ok, frames, lambda r: r.step(torch.rand(3, SIZE + 4, SIZE)), r"frame size changed")),
        Case(entry, "uint8 tensor frame", lambda tmp: _disturbed(
            ok, frames, lambda r: r.step(torch.zeros(3, SIZE, SIZE, dtype=torch.uint8)),
            r"frame must be a floating")),
        Case(entry, "numpy frame", lambda tmp: _disturbed(
            ok, frames, lambda r: r.step(np.zeros((SIZE, SIZE, 3), np.float32)), r"frame must")),
        Case(entry, "2 colour channels", lambda tmp: _disturbed(
            ok, frames, lambda r: r.step(torch.rand(2, SIZE, SIZE)), r"3 colour channels")),
        Case(entry, "zero-height frame", lambda tmp: _disturbed(
            ok, frames, lambda r: r.step(torch.rand(3, 0, SIZE)), r"frame must have shape|height",
            at=0)),
        Case(entry, "the step raises mid-stream", lambda tmp: _disturbed(
            ok, frames, _failing_once("model"), r"injected")),
        Case(entry, "float64 frames", lambda tmp: [ok().step(f.double()) for f in frames][-1],
             check=lambda logits: torch.allclose(logits, _undisturbed(ok, frames)[-1],
                                                 atol=1e-5)),
        Case(entry, "bidirectional model", lambda tmp: __import__(
            "edgeinfer.video", fromlist=["x"]).StreamingRunner(_model("bidirectional")),
             r"shift='causal'"),
    ]


def _gated():
    from edgeinfer.video import FrameGate, GateConfig, GatedRunner, StreamingRunner

    # settle=0: still frames after a change are skipped at once, so a gate that took a failed
    # frame as processed hands out the previous scene's logits for the new one
    return GatedRunner(StreamingRunner(_model()), FrameGate(GateConfig(threshold=2.0, settle=0)))


def _gated_cases() -> list[Case]:
    entry = "GatedRunner"
    frames = _uint8_frames()

    def bad_preprocess(runner):
        original = runner.preprocess

        def broken(frame):
            raise ValueError("frame: injected preprocess failure")

        runner.preprocess = broken
        try:
            runner.step(frames[3])
        finally:
            runner.preprocess = original

    return [
        Case(entry, "preprocess raises on a changed frame", lambda tmp: _disturbed(
            _gated, frames, bad_preprocess, r"injected", at=3)),
        Case(entry, "the network step raises", lambda tmp: _disturbed(
            _gated, frames, _failing_once("runner"), r"injected", at=3)),
        Case(entry, "float frame", lambda tmp: _disturbed(
            _gated, frames, lambda r: r.step(frames[0].astype(np.float32)), r"frame must be a "
            "uint8")),
        Case(entry, "frame size changes", lambda tmp: _disturbed(
            _gated, frames, lambda r: r.step(np.zeros((SIZE, SIZE + 2, 3), np.uint8)),
            r"frame size changed")),
        Case(entry, "preprocess makes NaN", lambda tmp: _disturbed(
            _gated, frames, lambda r: _with_preprocess(r, lambda f: _nan_frame()[None],
                                                       frames[3]), r"NaN")),
    ]


def _with_preprocess(runner, preprocess, frame):
    original = runner.preprocess
    runner.preprocess = preprocess
    try:
        return runner.step(frame)
    finally:
        runner.preprocess = original


def _delta():
    from edgeinfer.video import DeltaRunner

    return DeltaRunner(_model())


def _delta_cases() -> list[Case]:
    entry = "DeltaRunner"
    frames = _frames()
    return [
        Case(entry, "NaN pixel mid-stream", lambda tmp: _disturbed(
            _delta, frames, lambda r: r.step(_nan_frame()), r"NaN")),
        Case(entry, "frame size changes", lambda tmp: _disturbed(
            _delta, frames, lambda r: r.step(torch.rand(3, SIZE, SIZE + 8)), r"frame size")),
        Case(entry, "float64 frame mid-stream", lambda tmp: [
            _delta().step(f.double()) for f in frames][-1],
             check=lambda logits: torch.allclose(logits, _undisturbed(_delta, frames)[-1],
                                                 atol=1e-4)),
    ]


def _onnx_runner():
    from edgeinfer.video import OnnxStreamingRunner

    return OnnxStreamingRunner(_onnx_path())


def _open_onnx(name: str, build):
    def run(tmp: Path):
        from edgeinfer.video import OnnxStreamingRunner

        return OnnxStreamingRunner(write(tmp, name, build()))

    return run


def _runtime_cases() -> list[Case]:
    frames = _frames()
    onnx = "OnnxStreamingRunner"
    cases = [
        Case(onnx, "NaN pixel mid-stream", lambda tmp: _disturbed(
            _onnx_runner, frames, lambda r: r.step(_nan_frame()), r"NaN")),
        Case(onnx, "other frame size", lambda tmp: _disturbed(
            _onnx_runner, frames, lambda r: r.step(torch.rand(3, SIZE * 2, SIZE)),
            r"exported shape")),
        Case(onnx, "random bytes", _open_onnx("junk.onnx", lambda: random_bytes(12, 3000)),
             r"junk\.onnx", child=True),
        Case(onnx, "cut in half", _open_onnx(
            "cut.onnx", lambda: _onnx_path().read_bytes()[: _onnx_path().stat().st_size // 2]),
             r"cut\.onnx", child=True),
        Case(onnx, "missing file", lambda tmp: __import__(
            "edgeinfer.video", fromlist=["x"]).OnnxStreamingRunner(tmp / "none.onnx"),
             r"none\.onnx"),
        Case(onnx, "num_threads 0", lambda tmp: __import__(
            "edgeinfer.video", fromlist=["x"]).OnnxStreamingRunner(_onnx_path(), num_threads=0),
             r"num_threads"),
    ]
    return cases + _executorch_cases(frames)


def _open_pte(name: str, build, via_from_export: bool = False):
    def run(tmp: Path):
        from edgeinfer.video import ExecuTorchStreamingRunner, StreamingRunner

        path = write(tmp, name, build())
        if via_from_export:
            return StreamingRunner.from_export(path)
        return ExecuTorchStreamingRunner(path)

    return run


def _executorch_cases(frames) -> list[Case]:
    entry = "ExecuTorchStreamingRunner"

    def runner():
        import tempfile

        from edgeinfer.video import ExecuTorchStreamingRunner

        folder = Path(tempfile.mkdtemp(prefix="edgeinfer-hostile-"))
        return ExecuTorchStreamingRunner(write(folder, "s.pte", _pte_bytes()))

    return [
        Case(entry, "random bytes", _open_pte("garbage.pte", lambda: random_bytes(8, 3000)),
             r"garbage\.pte", child=True),
        Case(entry, "random bytes via from_export", _open_pte(
            "garbage.pte", lambda: random_bytes(8, 3000), True), r"garbage\.pte", child=True),
        Case(entry, "random bytes behind a valid identifier", _open_pte(
            "ident.pte", lambda: random_bytes(9, 4) + b"ET12" + random_bytes(10, 3000)),
             r"ident\.pte", child=True),
        Case(entry, "empty file", _open_pte("empty.pte", lambda: b""), r"empty\.pte",
             child=True),
        Case(entry, "cut in half", _open_pte(
            "cut.pte", lambda: _pte_bytes()[: len(_pte_bytes()) // 2]), r"cut\.pte",
             child=True, slow=True),
        Case(entry, "program bytes overwritten", _open_pte(
            "over.pte", lambda: overwritten(_pte_bytes(), 5, 50, start=40, stop=4000)),
             r"over\.pte", child=True, slow=True),
        Case(entry, "NaN pixel mid-stream", lambda tmp: _disturbed(
            runner, frames, lambda r: r.step(_nan_frame()), r"NaN"), child=True, slow=True),
    ]


def _export_cases() -> list[Case]:
    def export(fmt: str, name: str, **kwargs):
        def run(tmp: Path):
            from edgeinfer.video import export as export_model

            return export_model(_model(), fmt, tmp / name, height=SIZE, width=SIZE, **kwargs)

        return run

    return [
        Case("video.export", "executorch to a .onnx name", export("executorch", "m.onnx"),
             r"\.pte"),
        Case("video.export", "onnx without suffix", export("onnx", "model"), r"\.onnx"),
        Case("video.export", "into a missing folder", export("executorch", "no/such/m.pte"),
             r"folder"),
        Case("video.export", "height 0", export("onnx", "m.onnx", batch=0), r"batch"),
    ]


def _checkpoint_cases() -> list[Case]:
    def load(data: bytes):
        def run(tmp: Path):
            from edgeinfer.video import load_checkpoint

            return load_checkpoint(write(tmp, "video.pt", data))

        return run

    return [
        Case("video.load_checkpoint", "random bytes", load(random_bytes(13, 5000)), r"video\.pt"),
        Case("video.load_checkpoint", "empty file", load(b""), r"video\.pt"),
        Case("video.load_checkpoint", "a tensor, not a checkpoint", lambda tmp: load(
            _saved(torch.zeros(3)))(tmp), r"video\.pt"),
    ]


def _saved(value) -> bytes:
    import io

    buffer = io.BytesIO()
    torch.save(value, buffer)
    return buffer.getvalue()


def cases() -> list[Case]:
    return (_stream_cases() + _gated_cases() + _delta_cases() + _runtime_cases()
            + _export_cases() + _checkpoint_cases())
