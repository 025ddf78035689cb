"""Greedy generation and teacher-forced scoring with an (optionally pruned) KV cache.

``generate`` is a plain greedy loop over a HuggingFace causal LM that passes positions
explicitly, so the cache may hold fewer tokens than were seen (``kv_prune``). Without pruning it
reproduces ``model.generate(do_sample=False)`` token for token. ``continuation_scores`` feeds a
known continuation one token at a time through the same cache policy and returns the model's
log-probability of each true token and its own top-1 prediction: the quality proxy of pruning.
Shapes: ``B`` batch (sequences of equal length, no padding), ``P`` prompt, ``N`` new tokens.
"""

from __future__ import annotations

import copy
from contextlib import nullcontext
from dataclasses import dataclass

import torch
from torch import nn

from .kv_prune import AttentionScorer, KVPruneConfig, attention_layers, prune_cache_

__all__ = [
    "Generation",
    "KVSession",
    "continuation_scores",
    "decode",
    "generate",
    "teacher_force",
]


@dataclass(frozen=True)
class Generation:
    """``tokens (B, N)`` int64 generated ids (prompt excluded) and ``cache_lengths``: tokens in
    the first layer's cache after each forward (prefill, then one per generated token)."""

    tokens: torch.Tensor
    cache_lengths: tuple[int, ...]


def _check_ids(name: str, ids: object) -> torch.Tensor:
    if not isinstance(ids, torch.Tensor) or ids.dim() != 2 or ids.dtype != torch.int64:
        got = (
            f"{ids.dtype} of shape {tuple(ids.shape)}"
            if isinstance(ids, torch.Tensor)
            else type(ids).__name__
        )
        raise ValueError(f"{name} must be an int64 tensor (B, L) of token ids; got {got}")
    if ids.shape[1] == 0:
        raise ValueError(f"{name} must hold at least one token per sequence; got shape (B, 0)")
    return ids


def _check_policy(kv_prune: object) -> None:
    if kv_prune is not None and not isinstance(kv_prune, KVPruneConfig):
        raise TypeError(
            f"kv_prune must be a KVPruneConfig or None (keep the whole cache); "
            f"got {type(kv_prune).__name__}"
        )


class KVSession:
    """A causal LM run token by token over its own KV cache, optionally pruned.

    ``step(ids (B, q))`` feeds tokens at their true positions and returns the last position's
    logits ``(B, V)``; with a ``kv_prune`` policy the scorer's hooks are attached during that
    forward only, and the cache is pruned to ``budget`` right after the prefill and whenever it
    outgrows ``budget + slack``. ``fork()`` gives an independent copy (cache, scores, position).
    ``lengths`` records the first layer's cached tokens after each step.

    Raises:
        TypeError: an unsupported model or a bad policy.
    """

    def __init__(self, model: nn.Module, kv_prune: KVPruneConfig | None = None) -> None:
        from transformers import DynamicCache

        _check_policy(kv_prune)
        attention_layers(model)  # a clear TypeError for an unsupported model
        self.model, self.policy = model, kv_prune
        self.cache = DynamicCache(config=model.config)
        self.scorer = (
            None if kv_prune is None else AttentionScorer(model, self.cache, kv_prune.window)
        )
        self.position = 0
        self.lengths: list[int] = []

    @property
    def cache_length(self) -> int:
        """Tokens now held in the first layer's cache."""
        keys = self.cache.layers[0].keys if self.cache.layers else None
        return 0 if keys is None or keys.dim() < 3 else int(keys.shape[2])

    @torch.inference_mode()
    def step(self, ids: torch.Tensor) -> torch.Tensor:
        """Feed ``ids (B, q)``; the logits ``(B, V)`` float32 of the last position."""
        positions = torch.arange(self.position, self.position + ids.shape[1]).expand_as(ids)
        with nullcontext() if self.scorer is None else self.scorer:
            out = self.model(
                input_ids=ids, position_ids=positions, past_key_values=self.cache,
                use_cache=True, logits_to_keep=1,
            )  # fmt: skip
        self.position += ids.shape[1]
        if self.policy is not None:
            limit = self.policy.budget + (self.policy.slack if self.lengths else 0)
            if self.cache_length > limit:
                prune_cache_(self.cache, self.scorer.scores, self.policy)
        self.lengths.append(self.cache_length)
        return out.logits[:, -1].float()

    def fork(self) -> KVSession:
        """An independent copy: later steps of either do not affect the other."""
        twin = copy.copy(self)
        twin.cache = copy.deepcopy(self.cache)
        twin.lengths = list(self.lengths)
        if self.scorer is not None:
            twin.scorer = AttentionScorer(self.model, twin.cache, self.policy.window)
            scores = self.scorer.scores  # scores the waiting query rows first
            twin.scorer.scores = [None if s is None else s.clone() for s in scores]
        return twin

    def fork_with(self, kv_prune: KVPruneConfig | None) -> KVSession:
        """A copy that continues under another cache policy, pruned to it right away.

        ``None`` keeps the whole cache from here on (and drops the scores). A policy needs
        this session's importance scores, so this session must have been run with a policy
        (one with a large budget records scores without pruning).

        Raises:
            TypeError: a bad policy. ValueError: a policy asked of a session without scores.
        """
        _check_policy(kv_prune)
        if kv_prune is not None and self.scorer is None:
            raise ValueError(
                "fork_with(kv_prune=...) needs importance scores, but this session ran without "
                "a policy; create it with KVSession(model, KVPruneConfig(budget=...)) instead"
            )
        twin = self.fork()
        twin.policy = kv_prune
        if kv_prune is None:
            twin.scorer = None
            return twin
        twin.scorer.window = kv_prune.window
        if twin.cache_length > kv_prune.budget:
            prune_cache_(twin.cache, twin.scorer.scores, kv_prune)
        return twin


