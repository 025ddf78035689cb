"""How SpAtten reads each HuggingFace encoder family: one ``EncoderLayout`` per layer layout.

The pruned forward (``model.spatten_forward``) is written once against this interface; a
layout says where a family keeps its embeddings, layers and linears, whether it normalises
before (ModernBERT) or after (BERT) each block, its FFN (plain or gated), and the position
terms of its attention, computed from the *original* positions of the kept tokens so that
pruning never moves a token:

- ``bert``: BERT, RoBERTa, XLM-RoBERTa (``encoder.layer[i].attention.self.query`` ...);
  absolute positions in the embeddings, no attention terms.
- ``distilbert``: ``transformer.layer[i].attention.q_lin`` ..., ``sa_layer_norm``, ``ffn.lin1``.
- ``mpnet``: ``encoder.layer[i].attention.attn.q`` ...; a relative-position bias per head
  (``encoder.relative_attention_bias``, 32 buckets as HF computes it) added to every layer's
  attention logits.
- ``modernbert``: pre-norm layers with a fused ``attn.Wqkv``, rotary positions (one frequency
  set per layer type), local layers attending within ``config.sliding_window`` positions,
  a gated FFN (``mlp.Wi`` halves ``act(x) * gate``) and a final norm.

``encoder_layout(model)`` picks the layout from the model's structure (or its ``base_model``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

import torch
from torch import nn

__all__ = ["LAYOUTS", "EncoderLayout", "encoder_layout"]

Terms = tuple[tuple[torch.Tensor, torch.Tensor] | None, torch.Tensor | None]
"""``(rotary (cos, sin) (B, L, d) or None, attention bias or None)``: the bias is float
``(B, H, L, L)`` added to the logits, or bool ``(B, 1, L, L)`` of the allowed pairs."""


def _get(module: Any, path: str) -> Any:
    for name in path.split("."):
        module = getattr(module, name, None)
        if module is None:
            return None
    return module


class EncoderLayout:
    """The BERT layout (BERT, RoBERTa, XLM-R); subclasses override what differs.

    Attributes: ``family``, ``model`` (the wrapped model), ``base`` (its encoder),
    ``embeddings``, ``layers``, ``heads``, ``head_size``, ``pre_norm``, ``gated``.
    """

    family = "bert"
    encoder_path = "encoder.layer"
    roles: ClassVar[dict[str, str]] = {
        "query": "attention.self.query", "key": "attention.self.key",
        "value": "attention.self.value", "out": "attention.output.dense",
        "ffn_in": "intermediate.dense", "ffn_out": "output.dense",
    }  # fmt: skip
    norms = ("attention.output.LayerNorm", "output.LayerNorm")
    """``(attention block norm, FFN block norm)`` paths in a layer."""
    pre_norm = False
    gated = False
    position_terms = False
    """Whether ``terms`` adds anything to the attention (then progressive attention
    quantisation, which reads plain attention, is refused)."""

    def __init__(self, model: nn.Module) -> None:
        self.model = model
        self.base = getattr(model, "base_model", model)
        self.embeddings = self.base.embeddings
        self.layers = _get(self.base, self.encoder_path)
        self.heads, self.head_size = self._heads()

    @classmethod
    def matches(cls, model: nn.Module) -> bool:
        """Whether ``model`` (or its ``base_model``) has this layout's parts."""
        base = getattr(model, "base_model", model)
        layers = _get(base, cls.encoder_path)
        if getattr(base, "embeddings", None) is None or not isinstance(layers, nn.ModuleList) \
                or not layers:
            return False
        paths = [*cls.roles.values(), *(n for n in cls.norms if n)]
        return all(_get(layers[0], path) is not None for path in paths)

    def _heads(self) -> tuple[int, int]:
        attention = self.layers[0].attention.self
        return attention.num_attention_heads, attention.attention_head_size

    def embed(self, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
        """``(B, L, D)`` embeddings of ``input_ids`` (and ``token_type_ids``)."""
        return self.embeddings(input_ids=inputs["input_ids"],
                               token_type_ids=inputs.get("token_type_ids"))

    @classmethod
    def linears(cls, layer: nn.Module) -> dict[str, nn.Module]:
        """The layer's own linears by role (``query``/``key``/``value`` or ``qkv``, ``out``,
        ``ffn_in``, ``ffn_out``)."""
        return {role: _get(layer, path) for role, path in cls.roles.items()}

    @classmethod
    def norm(cls, layer: nn.Module, block: int) -> nn.Module:
        """The norm of the attention (``block=0``) or FFN (``1``) block."""
        return _get(layer, cls.norms[block])

    @classmethod
    def activation(cls, layer: nn.Module) -> Callable[[torch.Tensor], torch.Tensor]:
        return layer.intermediate.intermediate_act_fn

    def terms(self, index: int, positions: torch.Tensor, hidden: torch.Tensor) -> Terms:
        """Position terms of layer ``index`` at the kept tokens' original ``positions (B, L)``."""
        return None, None

    def terms_kind(self, index: int) -> object:
        """Layers of one kind get the same ``terms`` for the same positions (so the forward
        computes them once per kind until tokens are pruned)."""
        return None

    def finish(self, hidden: torch.Tensor) -> torch.Tensor:
        """After the last layer (a final norm where the family has one)."""
        return hidden


class DistilBertLayout(EncoderLayout):
    family = "distilbert"
    encoder_path = "transformer.layer"
    roles: ClassVar[dict[str, str]] = {
        "query": "attention.q_lin", "key": "attention.k_lin", "value": "attention.v_lin",
        "out": "attention.out_lin", "ffn_in": "ffn.lin1", "ffn_out": "ffn.lin2",
    }  # fmt: skip
    norms = ("sa_layer_norm", "output_layer_norm")

    def _heads(self) -> tuple[int, int]:
        attention = self.layers[0].attention
        return attention.n_heads, attention.attention_head_size

    def embed(self, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.embeddings(inputs["input_ids"])

    @classmethod
    def activation(cls, layer: nn.Module) -> Callable[[torch.Tensor], torch.Tensor]:
        return layer.ffn.activation


class MPNetLayout(EncoderLayout):
    family = "mpnet"
    roles: ClassVar[dict[str, str]] = {
        "query": "attention.attn.q", "key": "attention.attn.k", "value": "attention.attn.v",
        "out": "attention.attn.o", "ffn_in": "intermediate.dense", "ffn_out": "output.dense",
    }  # fmt: skip
    norms = ("attention.LayerNorm", "output.LayerNorm")
    position_terms = True
    buckets = 32  # what MPNetEncoder.compute_position_bias uses, whatever the config says

    def _heads(self) -> tuple[int, int]:
        attention = self.layers[0].attention.attn
        return attention.num_attention_heads, attention.attention_head_size

    def embed(self, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.embeddings(input_ids=inputs["input_ids"])

    def terms(self, index: int, positions: torch.Tensor, hidden: torch.Tensor) -> Terms:
        encoder = self.base.encoder
        relative = positions[:, None, :] - positions[:, :, None]  # key - query, (B, L, L)
        bucket = encoder.relative_position_bucket(relative, num_buckets=self.buckets)
        bias = encoder.relative_attention_bias(bucket).permute(0, 3, 1, 2)  # (B, H, L, L)
        return None, bias.to(hidden.dtype)


class ModernBertLayout(EncoderLayout):
    family = "modernbert"
    encoder_path = "layers"
    roles: ClassVar[dict[str, str]] = {
        "qkv": "attn.Wqkv", "out": "attn.Wo", "ffn_in": "mlp.Wi", "ffn_out": "mlp.Wo",
    }  # fmt: skip
    norms = ("attn_norm", "mlp_norm")
    pre_norm = True
    gated = True
    position_terms = True

    @classmethod
    def matches(cls, model: nn.Module) -> bool:
        base = getattr(model, "base_model", model)
        return super().matches(model) and hasattr(base, "rotary_emb") \
            and hasattr(base, "final_norm")

    def _heads(self) -> tuple[int, int]:
        config = self.base.config
        heads = int(config.num_attention_heads)
        return heads, int(config.hidden_size) // heads

    def embed(self, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.embeddings(input_ids=inputs["input_ids"])

    @classmethod
    def activation(cls, layer: nn.Module) -> Callable[[torch.Tensor], torch.Tensor]:
        return layer.mlp.act

    def terms_kind(self, index: int) -> object:
        return self.layers[index].attention_type

    def terms(self, index: int, positions: torch.Tensor, hidden: torch.Tensor) -> Terms:
        layer_type = self.layers[index].attention_type
        cos, sin = self.base.rotary_emb(hidden, positions, layer_type)
        if layer_type != "sliding_attention":
            return (cos, sin), None
        distance = (positions[:, :, None] - positions[:, None, :]).abs()
        allowed = distance <= int(self.base.config.sliding_window)
        allowed |= torch.eye(positions.shape[1], dtype=torch.bool)  # padded rows stay finite
        return (cos, sin), allowed[:, None]

    def finish(self, hidden: torch.Tensor) -> torch.Tensor:
        return self.base.final_norm(hidden)


LAYOUTS: dict[str, type[EncoderLayout]] = {
    layout.family: layout
    for layout in (ModernBertLayout, EncoderLayout, DistilBertLayout, MPNetLayout)
}
"""The layouts by family, in the order ``encoder_layout`` tries them."""


def encoder_layout(model: nn.Module) -> EncoderLayout:
    """The layout of a HF encoder (or of a task model's ``base_model``).

    Raises:
        TypeError: no layout matches (names the families read).
        ValueError: a decoder, or BERT-layout relative position embeddings.
    """
    config = getattr(model, "config", None)
    if getattr(config, "is_decoder", False):
        raise ValueError("apply_spatten supports bidirectional encoders; got is_decoder=True")
    for layout in LAYOUTS.values():
        if layout.matches(model):
            if layout is EncoderLayout and getattr(
                    config, "position_embedding_type", "absolute") not in (None, "absolute"):
                raise ValueError(
                    "apply_spatten supports BERT-layout encoders with absolute positions; got "
                    f"position_embedding_type={config.position_embedding_type!r}"
                )
            return layout(model)
    raise TypeError(
        f"model must be a HuggingFace encoder of a layout SpAtten reads ({', '.join(LAYOUTS)}: "
        f"BERT, RoBERTa, XLM-R, DistilBERT, MPNet, ModernBERT); got {type(model).__name__}"
    )
