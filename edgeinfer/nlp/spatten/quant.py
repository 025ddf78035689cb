"""Int8 linear layers for the pruned forward: per-channel int8 weights, per-row activations.

A weight ``W (out, in)`` is stored as int8 ``Q`` with one scale per output row,
``W ≈ scale[:, None] * Q`` (symmetric, ``|Q| <= 127``). Each call quantises every row of the
flattened input on its own (symmetric 8-bit: the row's absolute maximum maps to 127),
multiplies in integers with ``torch._int_mm`` (int8 x int8 -> exact int32 sums: no int16
saturation, so the full 8 bits are used, not the 7 of fbgemm's ``reduce_range``) and
rescales by the row's and the output channel's scales. Every step is per row or exact, so a
row's result depends on that row alone: not on the other texts of a batch, nor on padding.
The quantisation and the rescale are each one pass of a numba kernel where numba runs
(``edgeinfer._jit``), else the same float32 operations in torch.
No quantized tensors are built (torch deprecates them) and no quantized engine is needed.

Head pruning slices whole rows (Q/K/V) or columns (output projection) of ``Q``; a per-row
scale stays exact under both, so a sliced weight is re-laid out, never re-quantised. The
transposed int8 weights are cached per slice on the module (bounded, least recently used
dropped): cascade head pruning repeats head sets.
"""

from __future__ import annotations

import contextlib
from collections import OrderedDict

import numpy as np
import torch
import torch.nn.functional as F  # noqa: N812
from torch import nn

from ... import _jit
from ...common_sparse import select_rows

__all__ = ["Int8Linear", "apply_linear", "int8_rows_matmul", "quantize_per_row", "quantize_rows"]

_CACHE_SIZE = 16
_NO_BIAS = np.zeros(0, dtype=np.float32)
_TINY = torch.finfo(torch.float32).tiny


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


