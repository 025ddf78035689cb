"""The pruned encoder as one traceable batch-1 graph, for export to a mobile runtime.

``PrunedGraph(encoder, config)`` maps one text's ``input_ids (1, n)`` (and ``token_type_ids``
where the family has them) to its embedding ``(1, D)`` and the original positions ``(n',)`` of
the tokens still kept after the last layer. It runs the same computation as
``spatten.spatten_forward`` on a batch of one text (no padding): token importance from evenly
spaced query rows, accumulated over the scoring layers; after each pruning layer the
``max(protected, ceil(ratio * n))`` most important tokens are kept (the first and last, [CLS]
and [SEP], always), in text order; int8 linears quantise each row of the activation on its
own and multiply by per-output-channel int8 weights, as ``spatten.quant.Int8Linear`` does.

The length-dependent parts (which query rows score, how many tokens a layer keeps, the
selection itself) are small ``torch.autograd.Function``s whose ``symbolic`` writes the same
computation as ONNX nodes (``Range``/``Round`` in float64, ``TopK`` twice: by score, then by
position), so the sequence axis stays dynamic; eagerly they run the torch reference.
With ``fused_attention`` each layer's attention is ONNX Runtime's fused ``MultiHeadAttention``
(``com.microsoft``) fed by the layer's own Q, K and V: nothing is left to a pattern matcher,
and the scoring branch reads the same Q and K. Without it the attention is plain ``MatMul``,
``Softmax``, ``MatMul`` (standard ONNX, for other runtimes).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F  # noqa: N812
from torch import nn

from ..common_sparse import topk_rows
from .spatten.config import SpAttenConfig, plan_layers
from .spatten.layouts import encoder_layout
from .spatten.model import layer_linears
from .spatten.quant import Int8Linear

__all__ = ["EXPORTABLE_FAMILIES", "PrunedGraph", "check_exportable"]

EXPORTABLE_FAMILIES = ("bert", "distilbert")
_TINY = torch.finfo(torch.float32).tiny


def check_exportable(config: SpAttenConfig, family: str) -> None:
    """Refuse what the batch-1 graph does not compute (names the setting and the fix).

    Raises:
        ValueError: head pruning, threshold mode, progressive attention quantisation, or a
            family whose attention has position terms.
    """
    if family not in EXPORTABLE_FAMILIES:
        raise ValueError(
            f"export supports the {', '.join(EXPORTABLE_FAMILIES)} layouts (BERT, RoBERTa, XLM-R, "
            f"DistilBERT); got a {family} encoder, whose attention position terms the exported "
            "graph does not compute yet"
        )
    if config.head_keep < 1.0:
        raise ValueError(
            f"export does not prune heads (head_keep={config.head_keep}): head pruning is decided "
            "per batch; export with head_keep=1.0"
        )
    if config.token_mode != "topk":
        raise ValueError(f"export keeps a fixed count per layer (token_mode='topk'); got "
                         f"token_mode={config.token_mode!r}")  # fmt: skip
    if config.quant is not None and config.quant.attn_bits is not None:
        raise ValueError(
            f"export computes attention in full precision; got quant.attn_bits="
            f"{config.quant.attn_bits} (use QuantConfig(attn_bits=None))"
        )


def _length(g, x, axis: int):
    """ONNX: ``x.shape[axis]`` as a 0-d int64."""
    shape = g.op("Shape", x)
    return g.op("Gather", shape, g.op("Constant", value_t=torch.tensor(axis)), axis_i=0)


def _const(g, value, dtype):
    return g.op("Constant", value_t=torch.tensor(value, dtype=dtype))


class _ScoreRows(torch.autograd.Function):
    """Query rows ``(q,)`` that score a sequence of ``n = x.shape[axis]`` tokens."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, axis: int, count: int) -> torch.Tensor:
        n = int(x.shape[axis])
        used = min(n, count)
        span = (n - 1) / max(used - 1, 1)  # float64, as score_rows
        return torch.tensor([round(j * span) for j in range(used)], dtype=torch.int64)

    @staticmethod
    def symbolic(g, x, axis: int, count: int):
        n = _length(g, x, axis)
        used = g.op("Min", n, _const(g, count, torch.int64))
        span = g.op("Div", g.op("Cast", g.op("Sub", n, _const(g, 1, torch.int64)), to_i=11),
                    g.op("Cast", g.op("Max", g.op("Sub", used, _const(g, 1, torch.int64)),
                                      _const(g, 1, torch.int64)), to_i=11))  # fmt: skip
        slots = g.op("Range", _const(g, 0.0, torch.float64), g.op("Cast", used, to_i=11),
                     _const(g, 1.0, torch.float64))  # fmt: skip
        return g.op("Cast", g.op("Round", g.op("Mul", slots, span)), to_i=7)


