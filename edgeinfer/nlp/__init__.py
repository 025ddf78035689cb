"""NLP engine: token redundancy (SpAtten-style token and head pruning of real encoders).

``load_encoder`` gives a sentence encoder (offline), optionally pruned with a
``SpAttenConfig``; ``apply_spatten`` wraps any HF BERT-family encoder in the pruned forward.
``transformers`` is imported only when a model is loaded.
"""

from .encoder import Encoder, load_encoder, mean_pool
from .registry import OFFLINE_ENCODERS, list_encoders, resolve_encoder_path
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
    "OFFLINE_ENCODERS",
    "Encoder",
    "QuantConfig",
    "SpAttenConfig",
    "SpAttenModel",
    "SpAttenOutput",
    "SpAttenStats",
    "apply_spatten",
    "list_encoders",
    "load_encoder",
    "mean_pool",
    "plan_layers",
    "resolve_encoder_path",
]
