"""Importance of heads, FFN neurons and hidden channels, and the reordering that puts the most
important ones first (so that front slices keep them).

Scores come from one forward of the full model over calibration text (real tokens only):

- head ``h`` of layer ``l``: mean L2 norm of its contribution to the attention output,
  ``context_h @ W_o[:, h]^T``;
- FFN neuron ``j`` of layer ``l``: mean ``|gelu(a_j)|`` times the L2 norm of its output
  column ``W_2[:, j]``;
- hidden channel ``c``: root mean square of the residual stream (embedding output and every
  layer output) on channel ``c``.

Reordering is an exact symmetry of a post-LN BERT: permuting the heads (whole Q/K/V row
blocks and output-projection column blocks) or the FFN neurons of a layer changes nothing,
and permuting hidden channels consistently in every weight permutes the outputs the same way
(LayerNorm statistics do not depend on channel order).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

__all__ = ["ImportanceOrder", "measure_importance", "reorder_state_dict"]


@dataclass(frozen=True)
class ImportanceOrder:
    """Orders, most important first: ``channels (H,)`` original hidden channel indices;
    per layer ``heads[l] (n_heads,)`` and ``neurons[l] (F,)`` original indices."""

    channels: torch.Tensor
    heads: tuple[torch.Tensor, ...]
    neurons: tuple[torch.Tensor, ...]

    @classmethod
    def identity(cls, hidden: int, heads: int, ffn: int, layers: int) -> ImportanceOrder:
        """No reordering."""
        return cls(torch.arange(hidden), (torch.arange(heads),) * layers,
                   (torch.arange(ffn),) * layers)  # fmt: skip


def _descending(scores: torch.Tensor) -> torch.Tensor:
    return torch.argsort(scores, descending=True, stable=True)


@torch.no_grad()
def measure_importance(
    model: nn.Module, batches: list[dict[str, torch.Tensor]], head_dim: int
) -> ImportanceOrder:
    """Importance order of a HF BERT ``model`` from its forward on ``batches`` (each with
    ``input_ids`` and ``attention_mask`` ``(B, L)``). See the module docstring.

    Raises:
        ValueError: no batch, or batches without a real token.
    """
    if not batches:
        raise ValueError("measure_importance needs at least one calibration batch; got none")
    if sum(int(b["attention_mask"].sum()) for b in batches) == 0:
        raise ValueError("calibration batches hold no real token (attention_mask all zero)")
    layers = model.encoder.layer
    sums = {"ctx": [0.0] * len(layers), "ffn": [0.0] * len(layers), "res": 0.0}
    current: dict[str, torch.Tensor] = {}

    def keep(name: str):
        def hook(_module, _inputs, output):
            current[name] = output[0] if isinstance(output, tuple) else output

        return hook

    handles = [model.embeddings.register_forward_hook(keep("emb"))]
    for index, layer in enumerate(layers):
        handles.append(layer.attention.self.register_forward_hook(keep(f"ctx{index}")))
        handles.append(layer.intermediate.register_forward_hook(keep(f"ffn{index}")))
        handles.append(layer.output.register_forward_hook(keep(f"out{index}")))
    try:
        for batch in batches:
            model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"])
            _accumulate(sums, current, layers, batch["attention_mask"].bool(), head_dim)
    finally:
        for handle in handles:
            handle.remove()
    return ImportanceOrder(
        channels=_descending(sums["res"]),
        heads=tuple(_descending(s) for s in sums["ctx"]),
        neurons=tuple(_descending(s) for s in sums["ffn"]),
    )


def _accumulate(sums, current, layers, real, head_dim) -> None:
    stream = [current["emb"][real]]
    for index, layer in enumerate(layers):
        context = current[f"ctx{index}"][real]  # (T, heads * d)
        out_weight = layer.attention.output.dense.weight  # (H, heads * d)
        heads = out_weight.shape[1] // head_dim
        per_head = torch.stack([
            (context[:, h * head_dim : (h + 1) * head_dim]
             @ out_weight[:, h * head_dim : (h + 1) * head_dim].T).norm(dim=1).sum()
            for h in range(heads)
        ])  # fmt: skip
        sums["ctx"][index] = sums["ctx"][index] + per_head
        inner = current[f"ffn{index}"][real].abs().sum(dim=0)  # (F,)
        sums["ffn"][index] = sums["ffn"][index] + inner * layer.output.dense.weight.norm(dim=0)
        stream.append(current[f"out{index}"][real])
    sums["res"] = sums["res"] + sum(s.pow(2).sum(dim=0) for s in stream)


def _rows(order: torch.Tensor, block: int) -> torch.Tensor:
    """Row indices of whole blocks (heads) in ``order``."""
    return (order[:, None] * block + torch.arange(block)).reshape(-1)


def reorder_state_dict(
    state: dict[str, torch.Tensor], order: ImportanceOrder, head_dim: int
) -> dict[str, torch.Tensor]:
    """A BERT state dict (HF key names, ``pooler`` keys dropped) with channels, heads and FFN
    neurons in ``order``; the result is an exactly equivalent model whose hidden channel ``i``
    is the original channel ``order.channels[i]``."""
    ch = order.channels
    out: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        if key.startswith("pooler."):
            continue
        out[key] = value
    for name in ("word_embeddings", "position_embeddings", "token_type_embeddings"):
        key = f"embeddings.{name}.weight"
        out[key] = state[key][:, ch]
    for part in ("weight", "bias"):
        out[f"embeddings.LayerNorm.{part}"] = state[f"embeddings.LayerNorm.{part}"][ch]

    def linear(key: str, outputs: torch.Tensor, inputs: torch.Tensor) -> None:
        out[f"{key}.weight"] = state[f"{key}.weight"][outputs][:, inputs]
        out[f"{key}.bias"] = state[f"{key}.bias"][outputs]

    for index, (heads, neurons) in enumerate(zip(order.heads, order.neurons, strict=True)):
        prefix = f"encoder.layer.{index}."
        rows = _rows(heads, head_dim)
        for name in ("query", "key", "value"):
            linear(f"{prefix}attention.self.{name}", rows, ch)
        linear(f"{prefix}attention.output.dense", ch, rows)
        linear(f"{prefix}intermediate.dense", neurons, ch)
        linear(f"{prefix}output.dense", ch, neurons)
        for norm in ("attention.output.LayerNorm", "output.LayerNorm"):
            for part in ("weight", "bias"):
                key = f"{prefix}{norm}.{part}"
                out[key] = state[key][ch]
    return {key: value.contiguous() for key, value in out.items()}
