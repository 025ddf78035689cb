"""Pruning-aware distillation: teach a SpAtten-pruned encoder to match the unpruned one.

Prototype. Aggressive token pruning (few tokens kept, early) loses embedding quality; here a
small parameter set is trained so that the pruned forward's mean-pooled embedding matches the
unpruned model's. The teacher is the original model, frozen; the student is a copy run
through ``spatten_forward`` in full precision (``quant=None``) whose only trainable tensors
are the biases and LayerNorm parameters of the embeddings and encoder layers (BitFit), plus,
with ``rank > 0``, a low-rank update ``up @ down`` of each layer's two FFN linears. Token
selection is not differentiated: gradients flow through the kept tokens only. The loss is
``1 - cos(student, teacher)`` per text. With ``validation`` texts, the mean cosine on them is
measured every ``eval_every`` steps and the best state is returned (early stopping: a long run
cannot end over-fitted). Int8 linears are applied afterwards, by building the pruned model over
``adapted_model(model, state)`` (adapters merged into the weights).

The trained ``state`` maps parameter names (``model.named_parameters()`` names, and
``adapter.{layer}.{ffn_in|ffn_out}.{down|up}``) to float32 tensors: ~31k values for BitFit on
all-MiniLM-L6-v2 (120 KB), ~184k more at rank 8.
"""

from __future__ import annotations

import copy
import dataclasses
import math
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F  # noqa: N812
from torch import nn

from .config import SpAttenConfig, plan_layers
from .layouts import encoder_layout
from .model import layer_linears, spatten_forward

__all__ = [
    "ADAPTATION_MODEL",
    "AdaptConfig",
    "AdaptResult",
    "LowRankLinear",
    "adapt_spatten",
    "adapted_model",
    "bitfit_names",
    "load_adaptation",
    "pruning_meta",
    "save_adaptation",
]

_ADAPTED_ROLES = ("ffn_in", "ffn_out")
_FORMAT = 1


@dataclass(frozen=True)
class AdaptConfig:
    """Training settings of ``adapt_spatten``.

    Attributes:
        steps: optimiser steps (fewer if ``time_limit`` runs out first).
        batch_size: texts per step, drawn as neighbours in length order (little padding).
        lr: AdamW learning rate (no weight decay).
        rank: rank of the FFN low-rank adapters; 0 trains biases and LayerNorms only.
        max_length: tokens per text (longer texts are truncated).
        time_limit: seconds of training, ``None`` for no limit.
        seed: seed of the batch order and adapter initialisation.
        eval_every: steps between two validation measurements (with ``validation`` texts).

    Raises:
        ValueError: a field out of range.
    """

    steps: int = 500
    batch_size: int = 8
    lr: float = 1e-3
    rank: int = 0
    max_length: int = 512
    time_limit: float | None = None
    seed: int = 0
    eval_every: int = 50

    def __post_init__(self) -> None:
        for name in ("steps", "rank", "seed"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"{name} must be an int >= 0; got {value!r}")
        every = self.eval_every
        if isinstance(every, bool) or not isinstance(every, int) or every < 1:
            raise ValueError(f"eval_every must be an int >= 1; got {every!r}")
        if self.batch_size < 1 or self.max_length < 2:
            raise ValueError(
                f"batch_size must be >= 1 and max_length >= 2; got {self.batch_size}, "
                f"{self.max_length}"
            )
        if not (math.isfinite(self.lr) and self.lr > 0):
            raise ValueError(f"lr must be a positive number; got {self.lr}")
        if self.time_limit is not None and self.time_limit <= 0:
            raise ValueError(f"time_limit must be > 0 seconds or None; got {self.time_limit}")


@dataclass(frozen=True)
class AdaptResult:
    """``state`` the trained tensors by name (the best validated ones when validation texts
    were given), ``losses`` the mean loss of each step, ``seconds`` of training and
    validation (teacher embeddings excluded), ``validation`` the ``(steps done, mean
    cosine)`` measurements (the first at 0 steps: the unadapted model) and ``best_step`` the
    steps done by ``state``."""

    state: dict[str, torch.Tensor]
    losses: list[float]
    seconds: float
    validation: list[tuple[int, float]] = dataclasses.field(default_factory=list)
    best_step: int | None = None


