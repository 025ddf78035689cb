"""``SuperEncoder``: an elastic BERT encoder whose sub-networks share weights by front slicing.

``SuperEncoder.from_pretrained("all-MiniLM-L6-v2")`` loads the model offline, measures the
importance of heads, FFN neurons and hidden channels on calibration text and reorders them
(most important first, an exact symmetry of the network) so that every front slice keeps the
most useful parts. ``supernet(input_ids, attention_mask, config)`` runs any sub-network of
the ``SearchSpace``; ``export_subnet(config)`` gives it as a plain HF ``BertModel``.
Outputs are ``(B, L, E)`` with hidden channels in ascending original order (the largest
config reproduces the pretrained model's outputs).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..encoder import mean_pool
from .export import export_subnet
from .functional import subnet_forward
from .importance import ImportanceOrder, measure_importance, reorder_state_dict
from .space import SearchSpace, SubConfig

__all__ = ["SuperEncoder", "bert_space", "calibration_texts"]


def _bert_parts(model: nn.Module):
    layers = getattr(getattr(model, "encoder", None), "layer", None)
    config = getattr(model, "config", None)
    if getattr(model, "embeddings", None) is None or layers is None or config is None:
        raise TypeError(
            "model must be a HuggingFace BERT encoder (BertModel: .embeddings, .encoder.layer, "
            f".config); got {type(model).__name__}"
        )
    if getattr(config, "position_embedding_type", "absolute") not in (None, "absolute"):
        raise ValueError("SuperEncoder supports absolute position embeddings only; got "
                         f"{config.position_embedding_type!r}")  # fmt: skip
    return config, layers


def bert_space(model: nn.Module) -> SearchSpace:
    """The default ``SearchSpace.scaled`` of a HF BERT model's sizes."""
    config, layers = _bert_parts(model)
    return SearchSpace.scaled(
        hidden=config.hidden_size, layers=len(layers), ffn=config.intermediate_size,
        heads=config.num_attention_heads,
    )  # fmt: skip


def _check_space(space: SearchSpace, model: nn.Module) -> None:
    config, layers = _bert_parts(model)
    head_dim = config.hidden_size // config.num_attention_heads
    limits = {
        "embed_dims": config.hidden_size, "layer_counts": len(layers),
        "ffn_dims": config.intermediate_size, "head_counts": config.num_attention_heads,
    }  # fmt: skip
    for field, limit in limits.items():
        if getattr(space, field)[-1] > limit:
            raise ValueError(f"space.{field} goes up to {getattr(space, field)[-1]} but the model "
                             f"has {limit}; use values <= {limit}")  # fmt: skip
    if space.head_dim != head_dim:
        raise ValueError(f"space.head_dim={space.head_dim} but the model's heads have "
                         f"{head_dim} channels")  # fmt: skip


def calibration_texts(count: int = 64) -> list[str]:
    """``count`` training-split sentences (``edgeinfer.nlp.hat.data``) used for importance."""
    from .data import corpus_splits

    return list(corpus_splits()["train"][:count])


def _strip_pooler(model: nn.Module) -> nn.Module:
    from transformers import BertModel

    bert = BertModel(model.config, add_pooling_layer=False)
    state = {k: v for k, v in model.state_dict().items() if not k.startswith("pooler.")}
    bert.load_state_dict(state, strict=True)
    return bert.eval()


