"""Int8 linear layers for the pruned forward: per-channel int8 weights, dynamic activations.

A weight ``W (out, in)`` is stored as int8 ``Q`` with one scale per output row,
``W ≈ scale[:, None] * Q`` (symmetric, ``|Q| <= 127``). The GEMM is fbgemm/onednn's
``quantized.linear_dynamic``: the activation is quantised per call (per tensor, 7-bit
``reduce_range``: the full 8-bit range saturates int16 pair sums on AVX2 — cosine 0.974 to
fp32 on random data against 0.9998 with 7 bits) and the int32 result is rescaled to float.
Head pruning slices whole rows (Q/K/V) or columns (output projection) of ``Q``; a per-row
scale stays exact under both, so a sliced weight is re-packed, not re-quantised. Packed
weights are cached per slice on the module (bounded): cascade head pruning repeats head sets.
"""

from __future__ import annotations

from collections import OrderedDict

import torch
import torch.nn.functional as F  # noqa: N812
from torch import nn

from ...common_sparse import select_rows

__all__ = ["Int8Linear", "apply_linear", "quantize_per_row"]

_CACHE_SIZE = 16


def quantize_per_row(weight: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Symmetric int8 of ``weight (out, in)``: ``(Q (out, in) int8, scale (out,) float64)``.

    Raises:
        ValueError: ``weight`` not a 2-D floating tensor.
    """
    if not isinstance(weight, torch.Tensor) or weight.dim() != 2 or not weight.is_floating_point():
        raise ValueError(f"weight must be a 2-D float tensor (out, in); got {weight!r:.80}")
    amax = weight.detach().abs().amax(dim=1).double()
    scale = torch.where(amax > 0, amax / 127.0, torch.ones_like(amax))
    quantised = torch.round(weight.detach().double() / scale[:, None]).clamp_(-127, 127)
    return quantised.to(torch.int8), scale


def _check_engine() -> None:
    engine = torch.backends.quantized.engine
    if engine not in ("x86", "fbgemm", "onednn", "qnnpack"):
        raise RuntimeError(
            f"int8 linears need a quantized engine (x86, fbgemm, onednn or qnnpack); torch "
            f"reports {engine!r} (supported here: {torch.backends.quantized.supported_engines}). "
            f"Use SpAttenConfig(quant=QuantConfig(linear_int8=False))."
        )


class Int8Linear(nn.Module):
    """An ``nn.Linear`` with int8 per-row weights; call with optional ``rows``/``cols``.

    ``forward(x (..., in), rows=None, cols=None) -> (..., out')``: ``rows (k,)`` int64 keeps
    only those output features (and bias entries), ``cols (k,)`` only those input features
    (``x`` then has ``k`` features). The source linear is not modified.
    """

    def __init__(self, linear: nn.Linear) -> None:
        super().__init__()
        if not isinstance(linear, nn.Linear):
            raise TypeError(f"linear must be an nn.Linear; got {type(linear).__name__}")
        _check_engine()
        weight, scale = quantize_per_row(linear.weight)
        self.register_buffer("weight_int8", weight)
        self.register_buffer("scale", scale)
        bias = None if linear.bias is None else linear.bias.detach().float().clone()
        self.register_buffer("bias", bias)
        self.in_features, self.out_features = linear.in_features, linear.out_features
        self._packed: OrderedDict[tuple, object] = OrderedDict()

    def dequantized(self) -> torch.Tensor:
        """The float weight ``(out, in)`` the int8 GEMM effectively uses."""
        return self.weight_int8.double().mul(self.scale[:, None]).float()

    def _pack(self, rows: torch.Tensor | None, cols: torch.Tensor | None):
        key = (
            None if rows is None else tuple(rows.tolist()),
            None if cols is None else tuple(cols.tolist()),
        )
        packed = self._packed.get(key)
        if packed is not None:
            self._packed.move_to_end(key)
            return packed
        weight, scale, bias = self.weight_int8, self.scale, self.bias
        if rows is not None:
            weight, scale = select_rows(weight, rows), select_rows(scale, rows)
            bias = None if bias is None else select_rows(bias, rows)
        if cols is not None:
            weight = weight.index_select(1, cols)
        zero = torch.zeros(scale.numel(), dtype=torch.int64)
        qweight = torch._make_per_channel_quantized_tensor(weight.contiguous(), scale, zero, 0)
        packed = torch.ops.quantized.linear_prepack(qweight, bias)
        self._packed[key] = packed
        if len(self._packed) > _CACHE_SIZE:
            self._packed.popitem(last=False)
        return packed

    def forward(
        self, x: torch.Tensor, rows: torch.Tensor | None = None, cols: torch.Tensor | None = None
    ) -> torch.Tensor:
        packed = self._pack(rows, cols)
        flat = x.reshape(-1, x.shape[-1]).float().contiguous()
        out = torch.ops.quantized.linear_dynamic(flat, packed, True)  # 7-bit: no saturation
        return out.view(*x.shape[:-1], out.shape[-1])


def apply_linear(
    x: torch.Tensor,
    linear: nn.Module,
    *,
    rows: torch.Tensor | None = None,
    cols: torch.Tensor | None = None,
) -> torch.Tensor:
    """``linear`` (``nn.Linear`` or ``Int8Linear``) on ``x (..., in)``, optionally sliced.

    ``rows (k,)``: keep only these output features; ``cols (k,)``: ``x`` holds only these
    input features. An ``nn.Linear``'s weight is physically sliced (``F.linear``).
    """
    if isinstance(linear, Int8Linear):
        return linear(x, rows=rows, cols=cols)
    if rows is None and cols is None:
        return linear(x)
    weight, bias = linear.weight, linear.bias
    if rows is not None:
        weight = select_rows(weight, rows)
        bias = None if bias is None else select_rows(bias, rows)
    if cols is not None:
        weight = weight.index_select(1, cols)
    return F.linear(x, weight, bias)
