"""SpAtten-style cascade token and head pruning of HuggingFace BERT-family encoders,
with int8 linears and progressive attention quantisation."""

from .config import TOKEN_MODES, LayerPlan, QuantConfig, SpAttenConfig, plan_layers
from .model import (
    SpAttenModel,
    SpAttenOutput,
    SpAttenStats,
    apply_spatten,
    layer_linears,
    spatten_forward,
)
from .progressive import fake_quantize_rows, progressive_attention
from .quant import Int8Linear, apply_linear, quantize_per_row

__all__ = [
    "TOKEN_MODES",
    "Int8Linear",
    "LayerPlan",
    "QuantConfig",
    "SpAttenConfig",
    "SpAttenModel",
    "SpAttenOutput",
    "SpAttenStats",
    "apply_linear",
    "apply_spatten",
    "fake_quantize_rows",
    "layer_linears",
    "plan_layers",
    "progressive_attention",
    "quantize_per_row",
    "spatten_forward",
]