class LowRankLinear(nn.Module):
    """A frozen ``nn.Linear`` plus a trainable low-rank update: ``y = linear(x) + x A^T B^T``
    with ``down A (r, in)`` and ``up B (out, r)``; ``B`` starts at 0 (the identity update)."""

    def __init__(self, linear: nn.Linear, rank: int, generator: torch.Generator) -> None:
        super().__init__()
        self.linear = linear
        self.in_features, self.out_features = linear.in_features, linear.out_features
        init = torch.randn(rank, linear.in_features, generator=generator) / linear.in_features**0.5
        self.down = nn.Parameter(init)
        self.up = nn.Parameter(torch.zeros(linear.out_features, rank))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(x) + (x @ self.down.T) @ self.up.T


def bitfit_names(model: nn.Module) -> list[str]:
    """Names of the biases and LayerNorm parameters of the embeddings and encoder layers
    (the pooler, unused by sentence embeddings, is left out)."""
    norms = {f"{name}.{key}" for name, module in model.named_modules()
             if isinstance(module, nn.LayerNorm) for key, _ in module.named_parameters()}
    return [
        name
        for name, _ in model.named_parameters()
        if "pooler" not in name and (name.endswith(".bias") or name in norms)
    ]


def _student(model: nn.Module, rank: int, seed: int):
    """A frozen deep copy of ``model`` with trainable BitFit tensors, its per-layer linears
    (FFN linears wrapped in ``LowRankLinear`` when ``rank > 0``) and the trainable tensors."""
    student = copy.deepcopy(model).eval()
    student.requires_grad_(False)
    params = dict(student.named_parameters())
    trainable = {name: params[name] for name in bitfit_names(student)}
    for tensor in trainable.values():
        tensor.requires_grad_(True)
    layout = encoder_layout(student)
    generator = torch.Generator().manual_seed(seed)
    linears = nn.ModuleList()
    for index, layer in enumerate(layout.layers):
        found = layer_linears(layer, None, layout)
        for role in _ADAPTED_ROLES if rank > 0 else ():
            adapter = LowRankLinear(found[role], rank, generator)
            found[role] = adapter
            trainable[f"adapter.{index}.{role}.down"] = adapter.down
            trainable[f"adapter.{index}.{role}.up"] = adapter.up
        linears.append(found)
    return student, linears, trainable


def _embed(model: nn.Module, inputs: dict[str, torch.Tensor], spatten=None) -> torch.Tensor:
    """Mean-pooled, L2-normalised embeddings ``(B, D)``: the plain HF forward, or with
    ``spatten = (plans, config, linears)`` the pruned forward (differentiable)."""
    mask = inputs["attention_mask"]
    if spatten is None:
        hf_inputs = {k: v for k, v in inputs.items() if k != "protect"}
        hidden = model(**hf_inputs).last_hidden_state
    else:
        plans, config, linears = spatten
        out = spatten_forward(encoder_layout(model), plans, inputs, config, linears)
        hidden, mask = out.hidden, out.mask
    weights = mask.to(hidden.dtype).unsqueeze(-1)
    pooled = (hidden * weights).sum(dim=1) / weights.sum(dim=1).clamp(min=1e-9)
    return F.normalize(pooled, p=2, dim=1)


def _tokenize(tokenizer, texts: list[str], max_length: int) -> dict[str, torch.Tensor]:
    batch = tokenizer(
        texts, padding=True, truncation=True, max_length=max_length,
        return_special_tokens_mask=True, return_tensors="pt",
    )  # fmt: skip
    inputs = dict(batch)
    inputs["protect"] = inputs.pop("special_tokens_mask").bool()
    return inputs


def _batches(texts: Sequence[str], config: AdaptConfig) -> list[list[int]]:
    """Text indices of each step: ``batch_size`` neighbours in length order, random start."""
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    rng = random.Random(config.seed)
    last = max(0, len(order) - config.batch_size)
    starts = [rng.randint(0, last) for _ in range(config.steps)]
    return [order[start : start + config.batch_size] for start in starts]


@torch.no_grad()
def _embed_texts(model, tokenizer, texts: Sequence[str], max_length: int, spatten=None):
    """Embeddings ``(N, D)`` of ``texts`` (batches of 8 in length order): the unpruned
    forward, or the pruned one with ``spatten`` (see ``_embed``)."""
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    result = torch.zeros(len(texts), int(model.config.hidden_size))
    for start in range(0, len(order), 8):
        chunk = order[start : start + 8]
        inputs = _tokenize(tokenizer, [texts[i] for i in chunk], max_length)
        result[chunk] = _embed(model, inputs, spatten)
    return result


