"""Video engine: temporal redundancy (temporal shift, TSM models, streaming inference).

``temporal_shift`` mixes time at zero MACs; ``create_model("tsm_mobilenetv2", ...)`` builds a
TSM (or TSN with ``shift="none"``) classifier; ``StreamingRunner`` runs a causal one frame at a
time with the shift buffers carried inside; ``FrameGate``/``GatedRunner`` skip frames that
barely changed once the model has settled on the still picture; ``DeltaRunner`` recomputes
the early stages only where a static camera's frame changed; ``export`` writes a streaming
ONNX (float or int8) or ExecuTorch model whose shift buffers are graph inputs/outputs, run by
``OnnxStreamingRunner`` / ``ExecuTorchStreamingRunner``. Only torch loads with this package
(onnx/onnxruntime/executorch load when exporting or running an exported file).
``load_pretrained("tsm" | "tsn")`` returns ``(model, info)``: the small motion classifiers trained
by ``scripts/train_video.py`` on the synthetic motion set and their ``PretrainedInfo``;
``load_pretrained(path)`` reads any supported checkpoint file.
"""

from .._info import FrameInput, PretrainedInfo
from .config import ARCHS, MODEL_SHIFTS, VideoModelConfig
from .delta import DeltaConfig, DeltaRunner, DeltaStats, delta_prefix, max_delta_stages
from .export import EXPORT_FORMATS, export, onnx_node_count
from .functional import buffer_shapes, clip_frame_logits, shift_sites, stream_step
from .predict import ClipPrediction, FramePrediction, VideoClassifier
from .pretrained import (
    PRETRAINED,
    PRETRAINED_KINDS,
    SOURCES,
    load_checkpoint,
    load_pretrained,
    save_checkpoint,
)
from .registry import create_model, list_models
from .runtime import ExecuTorchStreamingRunner, OnnxStreamingRunner
from .shift import SHIFT_MODES, shift_step, temporal_shift
from .skip import (
    FrameGate,
    GateConfig,
    GatedRunner,
    GateStats,
    frame_to_tensor,
    logit_jitter,
    top_margin,
)
from .stream import StreamingRunner
from .train import TrainConfig, TrainResult, evaluate, train_classifier
from .tsm import TSMNet

__all__ = [
    "ARCHS",
    "EXPORT_FORMATS",
    "MODEL_SHIFTS",
    "PRETRAINED",
    "PRETRAINED_KINDS",
    "SHIFT_MODES",
    "SOURCES",
    "ClipPrediction",
    "DeltaConfig",
    "DeltaRunner",
    "DeltaStats",
    "ExecuTorchStreamingRunner",
    "FrameGate",
    "FrameInput",
    "FramePrediction",
    "GateConfig",
    "GateStats",
    "GatedRunner",
    "OnnxStreamingRunner",
    "PretrainedInfo",
    "StreamingRunner",
    "TSMNet",
    "TrainConfig",
    "TrainResult",
    "VideoClassifier",
    "VideoModelConfig",
    "buffer_shapes",
    "clip_frame_logits",
    "create_model",
    "delta_prefix",
    "evaluate",
    "export",
    "frame_to_tensor",
    "list_models",
    "load_checkpoint",
    "load_pretrained",
    "logit_jitter",
    "max_delta_stages",
    "onnx_node_count",
    "save_checkpoint",
    "shift_sites",
    "shift_step",
    "stream_step",
    "temporal_shift",
    "top_margin",
    "train_classifier",
]
