"""SpAtten-style cascade token and head pruning of HuggingFace BERT-family encoders."""

from .config import TOKEN_MODES, LayerPlan, SpAttenConfig, plan_layers
from .model import SpAttenModel, SpAttenOutput, SpAttenStats, apply_spatten, spatten_forward

__all__ = [
    "TOKEN_MODES",
    "LayerPlan",
    "SpAttenConfig",
    "SpAttenModel",
    "SpAttenOutput",
    "SpAttenStats",
    "apply_spatten",
    "plan_layers",
    "spatten_forward",
]
