"""Export: the streaming ONNX graph run in ONNX Runtime equals the torch stream, per frame."""

import sys

import pytest
import torch

from edgeinfer.video import (
    ExecuTorchStreamingRunner,
    OnnxStreamingRunner,
    StreamingRunner,
    create_model,
)
from edgeinfer.video.export import export, onnx_node_count
from tests.video.reference import calibrate

pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

ORT_ATOL = 1e-4  # float32 logits, ONNX Runtime kernels vs torch kernels
SIZE = 48


def _model(name="tsm_mobilenetv2", shift="causal", width=0.5):
    torch.manual_seed(0)
    clip = torch.randn(4, 3, SIZE, SIZE, generator=torch.Generator().manual_seed(1))
    model = create_model(name, num_classes=5, n_segment=4, shift=shift, width=width)
    return calibrate(model, clip), clip


@pytest.mark.parametrize(("name", "width"), [("tsm_mobilenetv2", 0.5), ("tsm_resnet18", 0.25)])
def test_streaming_onnx_equals_torch_per_frame(tmp_path, name, width):
    model, clip = _model(name, width=width)
    path = export(model, "onnx", tmp_path / "stream.onnx", height=SIZE, width=SIZE)
    assert not model.training  # export leaves the model as it found it
    runner, reference = OnnxStreamingRunner(path), StreamingRunner(model)
    assert len(runner._buffer_specs) == model.num_shift_sites
    for t in range(clip.shape[0]):
        torch.testing.assert_close(
            runner.step(clip[t]), reference.step(clip[t]), atol=ORT_ATOL, rtol=ORT_ATOL
        )
    assert runner.frames_seen == clip.shape[0]
    runner.reset()  # buffers zeroed: frame 0 again
    torch.testing.assert_close(
        runner.step(clip[0]), StreamingRunner(model).step(clip[0]), atol=ORT_ATOL, rtol=ORT_ATOL
    )


def test_streaming_runner_from_export_picks_the_runtime(tmp_path):
    model, clip = _model()
    path = export(model, "onnx", tmp_path / "stream.onnx", height=SIZE, width=SIZE)
    runner, reference = StreamingRunner.from_export(str(path)), StreamingRunner(model)
    assert isinstance(runner, OnnxStreamingRunner)
    for frame in clip[:2]:
        torch.testing.assert_close(
            runner.step(frame), reference.step(frame), atol=ORT_ATOL, rtol=ORT_ATOL
        )
    with pytest.raises(ValueError, match=r"\.onnx, \.pte.*model\.pt"):
        StreamingRunner.from_export(tmp_path / "model.pt")
    with pytest.raises(FileNotFoundError, match=r"missing\.pte"):
        StreamingRunner.from_export(tmp_path / "missing.pte")


def test_offline_bidirectional_onnx_equals_torch(tmp_path):
    import onnxruntime

    model, clip = _model(shift="bidirectional")
    path = export(model, "onnx", tmp_path / "offline.onnx", streaming=False, height=SIZE,
                  width=SIZE)
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (logits,) = session.run(None, {"clip": clip.numpy()})
    with torch.no_grad():
        expected = model(clip)
    torch.testing.assert_close(torch.from_numpy(logits), expected, atol=ORT_ATOL, rtol=ORT_ATOL)
    counts = onnx_node_count(path)
    assert counts["total"] == sum(v for k, v in counts.items() if k != "total")
    assert counts["Concat"] > 0 and counts["Conv"] > 0  # the shift is slicing + Concat
    with pytest.raises(ValueError, match="not a streaming export"):
        OnnxStreamingRunner(path)


def test_executorch_missing_raises_install_hint(monkeypatch, tmp_path):
    model, _ = _model()
    monkeypatch.setitem(sys.modules, "executorch", None)
    monkeypatch.setitem(sys.modules, "executorch.exir", None)
    with pytest.raises(ImportError, match=r"pip install -c constraints\.txt executorch"):
        export(model, "executorch", tmp_path / "model.pte", height=SIZE, width=SIZE)


def test_export_errors(tmp_path):
    model, _ = _model()
    with pytest.raises(ValueError, match="format must be one of"):
        export(model, "tflite", tmp_path / "m.onnx")
    with pytest.raises(TypeError, match="TSMNet"):
        export(torch.nn.Linear(2, 2), "onnx", tmp_path / "m.onnx")
    with pytest.raises(ValueError, match="height must be an int"):
        export(model, "onnx", tmp_path / "m.onnx", height=0)
    bidirectional, _ = _model(shift="bidirectional")
    with pytest.raises(ValueError, match="streaming=False"):
        export(bidirectional, "onnx", tmp_path / "m.onnx")
    model.train()
    with pytest.raises(ValueError, match="training mode"):
        export(model, "onnx", tmp_path / "m.onnx")


