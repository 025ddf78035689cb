"""Video engine: temporal redundancy (temporal shift, TSM models, streaming inference).

``temporal_shift`` mixes time at zero MACs; ``create_model("tsm_mobilenetv2", ...)`` builds a
TSM (or TSN with ``shift="none"``) classifier; ``StreamingRunner`` runs a causal one frame at a
time with the shift buffers carried inside. Only torch loads with this package.
"""

from .config import ARCHS, MODEL_SHIFTS, VideoModelConfig
from .functional import buffer_shapes, clip_frame_logits, shift_sites, stream_step
from .registry import create_model, list_models
from .shift import SHIFT_MODES, shift_step, temporal_shift
from .stream import StreamingRunner
from .tsm import TSMNet

__all__ = [
    "ARCHS",
    "MODEL_SHIFTS",
    "SHIFT_MODES",
    "StreamingRunner",
    "TSMNet",
    "VideoModelConfig",
    "buffer_shapes",
    "clip_frame_logits",
    "create_model",
    "list_models",
    "shift_sites",
    "shift_step",
    "stream_step",
    "temporal_shift",
]