class _KeepTop(torch.autograd.Function):
    """Kept positions ``(k,)`` ascending of ``ranked (n,)``: the ``max(minimum, ceil(ratio *
    original))`` largest (at most ``n``), ties to the lower position."""

    @staticmethod
    def forward(ctx, ranked: torch.Tensor, original: torch.Tensor, ratio: float,
                minimum: torch.Tensor) -> torch.Tensor:  # fmt: skip
        wanted = max(int(minimum), math.ceil(ratio * int(original) - 1e-9))
        return topk_rows(ranked, min(wanted, ranked.numel()))

    @staticmethod
    def symbolic(g, ranked, original, ratio: float, minimum):
        wanted = g.op("Cast", g.op("Ceil", g.op("Sub", g.op(
            "Mul", g.op("Cast", original, to_i=11), _const(g, ratio, torch.float64)),
            _const(g, 1e-9, torch.float64))), to_i=7)  # fmt: skip
        count = g.op("Min", g.op("Max", wanted, minimum), _length(g, ranked, 0))
        k = g.op("Reshape", count, _const(g, [1], torch.int64))
        _, by_score = g.op("TopK", ranked, k, axis_i=0, largest_i=1, sorted_i=1, outputs=2)
        ascending, _ = g.op("TopK", by_score, k, axis_i=0, largest_i=0, sorted_i=1, outputs=2)
        return ascending


class _RowInt8Linear(torch.autograd.Function):
    """``x (n, in)`` float32 times int8 ``weight_t (in, out)``: each row of ``x`` quantised on
    its own to symmetric int8, the exact int32 product rescaled by ``scale (out,)`` and the
    row's step, then ``+ bias`` (``Int8Linear``'s order). ONNX: ``QuantizeLinear`` per row
    (as uint8 with zero point 128: the same integers, and ONNX Runtime's fast u8 x s8 path),
    ``MatMulIntegerToFloat``, ``Mul``, ``Add``."""

    @staticmethod
    def forward(ctx, x, weight_t, scale, bias):
        amax = x.abs().amax(dim=1, keepdim=True)
        step = (amax / 127.0).clamp_min(_TINY)  # (n, 1)
        q = torch.div(x, step).round_().to(torch.int8)
        out = torch._int_mm(q, weight_t).float() * scale[None, :] * step
        return out if bias is None else out + bias

    @staticmethod
    def symbolic(g, x, weight_t, scale, bias):
        amax = g.op("ReduceMax", g.op("Abs", x), axes_i=[1], keepdims_i=1)
        step = g.op("Max", g.op("Div", amax, _const(g, 127.0, torch.float32)),
                    _const(g, _TINY, torch.float32))  # fmt: skip
        flat = g.op("Reshape", step, _const(g, [-1], torch.int64))  # (n,)
        zero = g.op("Expand", _const(g, 128, torch.uint8), g.op("Shape", flat))
        q = g.op("QuantizeLinear", x, flat, zero, axis_i=0)  # uint8 = int8 + 128
        acc = g.op("com.microsoft::MatMulIntegerToFloat", q, weight_t,
                   _const(g, 1.0, torch.float32), scale, _const(g, 128, torch.uint8))
        acc.setType(x.type().with_sizes([None, None]) if hasattr(x.type(), "with_sizes")
                    else x.type())  # fmt: skip
        out = g.op("Mul", acc, step)
        return out if bias is None or _is_none(bias) else g.op("Add", out, bias)


def _is_none(value) -> bool:
    return value.node().mustBeNone() if hasattr(value, "node") else value is None


class _FusedAttention(torch.autograd.Function):
    """``(1, n, h*d)`` query, key, value -> context ``(1, n, h*d)`` (ORT MultiHeadAttention)."""

    @staticmethod
    def forward(ctx, query, key, value, heads: int):
        def split(x):
            return x.view(x.shape[0], x.shape[1], heads, -1).transpose(1, 2)

        context = F.scaled_dot_product_attention(split(query), split(key), split(value))
        return context.transpose(1, 2).reshape(query.shape)

    @staticmethod
    def symbolic(g, query, key, value, heads: int):
        context = g.op("com.microsoft::MultiHeadAttention", query, key, value, num_heads_i=heads)
        context.setType(query.type())  # the exporter has no shape rule for a contrib op
        return context


def _int8_linear(x: torch.Tensor, module: Int8Linear) -> torch.Tensor:
    """``Int8Linear`` on ``x (n, in)`` as exportable ops: per-row symmetric int8, exact int32
    product, rescale by the channel's and the row's scale, then the bias (its order)."""
    return _RowInt8Linear.apply(x, module.weight_int8.t().contiguous(), module.scale.float(),
                                module.bias)