def test_onnx_runner_rejects_other_frame_sizes(tmp_path):
    model, _ = _model(shift="none")
    path = export(model, "onnx", tmp_path / "tsn.onnx", height=32, width=32)
    runner = OnnxStreamingRunner(path, num_threads=1)
    assert runner.step(torch.rand(1, 3, 32, 32)).shape == (1, 5)
    with pytest.raises(ValueError, match="exported shape"):
        runner.step(torch.rand(1, 3, 48, 48))
    with pytest.raises(ValueError, match="num_threads"):
        OnnxStreamingRunner(path, num_threads=0)


def _executorch():
    pytest.importorskip(
        "executorch", reason="executorch is not installed (pip install -c constraints.txt "
        "executorch); the ExecuTorch export and runner are optional"
    )


@pytest.mark.slow  # lowering to XNNPACK takes ~30 s per model here
def test_streaming_executorch_equals_torch_per_frame(tmp_path):
    _executorch()
    model, clip = _model("tsm_resnet18", width=0.25)
    path = export(model, "executorch", tmp_path / "stream.pte", height=SIZE, width=SIZE)
    runner, reference = ExecuTorchStreamingRunner(path, num_threads=1), StreamingRunner(model)
    assert len(runner._buffer_shapes) == model.num_shift_sites
    for t in range(clip.shape[0]):
        torch.testing.assert_close(
            runner.step(clip[t]), reference.step(clip[t]), atol=ORT_ATOL, rtol=ORT_ATOL
        )
    runner.reset()
    assert runner.frames_seen == 0
    torch.testing.assert_close(
        runner.step(clip[0]), StreamingRunner(model).step(clip[0]), atol=ORT_ATOL, rtol=ORT_ATOL
    )
    with pytest.raises(ValueError, match="exported shape"):
        runner.step(torch.rand(1, 3, SIZE + 1, SIZE))


@pytest.mark.slow  # lowering to XNNPACK takes ~30 s per model here
def test_offline_executorch_equals_torch_and_is_not_a_stream(tmp_path):
    _executorch()
    from executorch.runtime import Runtime

    model, clip = _model("tsm_resnet18", shift="bidirectional", width=0.25)
    path = export(model, "executorch", tmp_path / "offline.pte", streaming=False, height=SIZE,
                  width=SIZE)
    program = Runtime.get().load_program(path)  # keep the program alive while its method runs
    method = program.load_method("forward")
    (logits,) = method.execute([clip])
    with torch.no_grad():
        torch.testing.assert_close(logits, model(clip), atol=ORT_ATOL, rtol=ORT_ATOL)
    with pytest.raises(ValueError, match="not a streaming export"):
        ExecuTorchStreamingRunner(path)
    with pytest.raises(ValueError, match="num_threads"):
        ExecuTorchStreamingRunner(path, num_threads=0)


INT8_REL_ERROR = 0.25  # int8 logits vs float, relative (norm of the error / norm of the logits)


def test_int8_streaming_onnx_stays_close_to_float(tmp_path):
    pytest.importorskip("onnxruntime.quantization")
    model, clip = _model()
    calibration = torch.randn(12, 3, SIZE, SIZE, generator=torch.Generator().manual_seed(7))
    path = export(model, "onnx", tmp_path / "int8.onnx", height=SIZE, width=SIZE,
                  int8_calibration=list(calibration.clamp(-3, 3)))
    counts = onnx_node_count(path)
    assert counts.get("QuantizeLinear", 0) > 0 and counts.get("DequantizeLinear", 0) > 0
    runner, reference = OnnxStreamingRunner(path), StreamingRunner(model)
    got = torch.cat([runner.step(frame) for frame in clip])
    want = torch.cat([reference.step(frame) for frame in clip])
    assert float((got - want).norm() / want.norm()) < INT8_REL_ERROR
    assert not torch.equal(got, want)  # it is quantised


def test_int8_export_errors(tmp_path):
    model, _ = _model()
    with pytest.raises(ValueError, match="int8_calibration quantises a streaming ONNX export"):
        export(model, "onnx", tmp_path / "m.onnx", streaming=False, int8_calibration=[])
    with pytest.raises(ValueError, match="int8_calibration quantises a streaming ONNX export"):
        export(model, "executorch", tmp_path / "m.pte", int8_calibration=[])
    with pytest.raises(ValueError, match="at least one"):
        export(model, "onnx", tmp_path / "m.onnx", height=SIZE, width=SIZE, int8_calibration=[])
    with pytest.raises(ValueError, match="calibration frames must share one shape"):
        export(model, "onnx", tmp_path / "m.onnx", height=SIZE, width=SIZE,
               int8_calibration=[torch.rand(3, SIZE, SIZE), torch.rand(3, SIZE, 32)])
