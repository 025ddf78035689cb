"""NLP engine: token redundancy (SpAtten-style token and head pruning of real encoders, and
KV-cache token pruning for generation with causal LMs).

``load_encoder`` gives a sentence encoder (offline), optionally pruned with a
``SpAttenConfig``; ``apply_spatten`` wraps any HF BERT-family encoder in the pruned forward.
``generate`` / ``KVSession`` run a HF causal LM (``load_causal_lm``) with a ``KVPruneConfig``
cache policy. ``transformers`` is imported only when a model is loaded.
"""

from .causal_lm import load_causal_lm
from .encoder import Encoder, load_encoder, mean_pool
from .generation import Generation, KVSession, continuation_scores, decode, generate
from .kv_prune import KVPruneConfig
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
    "OFFLINE_CAUSAL_LMS",
    "OFFLINE_ENCODERS",
    "Encoder",
    "Generation",
    "KVPruneConfig",
    "KVSession",
    "QuantConfig",
    "SpAttenConfig",
    "SpAttenModel",
    "SpAttenOutput",
    "SpAttenStats",
    "apply_spatten",
    "continuation_scores",
    "decode",
    "generate",
    "list_causal_lms",
    "list_encoders",
    "load_causal_lm",
    "load_encoder",
    "mean_pool",
    "plan_layers",
    "resolve_causal_lm",
    "resolve_encoder_path",
]
