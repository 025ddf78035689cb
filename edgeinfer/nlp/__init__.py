"""NLP engine: token redundancy (SpAtten-style token and head pruning of real encoders, and
KV-cache token pruning for generation with causal LMs).

``load_pretrained`` gives ``(encoder, info)`` for an offline name or any local HF encoder folder
(pooling from its sentence-transformers files), optionally pruned with a ``SpAttenConfig``
(``load_encoder`` is the same without the info); ``create_model`` builds a fresh encoder of a
family; ``apply_spatten`` wraps any HF BERT-family encoder in the pruned forward.
``export`` writes a (pruned) encoder as one ONNX file whose graph scores and drops tokens;
``OnnxEncoder`` (or ``load_encoder`` of that file) runs it with ONNX Runtime.
``generate`` / ``KVSession`` run a HF causal LM (``load_causal_lm``) with a ``KVPruneConfig``
cache policy. ``transformers`` is imported only when a model is loaded.
"""

from .._info import PretrainedInfo, TextInput
from .causal_lm import load_causal_lm
from .encoder import Encoder, load_encoder, mean_pool, pool
from .export import export
from .generation import Generation, KVSession, continuation_scores, decode, generate
from .kv_prune import KVPruneConfig
from .onnx_encoder import OnnxEncoder
from .predict import Embedder
from .pretrained import FAMILIES, create_model, list_models, load_pretrained, read_pooling
from .registry import (
    OFFLINE_CAUSAL_LMS,
    OFFLINE_ENCODERS,
    list_causal_lms,
    list_encoders,
    resolve_causal_lm,
    resolve_encoder_path,
)
from .spatten import (
    QuantConfig,
    SpAttenConfig,
    SpAttenModel,
    SpAttenOutput,
    SpAttenStats,
    apply_spatten,
    plan_layers,
)

__all__ = [
    "FAMILIES",
    "OFFLINE_CAUSAL_LMS",
    "OFFLINE_ENCODERS",
    "Embedder",
    "Encoder",
    "Generation",
    "KVPruneConfig",
    "KVSession",
    "OnnxEncoder",
    "PretrainedInfo",
    "QuantConfig",
    "SpAttenConfig",
    "SpAttenModel",
    "SpAttenOutput",
    "SpAttenStats",
    "TextInput",
    "apply_spatten",
    "continuation_scores",
    "create_model",
    "decode",
    "export",
    "generate",
    "list_causal_lms",
    "list_encoders",
    "list_models",
    "load_causal_lm",
    "load_encoder",
    "load_pretrained",
    "mean_pool",
    "plan_layers",
    "pool",
    "read_pooling",
    "resolve_causal_lm",
    "resolve_encoder_path",
]