def _check_spatten(spatten: SpAttenConfig) -> SpAttenConfig:
    if not isinstance(spatten, SpAttenConfig):
        raise TypeError(f"spatten must be a SpAttenConfig; got {type(spatten).__name__}")
    if spatten.head_keep < 1.0:
        raise ValueError(
            f"adapt_spatten supports token pruning only; got head_keep={spatten.head_keep}. "
            f"Use head_keep=1.0."
        )
    return dataclasses.replace(spatten, quant=None)  # train in full precision


def adapt_spatten(
    model: nn.Module,
    tokenizer,
    texts: Sequence[str],
    spatten: SpAttenConfig,
    config: AdaptConfig | None = None,
    *,
    validation: Sequence[str] = (),
    log: Callable[[int, float], None] | None = None,
    progress: bool = False,
) -> AdaptResult:
    """Distil the unpruned ``model`` into its ``spatten``-pruned forward (see module doc).

    ``model`` (a HF BERT-family encoder) is not modified; ``texts`` are the training texts and
    ``validation`` the held-out texts of early stopping (never the evaluation sets of the
    benchmark); ``log(step, loss)`` is called after every step; ``progress`` shows a bar.

    Raises:
        TypeError / ValueError: a bad ``spatten`` (head pruning is not supported) or no texts.
    """
    from tqdm.auto import tqdm

    config = AdaptConfig() if config is None else config
    train_config = _check_spatten(spatten)
    if not texts:
        raise ValueError("texts must hold at least one training text; got none")
    target = _embed_texts(model, tokenizer, texts, config.max_length)
    held = _embed_texts(model, tokenizer, validation, config.max_length) if validation else None
    student, linears, trainable = _student(model, config.rank, config.seed)
    layout = encoder_layout(student)
    forward = (plan_layers(train_config, len(layout.layers), layout.heads), train_config,
               linears)  # fmt: skip
    optimiser = torch.optim.AdamW(list(trainable.values()), lr=config.lr, weight_decay=0.0)
    losses, scores, start = [], [], time.perf_counter()

    def snapshot() -> dict[str, torch.Tensor]:
        return {name: tensor.detach().clone() for name, tensor in trainable.items()}

    def validate(done: int) -> None:
        nonlocal best
        student_held = _embed_texts(student, tokenizer, validation, config.max_length, forward)
        score = float((student_held * held).sum(dim=1).mean())
        scores.append((done, score))
        if best is None or score > best[1]:
            best = (done, score, snapshot())

    best = None
    if held is not None:
        validate(0)
    bar = tqdm(total=config.steps, desc="adapt", unit="step", disable=not progress)
    for step, chunk in enumerate(_batches(texts, config)):
        if config.time_limit is not None and time.perf_counter() - start > config.time_limit:
            break
        inputs = _tokenize(tokenizer, [texts[i] for i in chunk], config.max_length)
        cosine = (_embed(student, inputs, forward) * target[chunk]).sum(dim=1)
        loss = (1.0 - cosine).mean()
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        optimiser.step()
        losses.append(loss.item())
        bar.update(1)
        bar.set_postfix_str(f"loss {losses[-1]:.4f}" + (f" val {best[1]:.4f}" if best else ""))
        if log is not None:
            log(step, losses[-1])
        if held is not None and (step + 1) % config.eval_every == 0:
            validate(step + 1)
    bar.close()
    if held is not None and (not scores or scores[-1][0] != len(losses)):
        validate(len(losses))
    seconds = time.perf_counter() - start
    if best is None:
        return AdaptResult(state=snapshot(), losses=losses, seconds=seconds)
    return AdaptResult(state=best[2], losses=losses, seconds=seconds, validation=scores,
                       best_step=best[0])  # fmt: skip


