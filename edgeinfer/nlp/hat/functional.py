"""The sliced forward of a sub-network over a full BERT model's weights (front slicing).

Every weight is used as ``weight[:out, :in]`` (HAT's weight sharing): the first ``E`` hidden
channels, the first ``h`` heads (``h x head_dim`` rows of Q/K/V, columns of the output
projection), the first ``f`` FFN neurons, the first ``L`` layers; embeddings and LayerNorms
are sliced to ``E`` the same way. No dropout: this is the deterministic forward used for
inference and distillation.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F  # noqa: N812
from torch import nn

from .space import SubConfig

__all__ = ["embed_tokens", "encoder_layer", "sliced_linear", "subnet_forward"]


def sliced_linear(x: torch.Tensor, linear: nn.Linear, out: int, inp: int) -> torch.Tensor:
    """``x (..., inp) @ weight[:out, :inp].T + bias[:out]`` -> ``(..., out)``."""
    return F.linear(x, linear.weight[:out, :inp], linear.bias[:out])


def _layer_norm(x: torch.Tensor, norm: nn.LayerNorm) -> torch.Tensor:
    width = x.shape[-1]
    return F.layer_norm(x, (width,), norm.weight[:width], norm.bias[:width], norm.eps)


def embed_tokens(embeddings: nn.Module, input_ids: torch.Tensor, width: int) -> torch.Tensor:
    """BERT embeddings (word + position + token type 0, LayerNorm) of ``input_ids (B, L)``
    on the first ``width`` channels -> ``(B, L, width)``."""
    length = input_ids.shape[1]
    words = F.embedding(input_ids, embeddings.word_embeddings.weight[:, :width])
    positions = embeddings.position_embeddings.weight[:length, :width]
    types = embeddings.token_type_embeddings.weight[0, :width]
    return _layer_norm(words + positions + types, embeddings.LayerNorm)


def _attention(
    x: torch.Tensor, self_attn: nn.Module, heads: int, head_dim: int, key_mask: torch.Tensor | None
) -> torch.Tensor:
    batch, length, width = x.shape
    rows = heads * head_dim

    def project(linear: nn.Linear) -> torch.Tensor:  # (B, h, L, d)
        out = sliced_linear(x, linear, rows, width)
        return out.view(batch, length, heads, head_dim).transpose(1, 2)

    query, key, value = project(self_attn.query), project(self_attn.key), project(self_attn.value)
    context = F.scaled_dot_product_attention(query, key, value, attn_mask=key_mask)
    return context.transpose(1, 2).reshape(batch, length, rows)


def encoder_layer(
    x: torch.Tensor,
    layer: nn.Module,
    heads: int,
    ffn: int,
    head_dim: int,
    key_mask: torch.Tensor | None,
) -> torch.Tensor:
    """One post-LN BERT layer on ``x (B, L, E)`` with ``heads`` heads and ``ffn`` neurons.
    ``key_mask (B, 1, 1, L)`` bool, True on keys to attend (``None``: no padding)."""
    width = x.shape[-1]
    context = _attention(x, layer.attention.self, heads, head_dim, key_mask)
    out = layer.attention.output
    x = _layer_norm(x + sliced_linear(context, out.dense, width, heads * head_dim), out.LayerNorm)
    inner = layer.intermediate.intermediate_act_fn(
        sliced_linear(x, layer.intermediate.dense, ffn, width)
    )
    out = layer.output
    return _layer_norm(x + sliced_linear(inner, out.dense, width, ffn), out.LayerNorm)


def subnet_forward(
    model: nn.Module,
    config: SubConfig,
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor,
    head_dim: int,
) -> torch.Tensor:
    """Last hidden state ``(B, L, E)`` of sub-network ``config`` of the BERT ``model``,
    channels in the model's own (internal) order."""
    mask = attention_mask.bool()
    key_mask = None if bool(mask.all()) else mask[:, None, None, :]
    x = embed_tokens(model.embeddings, input_ids, config.embed_dim)
    layers = model.encoder.layer
    for index, (ffn, heads) in enumerate(zip(config.ffn_dims, config.heads, strict=True)):
        x = encoder_layer(x, layers[index], heads, ffn, head_dim, key_mask)
    return x
