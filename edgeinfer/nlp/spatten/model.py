"""SpAtten forward over a HuggingFace encoder's own weights (any family of ``layouts``).

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
    rotate,
    select_heads,
    token_importance,
)
from .layouts import EncoderLayout, encoder_layout
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


def _default_protect(mask: torch.Tensor) -> torch.Tensor:
    """First and last real token of each row ([CLS] and [SEP] of a BERT tokenizer)."""
    protect = torch.zeros_like(mask)
    lengths = mask.sum(dim=1)
    first = mask.int().argmax(dim=1)
    rows = torch.arange(mask.shape[0])
    protect[rows, first] = True
    protect[rows, first + lengths - 1] = True
    return protect & mask


def sequence_lengths(mask: torch.Tensor) -> list[int] | None:
    """Each row's real-token count when a padded batch of several rows holds its real tokens
    at the front (right padding, as the tokenizers pad and as pruning packs); else None."""
    if mask.shape[0] < 2 or bool(mask.all()):
        return None
    lengths = mask.sum(dim=1)
    front = torch.arange(mask.shape[1])[None, :] < lengths[:, None]
    return [int(n) for n in lengths] if bool((front == mask).all()) else None


def _attention(query, key, value, mask, quant, bias):
    """Context ``(B, h, L, d)`` and recomputed rows (or None) of one attention call."""
    if quant is not None and quant.attn_bits is not None:
        return progressive_attention(query, key, value, mask, quant.attn_bits,
                                     quant.recompute_threshold)  # fmt: skip
    if bias is None:
        full = bool(mask.all())  # no padding: the unmasked SDPA kernel is faster
        attn_mask = None if full else mask[:, None, None, :]
    elif bias.dtype == torch.bool:
        attn_mask = bias & mask[:, None, None, :]
    else:
        attn_mask = bias.masked_fill(~mask[:, None, None, :], float("-inf"))
    return F.scaled_dot_product_attention(query, key, value, attn_mask=attn_mask), None


def _attend(hidden, mask, linears, heads, head_size, quant, terms):
    """Kept heads' query, key, context ``(B, h, L, d)``, head rows, recomputed fraction and
    the layer's attention bias restricted to the kept heads (or None).

    A padded batch attends one sequence at a time at its own length (``sequence_lengths``),
    as that sequence alone would: padding never changes the float rounding of a row, so a
    text's result does not depend on its batch (with int8 linears too, whose roundings the
    smallest float difference would move)."""
    rows = None if heads is None else head_rows(heads, head_size)
    query, key, value = project_heads(hidden, linears, rows, head_size)
    rope, bias = terms
    if rope is not None:
        query, key = rotate(query, key, *rope)
    if bias is not None and heads is not None and bias.shape[1] > 1:
        bias = bias.index_select(1, heads)
    lengths = sequence_lengths(mask)
    if lengths is None:
        context, redo = _attention(query, key, value, mask, quant, bias)
    else:
        context, redo = query.new_zeros(value.shape), None
        for row, n in enumerate(lengths):
            part = slice(row, row + 1)
            alone = None if bias is None else bias[part, :, :n, :n]
            out, again = _attention(query[part, :, :n], key[part, :, :n], value[part, :, :n],
                                    mask[part, :n], quant, alone)  # fmt: skip
            context[part, :, :n] = out
            if again is not None:
                redo = torch.zeros(query.shape[:3], dtype=torch.bool) if redo is None else redo
                redo[part, :, :n] = again
    fraction = 1.0 if redo is None else float(redo.sum() / (mask.sum() * query.shape[1]))
    return query, key, context, rows, fraction, bias


def _importance(query, key, mask, count, bias):
    """``token_importance`` of each sequence at its own length (see ``_attend``)."""
    lengths = sequence_lengths(mask)
    if lengths is None:
        return token_importance(query, key, mask, count, bias)
    scores = query.new_zeros(mask.shape)
    for row, n in enumerate(lengths):
        part = slice(row, row + 1)
        alone = None if bias is None else bias[part, :, :n, :n]
        scores[part, :n] = token_importance(query[part, :, :n], key[part, :, :n],
                                            mask[part, :n], count, alone)  # fmt: skip
    return scores


def layer_linears(layer: nn.Module, quant: QuantConfig | None,
                  layout: type[EncoderLayout] | EncoderLayout = EncoderLayout) -> nn.ModuleDict:
    """The linears of a layer by role (``layout``, default BERT): the layer's own ``query``,
    ``key``, ``value`` (or a fused ``qkv``), ``out``, ``ffn_in``, ``ffn_out`` (shared
    ``nn.Linear``); with int8 linears ``Int8Linear`` copies, Q/K/V fused into one ``qkv`` (a
    single GEMM and activation quantisation)."""
    found = layout.linears(layer)
    if quant is None or not quant.linear_int8:
        return nn.ModuleDict(found)
    if "qkv" not in found:
        parts = [found.pop(role) for role in ("query", "key", "value")]
        has_bias = parts[0].bias is not None
        fused = nn.Linear(parts[0].in_features, 3 * parts[0].out_features, bias=has_bias)
        with torch.no_grad():
            fused.weight.copy_(torch.cat([p.weight for p in parts]))
            if has_bias:
                fused.bias.copy_(torch.cat([p.bias for p in parts]))
        found["qkv"] = fused
    return nn.ModuleDict({role: Int8Linear(module) for role, module in found.items()})


def spatten_forward(
    layout: EncoderLayout,
    plans: tuple[LayerPlan, ...],
    inputs: dict[str, torch.Tensor],
    config: SpAttenConfig,
    linears: nn.ModuleList | None = None,
) -> SpAttenOutput:
    """Embeddings + layers with cascade token/head pruning (see the module docstring).

    ``layout`` from ``encoder_layout(model)``. ``inputs``: ``input_ids (B, L)``,
    ``attention_mask (B, L)``, optional ``token_type_ids (B, L)`` and ``protect (B, L)``
    (always-kept tokens; default first and last real token). ``plans`` from ``plan_layers``,
    one per layer. ``linears``: one ``layer_linears`` dict per layer (default: built from
    ``config.quant``, uncached).
    """
    layers = layout.layers
    if linears is None:
        linears = nn.ModuleList(layer_linears(layer, config.quant, layout) for layer in layers)
    mask = inputs["attention_mask"].bool()
    protect = inputs.get("protect")
    protect = _default_protect(mask) if protect is None else protect.bool() & mask
    hidden = layout.embed(inputs)
    batch, length, _ = hidden.shape
    n_heads, head_size = layout.heads, layout.head_size
    positions = torch.arange(length).expand(batch, length)
    original_lengths = mask.sum(dim=1)
    importance = hidden.new_zeros(batch, length)
    head_score = hidden.new_zeros(n_heads)
    heads, stats = None, {"att": [], "ffn": [], "tok": [], "heads": [], "redo": []}
    threshold = config.token_threshold if config.token_mode == "threshold" else None
    known: dict[object, tuple] = {}  # position terms by layer kind, until tokens are pruned
    for index, (layer, plan, lin) in enumerate(zip(layers, plans, linears, strict=True)):
        stats["att"].append(hidden.shape[1])
        stats["heads"].append(n_heads if heads is None else heads.numel())
        kind = layout.terms_kind(index)
        if kind not in known:
            known[kind] = layout.terms(index, positions, hidden)
        terms = known[kind]
        norm = layout.norm(layer, 0)
        attn_in = norm(hidden) if layout.pre_norm else hidden
        query, key, context, rows, redo, bias = _attend(
            attn_in, mask, lin, heads, head_size, config.quant, terms)
        stats["redo"].append(redo)
        if plan.score_tokens:
            importance = importance + _importance(query, key, mask, config.score_queries, bias)
        if plan.score_heads:
            kept = torch.arange(n_heads) if heads is None else heads
            head_score[kept] += head_magnitude(context, mask)
        hidden = attention_output(context, hidden, lin["out"],
                                  None if layout.pre_norm else norm, rows)  # fmt: skip
        if plan.token_ratio is not None:
            counts = keep_counts(original_lengths, plan.token_ratio, protect.sum(dim=1))
            (hidden, importance, positions, protect), mask = prune_tokens(
                (hidden, importance, positions, protect), mask, importance, protect, counts,
                threshold,
            )  # fmt: skip
            protect = protect & mask
            known.clear()  # other positions: other terms
        stats["ffn"].append(hidden.shape[1])
        stats["tok"].append(int(mask.sum()))
        hidden = feed_forward(hidden, layer, lin, layout)
        if plan.head_count is not None:
            current = torch.arange(n_heads) if heads is None else heads
            heads = select_heads(head_score, current, plan.head_count)
    hidden = layout.finish(hidden)
    positions = positions.masked_fill(~mask, -1)
    summary = SpAttenStats(
        *(tuple(stats[k]) for k in ("att", "ffn", "tok", "heads", "redo")),
        linear_bits=8 if config.quant is not None and config.quant.linear_int8 else 32,
    )
    return SpAttenOutput(hidden=hidden, mask=mask, positions=positions, stats=summary)


class SpAttenModel(nn.Module):
    """A HF encoder run with SpAtten pruning; shares the wrapped model's weights.

    Call with ``input_ids``, ``attention_mask`` (and optional ``token_type_ids``,
    ``protect``), all ``(B, L)``; returns a ``SpAttenOutput``. ``layout`` says how the
    encoder's family is read (``layouts.encoder_layout``).
    """

    def __init__(self, model: nn.Module, config: SpAttenConfig) -> None:
        super().__init__()
        layout = encoder_layout(model)
        quant = config.quant
        if layout.position_terms and quant is not None and quant.attn_bits is not None:
            raise ValueError(
                f"progressive attention quantisation (quant.attn_bits) reads attention without "
                f"position terms; a {layout.family} encoder has them. Use attn_bits=None "
                "(int8 linears still work)"
            )
        self.model = model
        self.config = config
        self.layout = layout
        self.plans = plan_layers(config, len(layout.layers), layout.heads)
        self.linears = nn.ModuleList(layer_linears(layer, quant, layout)
                                     for layer in layout.layers)  # fmt: skip

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
        inputs = {"input_ids": input_ids, "attention_mask": attention_mask, **extra}
        return spatten_forward(self.layout, self.plans, inputs, self.config, self.linears)


def apply_spatten(model: nn.Module, config: SpAttenConfig | None = None) -> SpAttenModel:
    """Wrap a HF encoder (BERT, RoBERTa, XLM-R, DistilBERT, MPNet, ModernBERT, or a task
    model with ``base_model``) in SpAtten pruning. The model is not modified and its
    parameters are shared.

    Raises:
        TypeError: ``model`` is not an encoder of a supported layout or ``config`` not a
            SpAttenConfig.
        ValueError: a decoder / relative-position BERT, pruning layers beyond its depth, or
            progressive attention quantisation on a family with position terms.
    """
    config = SpAttenConfig() if config is None else config
    if not isinstance(config, SpAttenConfig):
        raise TypeError(f"config must be a SpAttenConfig; got {type(config).__name__}")
    return SpAttenModel(model, config).eval()
