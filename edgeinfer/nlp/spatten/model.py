"""SpAtten forward over a HuggingFace BERT-family encoder's own weights.

``apply_spatten(hf_model, config)`` returns a ``SpAttenModel`` that shares (never copies) the
HF model's parameters and runs a custom forward: the model's embeddings, then per layer
attention (fused SDPA) and FFN, where the planned layers physically remove the least
important tokens (``prune_tokens``) and heads (sliced Q/K/V/output weights).

Head pruning is cascade and decided per batch: a head's importance is the summed L2 norm of
its outputs over the batch's real tokens, accumulated over layers by head index; a head
pruned after layer ``l`` is absent from every later layer. With ``head_keep < 1`` the result
of a sequence therefore depends on the rest of its batch; token pruning does not (per-sequence
keep counts from the real length, scores over real tokens only). Inference only: no dropout.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F  # noqa: N812
from torch import nn

from .config import LayerPlan, QuantConfig, SpAttenConfig, plan_layers
from .functional import (
    attention_output,
    feed_forward,
    head_magnitude,
    head_rows,
    keep_counts,
    project_heads,
    prune_tokens,
    select_heads,
    token_importance,
)
from .progressive import progressive_attention
from .quant import Int8Linear

__all__ = [
    "SpAttenModel",
    "SpAttenOutput",
    "SpAttenStats",
    "apply_spatten",
    "layer_linears",
    "spatten_forward",
]

_LINEARS = {
    "query": "attention.self.query", "key": "attention.self.key",
    "value": "attention.self.value", "out": "attention.output.dense",
    "ffn_in": "intermediate.dense", "ffn_out": "output.dense",
}  # fmt: skip
_LAYER_PARTS = (
    "attention.self.query", "attention.self.key", "attention.self.value",
    "attention.output.dense", "attention.output.LayerNorm", "intermediate", "output",
)  # fmt: skip


@dataclass(frozen=True)
class SpAttenStats:
    """What each layer processed: padded row length at attention and at FFN, real tokens at
    FFN (summed over the batch), heads used, and the fraction of real attention query rows
    computed in full precision (1.0 without progressive attention quantisation). Tuples of
    one entry per layer; ``linear_bits`` is 8 with int8 linears, else 32."""

    attention_lengths: tuple[int, ...]
    ffn_lengths: tuple[int, ...]
    ffn_tokens: tuple[int, ...]
    heads: tuple[int, ...]
    recomputed: tuple[float, ...] = ()
    linear_bits: int = 32


@dataclass(frozen=True)
class SpAttenOutput:
    """``hidden (B, L', D)`` of the kept tokens, ``mask (B, L')`` True on real kept tokens,
    ``positions (B, L')`` int64 original position of each kept row, and ``stats``."""

    hidden: torch.Tensor
    mask: torch.Tensor
    positions: torch.Tensor
    stats: SpAttenStats


def _encoder_parts(model: nn.Module) -> tuple[nn.Module, nn.ModuleList]:
    """The embeddings and layer list of a BERT-family model (or of its ``base_model``)."""
    base = getattr(model, "base_model", model)
    layers = getattr(getattr(base, "encoder", None), "layer", None)
    embeddings = getattr(base, "embeddings", None)
    if embeddings is None or not isinstance(layers, nn.ModuleList) or not layers:
        raise TypeError(
            f"model must be a HuggingFace BERT-family encoder with .embeddings and "
            f".encoder.layer (e.g. BertModel); got {type(model).__name__}"
        )
    for part in _LAYER_PARTS:
        holder = layers[0]
        for name in part.split("."):
            holder = getattr(holder, name, None)
        if holder is None:
            raise TypeError(
                f"model layers must have the BERT layout ({', '.join(_LAYER_PARTS)}); "
                f"{type(layers[0]).__name__} has no {part}"
            )
    config = getattr(model, "config", None)
    if getattr(config, "is_decoder", False) or getattr(
        config, "position_embedding_type", "absolute"
    ) not in (None, "absolute"):
        raise ValueError(
            "apply_spatten supports bidirectional encoders with absolute positions; got "
            f"is_decoder={config.is_decoder}, position_embedding_type="
            f"{config.position_embedding_type!r}"
        )
    return embeddings, layers


def _default_protect(mask: torch.Tensor) -> torch.Tensor:
    """First and last real token of each row ([CLS] and [SEP] of a BERT tokenizer)."""
    protect = torch.zeros_like(mask)
    lengths = mask.sum(dim=1)
    first = mask.int().argmax(dim=1)
    rows = torch.arange(mask.shape[0])
    protect[rows, first] = True
    protect[rows, first + lengths - 1] = True
    return protect & mask


def _attend(hidden, mask, linears, heads, head_size, quant):
    """Kept heads' query, key, context ``(B, h, L, d)``, head rows and recomputed fraction."""
    rows = None if heads is None else head_rows(heads, head_size)
    query, key, value = project_heads(hidden, linears, rows, head_size)
    if quant is not None and quant.attn_bits is not None:
        context, redo = progressive_attention(
            query, key, value, mask, quant.attn_bits, quant.recompute_threshold
        )
        real = mask.sum() * query.shape[1]
        return query, key, context, rows, float(redo.sum() / real)
    full = bool(mask.all())  # no padding: the unmasked SDPA kernel is faster
    attn_mask = None if full else mask[:, None, None, :]
    context = F.scaled_dot_product_attention(query, key, value, attn_mask=attn_mask)
    return query, key, context, rows, 1.0


def layer_linears(layer: nn.Module, quant: QuantConfig | None) -> nn.ModuleDict:
    """The linears of a BERT layer by role: the layer's own ``query``, ``key``, ``value``,
    ``out``, ``ffn_in``, ``ffn_out`` (shared ``nn.Linear``); with int8 linears ``Int8Linear``
    copies, Q/K/V fused into one ``qkv`` (a single GEMM and activation quantisation)."""
    found = {}
    for role, path in _LINEARS.items():
        module = layer
        for name in path.split("."):
            module = getattr(module, name)
        found[role] = module
    if quant is None or not quant.linear_int8:
        return nn.ModuleDict(found)
    parts = [found.pop(role) for role in ("query", "key", "value")]
    fused = nn.Linear(parts[0].in_features, 3 * parts[0].out_features)
    with torch.no_grad():
        fused.weight.copy_(torch.cat([p.weight for p in parts]))
        fused.bias.copy_(torch.cat([p.bias for p in parts]))
    found["qkv"] = fused
    return nn.ModuleDict({role: Int8Linear(module) for role, module in found.items()})


def spatten_forward(
    embeddings: nn.Module,
    layers: nn.ModuleList,
    plans: tuple[LayerPlan, ...],
    inputs: dict[str, torch.Tensor],
    config: SpAttenConfig,
    linears: nn.ModuleList | None = None,
) -> SpAttenOutput:
    """Embeddings + layers with cascade token/head pruning (see the module docstring).

    ``inputs``: ``input_ids (B, L)``, ``attention_mask (B, L)``, optional
    ``token_type_ids (B, L)`` and ``protect (B, L)`` (always-kept tokens; default first and
    last real token). ``plans`` from ``plan_layers``, one per layer. ``linears``: one
    ``layer_linears`` dict per layer (default: built from ``config.quant``, uncached).
    """
    if linears is None:
        linears = nn.ModuleList(layer_linears(layer, config.quant) for layer in layers)
    mask = inputs["attention_mask"].bool()
    protect = inputs.get("protect")
    protect = _default_protect(mask) if protect is None else protect.bool() & mask
    hidden = embeddings(input_ids=inputs["input_ids"], token_type_ids=inputs.get("token_type_ids"))
    batch, length, _ = hidden.shape
    attn = layers[0].attention.self
    n_heads, head_size = attn.num_attention_heads, attn.attention_head_size
    positions = torch.arange(length).expand(batch, length)
    original_lengths = mask.sum(dim=1)
    importance = hidden.new_zeros(batch, length)
    head_score = hidden.new_zeros(n_heads)
    heads, stats = None, {"att": [], "ffn": [], "tok": [], "heads": [], "redo": []}
    threshold = config.token_threshold if config.token_mode == "threshold" else None
    for layer, plan, lin in zip(layers, plans, linears, strict=True):
        stats["att"].append(hidden.shape[1])
        stats["heads"].append(n_heads if heads is None else heads.numel())
        query, key, context, rows, redo = _attend(hidden, mask, lin, heads, head_size, config.quant)
        stats["redo"].append(redo)
        if plan.score_tokens:
            importance = importance + token_importance(query, key, mask, config.score_queries)
        if plan.score_heads:
            kept = torch.arange(n_heads) if heads is None else heads
            head_score[kept] += head_magnitude(context, mask)
        out = layer.attention.output
        hidden = attention_output(context, hidden, lin["out"], out.LayerNorm, rows)
        if plan.token_ratio is not None:
            counts = keep_counts(original_lengths, plan.token_ratio, protect.sum(dim=1))
            (hidden, importance, positions, protect), mask = prune_tokens(
                (hidden, importance, positions, protect), mask, importance, protect, counts,
                threshold,
            )  # fmt: skip
            protect = protect & mask
        stats["ffn"].append(hidden.shape[1])
        stats["tok"].append(int(mask.sum()))
        hidden = feed_forward(hidden, layer, lin)
        if plan.head_count is not None:
            current = torch.arange(n_heads) if heads is None else heads
            heads = select_heads(head_score, current, plan.head_count)
    positions = positions.masked_fill(~mask, -1)
    summary = SpAttenStats(
        *(tuple(stats[k]) for k in ("att", "ffn", "tok", "heads", "redo")),
        linear_bits=8 if config.quant is not None and config.quant.linear_int8 else 32,
    )
    return SpAttenOutput(hidden=hidden, mask=mask, positions=positions, stats=summary)


class SpAttenModel(nn.Module):
    """A BERT-family encoder run with SpAtten pruning; shares the wrapped model's weights.

    Call with ``input_ids``, ``attention_mask`` (and optional ``token_type_ids``,
    ``protect``), all ``(B, L)``; returns a ``SpAttenOutput``.
    """

    def __init__(self, model: nn.Module, config: SpAttenConfig) -> None:
        super().__init__()
        _, layers = _encoder_parts(model)
        heads = layers[0].attention.self.num_attention_heads
        self.model = model
        self.config = config
        self.plans = plan_layers(config, len(layers), heads)
        self.linears = nn.ModuleList(layer_linears(layer, config.quant) for layer in layers)

    @torch.no_grad()
    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, **extra):
        """See ``spatten_forward`` (inference only, no gradients).

        Raises:
            ValueError: mismatched shapes or a sequence without real tokens.
        """
        if input_ids.dim() != 2 or attention_mask.shape != input_ids.shape:
            raise ValueError(
                "input_ids and attention_mask must both have shape (B, L); got "
                f"{tuple(input_ids.shape)} and {tuple(attention_mask.shape)}"
            )
        if not bool(attention_mask.bool().any(dim=1).all()):
            raise ValueError("every sequence needs at least one real token in attention_mask")
        embeddings, layers = _encoder_parts(self.model)
        inputs = {"input_ids": input_ids, "attention_mask": attention_mask, **extra}
        return spatten_forward(embeddings, layers, self.plans, inputs, self.config, self.linears)


def apply_spatten(model: nn.Module, config: SpAttenConfig | None = None) -> SpAttenModel:
    """Wrap a HF BERT-family encoder (``BertModel``, or a task model with ``base_model``)
    in SpAtten pruning. The model is not modified and its parameters are shared.

    Raises:
        TypeError: ``model`` is not a BERT-layout encoder or ``config`` not a SpAttenConfig.
        ValueError: a decoder / relative-position model, or pruning layers beyond its depth.
    """
    config = SpAttenConfig() if config is None else config
    if not isinstance(config, SpAttenConfig):
        raise TypeError(f"config must be a SpAttenConfig; got {type(config).__name__}")
    return SpAttenModel(model, config).eval()