def quantize_rows(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Each row of ``x (M, K)`` float32 to symmetric int8 on its own: ``(q (M, K) int8,
    step (M, 1) float32)`` with ``x ≈ step * q``, ``|q| <= 127`` (round half to even).

    A zero row gives zeros; a row holding NaN/inf gets a non-finite ``step``, so its
    product row is non-finite too (as a float linear's), never silently finite.
    """
    amax = torch.maximum(x.amax(dim=1, keepdim=True), x.amin(dim=1, keepdim=True).neg_())
    step = amax.div_(127.0).clamp_min_(_TINY)  # (M, 1); the floor keeps 0 / step at 0
    return torch.div(x, step).round_().to(torch.int8), step  # |x / step| <= 127 (+ rounding)


def _compile(numba, function, parallel: bool):
    # the serial twin gets its own name, so numba's disk cache keeps the two apart
    function.__qualname__ += "" if parallel else "_serial"
    return numba.njit(parallel=parallel, cache=True, nogil=True)(function)


def _magnitudes(numba, parallel: bool):
    def magnitudes(bits, largest):  # bits: x (M, K) float32 viewed as uint32 -> (M,) uint32
        for r in numba.prange(bits.shape[0]):
            top = np.uint32(0)
            for k in range(bits.shape[1]):  # |x| as integers keeps the order: a vectorised max
                top = max(top, bits[r, k] & np.uint32(0x7FFFFFFF))
            largest[r] = top
    return _compile(numba, magnitudes, parallel)


def _quantize(numba, parallel: bool):
    tiny = np.float32(_TINY)

    def quantize(x, amax, q, step):  # x (M, K), amax (M,) float32 -> q int8, step (M, 1)
        for r in numba.prange(x.shape[0]):
            if not amax[r] < np.inf:  # inf or NaN: the product row is non-finite
                step[r, 0] = np.float32(np.nan)
                for k in range(x.shape[1]):
                    q[r, k] = 0
                continue
            s = max(amax[r] / np.float32(127.0), tiny)
            step[r, 0] = s
            for k in range(x.shape[1]):
                q[r, k] = np.int8(np.rint(x[r, k] / s))  # half to even, as torch.round
    return _compile(numba, quantize, parallel)


def _rescale(numba, parallel: bool):
    def rescale(acc, scale, step, bias, out):  # out = acc * scale * step (+ bias), float32
        for r in numba.prange(acc.shape[0]):
            s = step[r, 0]
            if bias.shape[0] > 0:  # one branch per row: each inner loop vectorises
                for n in range(acc.shape[1]):
                    out[r, n] = (np.float32(acc[r, n]) * scale[0, n]) * s + bias[n]
            else:
                for n in range(acc.shape[1]):
                    out[r, n] = (np.float32(acc[r, n]) * scale[0, n]) * s
    return _compile(numba, rescale, parallel)


# each kernel twice: parallel (numba's pool, inside _jit.threads) and serial (one thread: no
# pool launch, no thread setting; a few microseconds less per call on small activations)
for _name, _build in (("row_magnitudes", _magnitudes), ("quantize_rows", _quantize),
                      ("rescale_rows", _rescale)):  # fmt: skip
    _jit.kernel(_name)(lambda numba, build=_build: build(numba, True))
    _jit.kernel(_name + "_serial")(lambda numba, build=_build: build(numba, False))


def _fused_rows(x: torch.Tensor, suffix: str) -> tuple[torch.Tensor, torch.Tensor] | None:
    quantize = _jit.get("quantize_rows" + suffix)
    if quantize is None or x.dtype != torch.float32 or not x.is_contiguous() or x.dim() != 2:
        return None
    magnitudes = _jit.get("row_magnitudes" + suffix)
    values = x.numpy()
    largest = np.empty(x.shape[0], dtype=np.uint32)
    q = torch.empty(x.shape, dtype=torch.int8)
    step = torch.empty(x.shape[0], 1, dtype=torch.float32)
    magnitudes(values.view(np.uint32), largest)
    quantize(values, largest.view(np.float32), q.numpy(), step.numpy())
    return q, step


@_jit.warmer
def _warm() -> None:
    weight_t = torch.zeros(32, 32, dtype=torch.int8)
    before = torch.get_num_threads()
    try:
        for threads in (1, 2):  # the serial and the parallel kernels
            torch.set_num_threads(threads)
            for bias in (None, torch.zeros(32)):
                int8_rows_matmul(torch.zeros(17, 32), weight_t, torch.ones(1, 32), bias)
    finally:
        torch.set_num_threads(before)


def int8_rows_matmul(
    x: torch.Tensor, weight_t: torch.Tensor, scale: torch.Tensor, bias: torch.Tensor | None,
    *, fused: bool = True,
) -> torch.Tensor:
    """``x (M, in)`` float32 times int8 ``weight_t (in, out)`` (contiguous) with per-channel
    ``scale (1, out)`` float32, ``+ bias (out,)`` when given -> float32 ``(M, out)``.

    Rows of ``x`` are quantised by :func:`quantize_rows`; the int32 sums are exact. With
    ``fused`` (and numba, see ``edgeinfer._jit``) the quantisation and the rescale each run as
    one pass of a numba kernel instead of several torch passes (serial kernels at one torch
    thread, parallel ones otherwise); ``fused=False`` is the torch reference. All compute the
    same float32 operations in the same order.
    """
    serial = torch.get_num_threads() == 1
    rescale = _jit.get("rescale_rows_serial" if serial else "rescale_rows") if fused else None
    if rescale is not None and scale.is_contiguous() and scale.dtype == torch.float32:
        # one thread setting for all kernels; none needed for the serial ones
        with contextlib.nullcontext() if serial else _jit.threads():
            packed = _fused_rows(x.detach(), "_serial" if serial else "")  # no gradient
            if packed is not None:
                rows, step = packed
                acc = torch._int_mm(rows, weight_t)  # (M, out) int32, exact
                values = acc.numpy()
                extra = _NO_BIAS if bias is None else bias.contiguous().float().numpy()
                # in place: each float32 result overwrites the int32 sum it is made from
                rescale(values, scale.numpy(), step.numpy(), extra, values.view(np.float32))
                return acc.view(torch.float32)
    rows, step = quantize_rows(x)
    acc = torch._int_mm(rows, weight_t)  # (M, out) int32, exact
    out = acc.float().mul_(scale)  # (M, out)
    return out.mul_(step) if bias is None else torch.addcmul(bias, out, step)


def _index_key(index: torch.Tensor | None) -> tuple | None:
    # hashable and cheap (bytes, not a list of ints); dtype and shape keep keys apart
    if index is None:
        return None
    if not isinstance(index, torch.Tensor):
        raise TypeError(f"rows/cols must be 1-D int64 tensors or None; got {type(index).__name__}")
    return (index.dtype, tuple(index.shape), index.detach().cpu().numpy().tobytes())


class Int8Linear(nn.Module):
    """An ``nn.Linear`` with int8 per-row weights; call with optional ``rows``/``cols``.

    ``forward(x (..., in), rows=None, cols=None) -> (..., out')`` float32: ``rows (k,)``
    int64 keeps only those output features (and bias entries), ``cols (k,)`` only those input
    features (``x`` then has ``k`` features). The source linear is not modified.

    Raises (``forward``):
        TypeError: ``x`` not a floating tensor, or ``rows``/``cols`` not 1-D int64.
        ValueError: ``x``'s last dimension is not the (sliced) input width, or an index is
            out of range.
    """

    def __init__(self, linear: nn.Linear) -> None:
        super().__init__()
        if not isinstance(linear, nn.Linear):
            raise TypeError(f"linear must be an nn.Linear; got {type(linear).__name__}")
        weight, scale = quantize_per_row(linear.weight)
        self.register_buffer("weight_int8", weight)
        self.register_buffer("scale", scale)
        bias = None if linear.bias is None else linear.bias.detach().float().clone()
        self.register_buffer("bias", bias)
        self.in_features, self.out_features = linear.in_features, linear.out_features
        self._packed: OrderedDict[tuple, tuple] = OrderedDict()

    def _pack(self, rows: torch.Tensor | None, cols: torch.Tensor | None) -> tuple:
        # (weight_t (in', out') int8 contiguous, scale (1, out') float32, bias (out',) or None)
        key = (_index_key(rows), _index_key(cols))
        packed = self._packed.get(key)
        if packed is not None:
            self._packed.move_to_end(key)
            return packed
        weight_t, scale, bias = self.weight_int8.t(), self.scale, self.bias  # (in, out)
        if cols is not None:
            weight_t = select_rows(weight_t, cols)  # checks cols: 1-D int64 in [0, in)
        if rows is not None:
            scale = select_rows(scale, rows)  # checks rows: 1-D int64 in [0, out)
            weight_t = weight_t.index_select(1, rows)
            bias = None if bias is None else bias.index_select(0, rows)
        packed = (weight_t.contiguous(), scale.float()[None, :], bias)
        self._packed[key] = packed
        if len(self._packed) > _CACHE_SIZE:
            self._packed.popitem(last=False)
        return packed

    def forward(
        self, x: torch.Tensor, rows: torch.Tensor | None = None, cols: torch.Tensor | None = None
    ) -> torch.Tensor:
        if not isinstance(x, torch.Tensor) or not x.is_floating_point() or x.dim() < 1:
            got = type(x).__name__
            if isinstance(x, torch.Tensor):
                got = f"{x.dtype} of shape {tuple(x.shape)}"
            raise TypeError(f"x must be a floating tensor of shape (..., in_features); got {got}")
        weight_t, scale, bias = self._pack(rows, cols)
        if x.shape[-1] != weight_t.shape[0]:
            raise ValueError(
                f"x must have {weight_t.shape[0]} input features (in_features "
                f"{self.in_features}, {'sliced by cols' if cols is not None else 'unsliced'}); "
                f"got shape {tuple(x.shape)}"
            )
        flat = x.reshape(-1, x.shape[-1]).float().contiguous()  # (M, in')
        out = int8_rows_matmul(flat, weight_t, scale, bias)
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