class SuperEncoder(nn.Module):
    """Elastic BERT encoder (see the module docstring).

    Attributes: ``model`` the full BERT (weights in importance order), ``space``,
    ``channels (H,)`` original index of each internal hidden channel, ``head_dim``,
    ``tokenizer`` (``None`` when built from a bare model).
    """

    def __init__(
        self,
        model: nn.Module,
        space: SearchSpace | None = None,
        channels: torch.Tensor | None = None,
        tokenizer=None,
    ) -> None:
        super().__init__()
        config, _ = _bert_parts(model)
        self.model = model.eval()
        self.space = space or bert_space(model)
        _check_space(self.space, model)
        self.head_dim = self.space.head_dim
        if channels is None:
            channels = torch.arange(config.hidden_size)
        if sorted(channels.tolist()) != list(range(config.hidden_size)):
            raise ValueError(f"channels must be a permutation of 0..{config.hidden_size - 1}")
        self.register_buffer("channels", channels.long().clone())
        self.tokenizer = tokenizer

    @classmethod
    def from_model(
        cls,
        model: nn.Module,
        *,
        space: SearchSpace | None = None,
        calibration: Sequence[dict[str, torch.Tensor]] | None = None,
        tokenizer=None,
    ) -> SuperEncoder:
        """A supernet over a HF BERT ``model`` (copied; ``model`` is left untouched). With
        ``calibration`` batches (``input_ids``, ``attention_mask``) heads, neurons and
        channels are reordered by importance first; without, the original order is kept."""
        config, layers = _bert_parts(model)
        head_dim = config.hidden_size // config.num_attention_heads
        bert = _strip_pooler(model)
        if calibration is None:
            order = ImportanceOrder.identity(config.hidden_size, config.num_attention_heads,
                                             config.intermediate_size, len(layers))  # fmt: skip
        else:
            order = measure_importance(bert, list(calibration), head_dim)
        state = reorder_state_dict(bert.state_dict(), order, head_dim)
        bert.load_state_dict(state, strict=True)
        return cls(bert, space, order.channels, tokenizer)

    @classmethod
    def from_pretrained(
        cls,
        name_or_path: str | Path = "all-MiniLM-L6-v2",
        *,
        space: SearchSpace | None = None,
        texts: Sequence[str] | None = None,
        reorder: bool = True,
        max_length: int = 128,
    ) -> SuperEncoder:
        """Load a BERT sentence encoder offline (``edgeinfer.nlp.load_encoder``) and reorder
        it by importance on ``texts`` (default ``calibration_texts()``), ``reorder=False``
        keeps the original order. ``space`` default ``bert_space(model)``.

        Raises:
            FileNotFoundError: unknown model. ValueError: a space the model cannot hold.
        """
        from ..encoder import load_encoder

        encoder = load_encoder(name_or_path, max_length=max_length)
        batches = None
        if reorder:
            texts = calibration_texts() if texts is None else list(texts)
            batches = [encoder.tokenize(texts[i : i + 16])[0] for i in range(0, len(texts), 16)]
        return cls.from_model(encoder.model, space=space, calibration=batches,
                              tokenizer=encoder.tokenizer)  # fmt: skip

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        config: SubConfig | None = None,
        *,
        original_order: bool = True,
    ) -> torch.Tensor:
        """Last hidden state ``(B, L, E)`` of sub-network ``config`` (default the largest).
        ``original_order=False`` keeps the internal (importance) channel order, which makes
        the first ``E`` channels of every sub-network line up (used by distillation).

        Raises:
            ValueError: ``config`` outside the space, or mismatched input shapes.
        """
        config = self.space.largest() if config is None else self.space.check(config)
        if input_ids.dim() != 2 or attention_mask.shape != input_ids.shape:
            raise ValueError(
                "input_ids and attention_mask must both have shape (B, L); got "
                f"{tuple(input_ids.shape)} and {tuple(attention_mask.shape)}"
            )
        hidden = subnet_forward(self.model, config, input_ids, attention_mask, self.head_dim)
        if not original_order:
            return hidden
        return hidden[..., torch.argsort(self.channels[: config.embed_dim])]

    def embed(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor, config: SubConfig | None
    ) -> torch.Tensor:
        """Sentence embeddings ``(B, E)``: L2-normalised mean over real tokens."""
        return mean_pool(self(input_ids, attention_mask, config), attention_mask)

    @torch.no_grad()
    def encode(
        self, texts: Sequence[str], config: SubConfig | None = None, batch_size: int = 32
    ) -> np.ndarray:
        """Embeddings ``(N, E)`` float32 of ``texts`` with sub-network ``config``.

        Raises:
            RuntimeError: the supernet has no tokenizer (built from a bare model).
        """
        if self.tokenizer is None:
            raise RuntimeError("this SuperEncoder has no tokenizer; build it with from_pretrained "
                               "or pass tokenizer= to from_model")  # fmt: skip
        parts = []
        for start in range(0, len(texts), batch_size):
            chunk = list(texts[start : start + batch_size])
            limit = self.model.config.max_position_embeddings
            batch = self.tokenizer(chunk, padding=True, truncation=True, max_length=limit,
                                   return_tensors="pt")  # fmt: skip
            parts.append(self.embed(batch["input_ids"], batch["attention_mask"], config))
        width = (config or self.space.largest()).embed_dim
        return torch.cat(parts).numpy() if parts else np.zeros((0, width), np.float32)

    def export_subnet(self, config: SubConfig) -> nn.Module:
        """Sub-network ``config`` as a plain ``transformers.BertModel`` (see ``export``).

        Raises:
            ValueError: ``config`` outside the space.
        """
        self.space.check(config)
        return export_subnet(self.model, config, self.channels, self.head_dim)