def decode(
    session: KVSession, logits: torch.Tensor, max_new_tokens: int, eos_token_id: int | None = None
) -> torch.Tensor:
    """Greedy tokens ``(B, N)`` continuing ``session`` from its last ``logits (B, V)``; stops
    early once every sequence has produced ``eos_token_id``."""
    count = max_new_tokens
    if isinstance(count, bool) or not isinstance(count, int) or count < 1:
        raise ValueError(f"max_new_tokens must be a positive int; got {max_new_tokens!r}")
    tokens, done = [], torch.zeros(logits.shape[0], dtype=torch.bool)
    for number in range(max_new_tokens):
        token = logits.argmax(dim=-1)  # (B,)
        tokens.append(token)
        if eos_token_id is not None:
            done |= token == eos_token_id
        if number == max_new_tokens - 1 or bool(done.all()):
            break
        logits = session.step(token[:, None])
    return torch.stack(tokens, dim=1)


@torch.inference_mode()
def generate(
    model: nn.Module,
    input_ids: torch.Tensor,
    max_new_tokens: int,
    *,
    kv_prune: KVPruneConfig | None = None,
    eos_token_id: int | None = None,
) -> Generation:
    """Greedy continuation of ``input_ids (B, P)`` by a HF causal LM, at most ``max_new_tokens``.

    ``kv_prune``: cache policy (``None`` keeps every token: identical to HF greedy
    ``generate``). Generation stops early once every sequence has produced ``eos_token_id``.

    Raises:
        ValueError / TypeError: bad ids, count or policy; an unsupported model.
    """
    input_ids = _check_ids("input_ids", input_ids)
    session = KVSession(model.eval(), kv_prune)
    logits = session.step(input_ids)
    tokens = decode(session, logits, max_new_tokens, eos_token_id)
    return Generation(tokens=tokens, cache_lengths=tuple(session.lengths))


@torch.inference_mode()
def continuation_scores(
    model: nn.Module,
    input_ids: torch.Tensor,
    prompt_length: int,
    *,
    kv_prune: KVPruneConfig | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Teacher-forced scoring of ``input_ids[:, prompt_length:]`` after the prompt before it.

    The prompt is prefilled at once, then each true token is fed one at a time (as in
    generation, with the same cache policy). Returns ``log_probs (B, N)`` of each true token and
    ``predictions (B, N)`` the model's top-1 token at that step, ``N = L - prompt_length``.

    Raises:
        ValueError: ``prompt_length`` outside [1, L - 1], bad ids or policy.
    """
    input_ids = _check_ids("input_ids", input_ids)
    length = input_ids.shape[1]
    if (
        isinstance(prompt_length, bool)
        or not isinstance(prompt_length, int)
        or not (1 <= prompt_length < length)
    ):
        raise ValueError(
            f"prompt_length must be an int in [1, {length - 1}]; got {prompt_length!r}"
        )
    session = KVSession(model.eval(), kv_prune)
    logits = session.step(input_ids[:, :prompt_length])
    return teacher_force(session, logits, input_ids[:, prompt_length:])


def teacher_force(
    session: KVSession, logits: torch.Tensor, targets: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Feed ``targets (B, N)`` one token at a time into ``session`` whose last logits are
    ``logits (B, V)``: ``log_probs (B, N)`` of each target and the top-1 ``predictions (B, N)``.
    """
    log_probs, predictions = [], []
    for position in range(targets.shape[1]):
        target = targets[:, position]
        log_probs.append(torch.log_softmax(logits, dim=-1).gather(1, target[:, None])[:, 0])
        predictions.append(logits.argmax(dim=-1))
        if position + 1 < targets.shape[1]:
            logits = session.step(target[:, None])
    return torch.stack(log_probs, dim=1), torch.stack(predictions, dim=1)