def adapted_model(
    model: nn.Module, state: dict[str, torch.Tensor], *, in_place: bool = False
) -> nn.Module:
    """``model`` with ``state`` loaded: BitFit tensors replaced, low-rank adapters merged into
    their linears' weights (``W + up @ down``). A deep copy (``model`` unchanged), or
    ``model`` itself with ``in_place=True`` (for a freshly loaded model: no second copy).
    Every name and shape is checked before anything is written.

    Raises:
        KeyError: a name in ``state`` that ``model`` does not have (including adapters of
            layers or linears it does not have).
        ValueError: a tensor whose shape does not match (adapters: ``down (r, in)`` and
            ``up (out, r)`` of the linear), or half of an adapter.
    """
    layout = encoder_layout(model)
    expected = {name: tuple(tensor.shape) for name, tensor in model.named_parameters()}
    for index, layer in enumerate(layout.layers):  # adapters: down (r, in), up (out, r), paired
        found = layer_linears(layer, None, layout)
        for role in _ADAPTED_ROLES:
            key = f"adapter.{index}.{role}"
            down, up = state.get(f"{key}.down"), state.get(f"{key}.up")
            if (down is None) != (up is None):
                raise ValueError(f"{key}: the state has one of its down/up tensors, not both")
            out_features, in_features = found[role].weight.shape
            rank = int(down.shape[0]) if down is not None and down.dim() == 2 else 0
            expected[f"{key}.down"] = (rank, int(in_features))
            expected[f"{key}.up"] = (int(out_features), rank)
    for name, tensor in state.items():
        if name not in expected:
            raise KeyError(f"state names {name!r}, which the model does not have")
        if tuple(tensor.shape) != expected[name]:
            raise ValueError(
                f"{name}: the model has shape {expected[name]}, the state "
                f"{tuple(tensor.shape)}; was it trained for another model?"
            )
    adapted = (model if in_place else copy.deepcopy(model)).eval()
    params = dict(adapted.named_parameters())
    layout = encoder_layout(adapted)
    with torch.no_grad():
        for name, tensor in state.items():
            if not name.startswith("adapter."):
                params[name].copy_(tensor)
        for index, layer in enumerate(layout.layers):
            found = layer_linears(layer, None, layout)
            for role in _ADAPTED_ROLES:
                down = state.get(f"adapter.{index}.{role}.down")
                if down is not None:
                    found[role].weight += state[f"adapter.{index}.{role}.up"] @ down
    return adapted


def pruning_meta(spatten: SpAttenConfig) -> dict:
    """The token-pruning settings an adaptation is trained for, as plain values (what
    ``load_encoder(adaptation=)`` checks against its ``spatten``)."""
    return {"token_keep": spatten.token_keep, "prune_layers": list(spatten.prune_layers or ())}


ADAPTATION_MODEL = "spatten-adaptation"
"""The ``model`` name of an adaptation file's checkpoint envelope."""


def save_adaptation(
    path: str | Path,
    state: dict[str, torch.Tensor],
    meta: dict | None = None,
    *,
    spatten: SpAttenConfig | None = None,
) -> int:
    """Write ``state`` (float32) and ``meta`` (plain values) to ``path`` as an edgeinfer
    checkpoint envelope (atomically), with the pruning settings of ``spatten`` added to
    ``meta`` when given; returns the file size in bytes."""
    from ..._checkpoint import write_envelope

    meta = {**(meta or {}), **(pruning_meta(spatten) if spatten is not None else {})}
    tensors = {name: tensor.detach().float().contiguous() for name, tensor in state.items()}
    written = write_envelope(path, engine="nlp", model=ADAPTATION_MODEL,
                             config=pruning_meta(spatten) if spatten is not None else {},
                             state_dict=tensors, extra={"meta": meta})  # fmt: skip
    return written.stat().st_size


def load_adaptation(path: str | Path) -> tuple[dict[str, torch.Tensor], dict]:
    """``(state, meta)`` saved by ``save_adaptation`` (also the pre-envelope files).

    Raises:
        FileNotFoundError: no file.
        ValueError: a damaged file, or not an adaptation (another engine's checkpoint, another
            nlp file, another envelope version: each named).
    """
    from ..._checkpoint import is_envelope, open_envelope, read_checkpoint_file

    path = Path(path)
    hint = "write one with save_adaptation or scripts/adapt_spatten.py"
    data = read_checkpoint_file(path, "adaptation checkpoint", hint)
    if is_envelope(data):
        envelope = open_envelope(data, path, "nlp", ADAPTATION_MODEL)
        return envelope.state_dict, dict(envelope.extra.get("meta", {}))
    if not isinstance(data, dict) or data.get("format") != _FORMAT:
        raise ValueError(f"{path} is not an adaptation checkpoint; {hint}")
    return data["state"], data["meta"]