class PrunedGraph(nn.Module):
    """``(input_ids (1, n)[, token_type_ids (1, n)]) -> (embedding (1, D), kept (n',))``.

    ``encoder``: an ``nlp.Encoder`` (its model, pooling and normalisation); ``config`` the
    pruning (``check_exportable``); ``fused_attention`` see the module docstring.
    """

    def __init__(self, encoder, config: SpAttenConfig, *, fused_attention: bool = True) -> None:
        super().__init__()
        layout = encoder_layout(encoder.model)
        check_exportable(config, layout.family)
        self.model = encoder.model  # a submodule: its weights are the graph's initialisers
        self.layout, self.config, self.fused = layout, config, fused_attention
        self.pooling, self.normalize = encoder.pooling, encoder.normalize
        self.plans = plan_layers(config, len(layout.layers), layout.heads)
        self.linears = nn.ModuleList(layer_linears(layer, config.quant, layout)
                                     for layer in layout.layers)  # fmt: skip
        self.token_types = layout.family == "bert"

    def _linear(self, x: torch.Tensor, module: nn.Module) -> torch.Tensor:
        if isinstance(module, Int8Linear):
            return _int8_linear(x, module)
        return F.linear(x, module.weight, module.bias)

    def _qkv(self, x: torch.Tensor, lin) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        if "qkv" in lin:
            return self._linear(x, lin["qkv"]).chunk(3, dim=-1)
        return tuple(self._linear(x, lin[role]) for role in ("query", "key", "value"))

    def _attention(self, query, key, value) -> torch.Tensor:
        heads, size = self.layout.heads, self.layout.head_size
        if self.fused:
            return _FusedAttention.apply(query[None], key[None], value[None], heads)[0]
        q, k, v = (x.view(-1, heads, size).transpose(0, 1) for x in (query, key, value))
        probs = torch.softmax((q * size**-0.5) @ k.transpose(1, 2), dim=-1)  # (h, n, n)
        return (probs @ v).transpose(0, 1).reshape(query.shape)

    def _importance(self, query, key) -> torch.Tensor:
        heads, size = self.layout.heads, self.layout.head_size
        rows = _ScoreRows.apply(query, 0, self.config.score_queries)
        sampled = query.index_select(0, rows).view(-1, heads, size).transpose(0, 1)
        keys = key.view(-1, heads, size).transpose(0, 1)  # (h, n, d)
        logits = (sampled * size**-0.5) @ keys.transpose(1, 2)  # (h, q, n)
        return torch.softmax(logits, dim=-1).sum(dim=(0, 1))  # (n,)

    def forward(self, input_ids: torch.Tensor, token_type_ids: torch.Tensor | None = None):
        layout = self.layout
        inputs = {"input_ids": input_ids}
        if token_type_ids is not None:
            inputs["token_type_ids"] = token_type_ids
        hidden = layout.embed(inputs)[0]  # (n, D)
        positions = torch.arange(hidden.shape[0])  # (n,) original position of each row
        original = positions[-1] + 1
        importance = torch.zeros_like(hidden[:, 0])
        minimum = torch.clamp(original, max=2)  # first and last token: 1 when they are one
        for layer, plan, lin in zip(layout.layers, self.plans, self.linears, strict=True):
            norm = layout.norm(layer, 0)
            attn_in = norm(hidden) if layout.pre_norm else hidden
            query, key, value = self._qkv(attn_in, lin)
            if plan.score_tokens:
                importance = importance + self._importance(query, key)
            out = self._linear(self._attention(query, key, value), lin["out"]) + hidden
            hidden = out if layout.pre_norm else norm(out)
            if plan.token_ratio is not None:
                protect = (positions == 0) | (positions == original - 1)
                ranked = importance.masked_fill(protect, float("inf"))
                kept = _KeepTop.apply(ranked, original, plan.token_ratio, minimum)
                hidden, importance, positions = (t.index_select(0, kept)
                                                 for t in (hidden, importance, positions))
            hidden = self._feed_forward(hidden, layer, lin)
        hidden = layout.finish(hidden)
        vector = hidden[:1] if self.pooling == "cls" else hidden.mean(dim=0, keepdim=True)
        if self.normalize:
            vector = F.normalize(vector, p=2, dim=1)
        return vector, positions

    def _feed_forward(self, x: torch.Tensor, layer: nn.Module, lin) -> torch.Tensor:
        layout = self.layout
        norm, act = layout.norm(layer, 1), layout.activation(layer)
        inner = self._linear(norm(x) if layout.pre_norm else x, lin["ffn_in"])
        if layout.gated:
            value, gate = inner.chunk(2, dim=-1)
            inner = act(value) * gate
        else:
            inner = act(inner)
        out = self._linear(inner, lin["ffn_out"])
        return x + out if layout.pre_norm else norm(out + x)
