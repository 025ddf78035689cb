"""Export a sub-network as a plain HuggingFace ``BertModel`` of its own (compact) shape.

The exported model holds contiguous copies of the sliced weights. Hidden channels are put
back in their original order (ascending original channel index), so exporting the largest
config of a reordered supernet gives the original model's weights exactly. Per-layer head
counts and FFN widths are set on the layer modules themselves (``query``/``key``/``value``,
``dense`` linears and ``num_attention_heads``); HF's BERT forward derives the head count of a
layer from its ``query`` output width, so the model runs unmodified (and can go through
``edgeinfer.nlp.apply_spatten`` token pruning). The sub-network is recorded on the config as
``hat_subconfig``, ``hat_head_dim`` and ``hat_channels`` (original channel index of each hidden
channel), so a ``save_pretrained`` directory can be rebuilt by ``load_subnet`` (``saved.py``).
"""

from __future__ import annotations

import contextlib

import torch
from torch import nn

from .space import SubConfig

__all__ = ["build_bert", "export_state_dict", "export_subnet"]


def export_state_dict(
    state: dict[str, torch.Tensor], config: SubConfig, channels: torch.Tensor, head_dim: int
) -> dict[str, torch.Tensor]:
    """The sub-network's weights from a full (reordered) BERT ``state`` dict: front slices,
    hidden channels re-sorted by ``channels`` (original index of each internal channel)."""
    width = config.embed_dim
    sel = torch.argsort(channels[:width])  # internal positions, ascending original index
    out = {}
    for name in ("word_embeddings", "position_embeddings", "token_type_embeddings"):
        key = f"embeddings.{name}.weight"
        out[key] = state[key][:, :width][:, sel]
    for key in ("embeddings.LayerNorm.weight", "embeddings.LayerNorm.bias"):
        out[key] = state[key][:width][sel]
    for index, (ffn, heads) in enumerate(zip(config.ffn_dims, config.heads, strict=True)):
        prefix, rows = f"encoder.layer.{index}.", heads * head_dim
        for name in ("query", "key", "value"):
            key = f"{prefix}attention.self.{name}"
            out[f"{key}.weight"] = state[f"{key}.weight"][:rows, :width][:, sel]
            out[f"{key}.bias"] = state[f"{key}.bias"][:rows]
        outputs = ((f"{prefix}attention.output.dense", rows), (f"{prefix}output.dense", ffn))
        for key, inner in outputs:
            out[f"{key}.weight"] = state[f"{key}.weight"][:width, :inner][sel]
            out[f"{key}.bias"] = state[f"{key}.bias"][:width][sel]
        key = f"{prefix}intermediate.dense"
        out[f"{key}.weight"] = state[f"{key}.weight"][:ffn, :width][:, sel]
        out[f"{key}.bias"] = state[f"{key}.bias"][:ffn]
        for norm in ("attention.output.LayerNorm", "output.LayerNorm"):
            for part in ("weight", "bias"):
                key = f"{prefix}{norm}.{part}"
                out[key] = state[key][:width][sel]
    return {key: value.detach().clone().contiguous() for key, value in out.items()}


def build_bert(base_config, config: SubConfig, head_dim: int) -> nn.Module:
    """An (uninitialised-weights) ``BertModel`` without pooler shaped as ``config``, with the
    attention implementation and vocabulary of ``base_config`` (a ``BertConfig``)."""
    from transformers import BertConfig, BertModel

    values = base_config.to_dict()
    values.update(
        hidden_size=config.embed_dim,
        num_hidden_layers=config.layers,
        num_attention_heads=config.embed_dim // head_dim,
        intermediate_size=max(config.ffn_dims),
        hat_subconfig=config.to_dict(),
        hat_head_dim=head_dim,
    )
    bert_config = BertConfig(**values)
    bert_config._attn_implementation = base_config._attn_implementation
    with _skip_init():  # the weights are loaded right after: random init is wasted time
        model = BertModel(bert_config, add_pooling_layer=False)
        width = config.embed_dim
        for layer, ffn, heads in zip(
            model.encoder.layer, config.ffn_dims, config.heads, strict=True
        ):
            rows = heads * head_dim
            attn = layer.attention.self
            attn.query, attn.key, attn.value = (nn.Linear(width, rows) for _ in range(3))
            attn.num_attention_heads, attn.all_head_size = heads, rows
            attn.attention_head_size, attn.scaling = head_dim, head_dim**-0.5
            layer.attention.output.dense = nn.Linear(rows, width)
            layer.intermediate.dense = nn.Linear(width, ffn)
            layer.output.dense = nn.Linear(ffn, width)
    return model


def _skip_init():
    """transformers' own context that skips weight initialisation (what ``from_pretrained``
    uses), or a no-op where this transformers version lacks it."""
    try:
        from transformers.initialization import no_init_weights
    except ImportError:
        try:
            from transformers.modeling_utils import no_init_weights
        except ImportError:
            return contextlib.nullcontext()
    return no_init_weights()


def export_subnet(
    model: nn.Module, config: SubConfig, channels: torch.Tensor, head_dim: int
) -> nn.Module:
    """A plain ``transformers.BertModel`` (eval mode, no pooler) computing sub-network
    ``config`` of the full BERT ``model`` (internal channel order ``channels``); its
    ``last_hidden_state`` is ``(B, L, E)`` in ascending original channel order."""
    state = export_state_dict(model.state_dict(), config, channels, head_dim)
    bert = build_bert(model.config, config, head_dim)
    bert.config.hat_channels = sorted(int(c) for c in channels[: config.embed_dim])
    bert.load_state_dict(state, strict=True)
    return bert.eval()
