"""KV-cache token pruning for generation with HuggingFace causal LMs (Llama- and GPT-2-style).

The cache keeps, per layer and KV head, the first ``sink`` tokens (attention sinks), the
``recent`` newest tokens, and the most important of the others, ``budget`` tokens in all.
Importance is the attention probability a cached token has received, accumulated over queries
(H2O): at prefill from the last ``window`` prompt rows (an observation window, as SnapKV), then
from every generated token. Keys are cached after their position encoding, so a kept token keeps
its original position and later tokens get their true positions: the cache only gets shorter.

``AttentionScorer`` measures importance with hooks on the model's attention modules (removed on
exit, nothing else about the model changes); ``select_kv`` and ``prune_cache_`` are the plain
selection and gather. Shapes: ``B`` batch, ``H`` KV heads, ``T`` cached tokens, ``d`` head size.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

__all__ = ["AttentionScorer", "KVPruneConfig", "attention_layers", "prune_cache_", "select_kv"]


def _check_int(name: str, value: object, low: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int >= {low}; got {type(value).__name__}")
    if value < low:
        raise ValueError(f"{name} must be >= {low}; got {value}")


@dataclass(frozen=True)
class KVPruneConfig:
    """How much of the KV cache generation keeps (per layer and KV head).

    Attributes:
        budget: cached tokens kept after each pruning.
        sink: first tokens always kept (attention sinks).
        recent: newest tokens always kept.
        window: last prompt rows whose attention scores the prompt's tokens at prefill.
        slack: the cache may grow to ``budget + slack`` before it is pruned back to ``budget``
            (one gather per ``slack`` generated tokens instead of one per token).

    Raises:
        TypeError / ValueError: a field that is not an int in range, or ``sink + recent``
            above ``budget``.
    """

    budget: int = 256
    sink: int = 4
    recent: int = 64
    window: int = 32
    slack: int = 32

    def __post_init__(self) -> None:
        _check_int("budget", self.budget, 1)
        _check_int("sink", self.sink, 0)
        _check_int("recent", self.recent, 0)
        _check_int("window", self.window, 1)
        _check_int("slack", self.slack, 0)
        if self.sink + self.recent > self.budget:
            raise ValueError(
                f"sink + recent must fit in the budget: sink={self.sink} + recent={self.recent} "
                f"> budget={self.budget}; lower them or raise budget"
            )


def select_kv(scores: torch.Tensor, budget: int, sink: int, recent: int) -> torch.Tensor:
    """Kept cache positions ``(B, H, K)`` int64, ascending, ``K = min(T, budget)``.

    ``scores (B, H, T)``: importance of each cached token. The first ``sink`` and last
    ``recent`` positions are always kept; the others are ranked by score.
    """
    batch, heads, length = scores.shape
    if length <= budget:
        return torch.arange(length).expand(batch, heads, length)
    middle = scores[..., sink : length - recent]  # (B, H, T - sink - recent)
    chosen = middle.topk(budget - sink - recent, dim=-1).indices + sink
    ends = torch.cat([torch.arange(sink), torch.arange(length - recent, length)])
    kept = torch.cat([ends.expand(batch, heads, ends.numel()), chosen], dim=-1)
    return kept.sort(dim=-1).values


def prune_cache_(cache, scores: list[torch.Tensor | None], config: KVPruneConfig) -> None:
    """Shrink every layer of ``cache`` (a transformers ``DynamicCache``) to ``config.budget``
    tokens per KV head, in place, with ``scores[i] (B, H, T)`` gathered alike.

    Layers not longer than the budget are left alone.
    """
    for number, layer in enumerate(cache.layers):
        keys, values, score = layer.keys, layer.values, scores[number]
        if keys is None or keys.shape[2] <= config.budget:
            continue
        if score is None or score.shape != keys.shape[:3]:
            raise RuntimeError(
                f"layer {number}: importance scores {None if score is None else score.shape} do "
                f"not match the cache {tuple(keys.shape[:3])}; was the scorer active?"
            )
        kept = select_kv(score, config.budget, config.sink, config.recent)  # (B, H, K)
        rows = kept[..., None].expand(*kept.shape, keys.shape[3])
        layer.keys = keys.gather(2, rows)
        layer.values = values.gather(2, rows)
        scores[number] = score.gather(2, kept)


def _rotate_half(x: torch.Tensor) -> torch.Tensor:
    first, second = x.chunk(2, dim=-1)
    return torch.cat([-second, first], dim=-1)


def attention_layers(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """The self-attention modules of a Llama-style (``q_proj`` + rotary embedding) or
    GPT-2-style (``c_attn``) HF causal LM, in layer order, with their kind.

    Raises:
        TypeError: ``model`` has neither layout.
    """
    found = []
    for module in model.modules():
        if hasattr(module, "q_proj") and hasattr(module, "k_proj"):
            found.append(("rotary", module))
        elif hasattr(module, "c_attn") and not getattr(module, "is_cross_attention", False):
            found.append(("gpt2", module))
    if not found:
        raise TypeError(
            f"model must be a HuggingFace Llama-style (q_proj/k_proj + rotary) or GPT-2-style "
            f"(c_attn) causal LM; {type(model).__name__} has no such attention modules"
        )
    return found


class AttentionScorer:
    """Accumulates, per layer, the attention each cached token receives: ``scores[i] (B, H, T)``.

    Use as a context manager around forwards that fill ``cache`` (the ``DynamicCache`` passed
    to the model): on entry hooks are attached to every attention module, on exit removed.
    A forward of ``q`` tokens scores with its last ``min(q, window)`` query rows (causally);
    query heads sharing a KV head add up. Scores of tokens new to the cache start at 0.

    The hooks only keep the query rows; the probabilities are computed in one batch per layer
    when ``scores`` is read (or once ``_FLUSH_ROWS`` rows wait), against the cache as it is
    then. Keys are only appended in between, so this equals scoring after every forward.
    """

    _FLUSH_ROWS = 64

    def __init__(self, model: nn.Module, cache, window: int) -> None:
        _check_int("window", window, 1)
        self.layers = attention_layers(model)
        self.cache = cache
        self.window = window
        self._scores: list[torch.Tensor | None] = [None] * len(self.layers)
        # per layer: (query rows (B, w, h*d), rotary (cos, sin) or None, tokens in that forward)
        self._pending: list[list[tuple]] = [[] for _ in self.layers]
        self._rotary: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}
        self._handles: list = []

    @property
    def scores(self) -> list[torch.Tensor | None]:
        """Per-layer importance ``(B, H, T)`` (``None`` before the first forward)."""
        self.flush()
        return self._scores

    @scores.setter
    def scores(self, value: list[torch.Tensor | None]) -> None:
        self._pending = [[] for _ in self.layers]
        self._scores = list(value)

    def __enter__(self) -> AttentionScorer:
        for number, (kind, module) in enumerate(self.layers):
            projection = module.q_proj if kind == "rotary" else module.c_attn
            hook = self._query_hook(number, module)
            self._handles.append(projection.register_forward_hook(hook))
            if kind == "rotary":
                hook = self._rotary_hook(number)
                self._handles.append(module.register_forward_pre_hook(hook, with_kwargs=True))
        return self

    def __exit__(self, *exc) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles.clear()
        self._rotary.clear()
        if sum(rows.shape[1] for rows, *_ in self._pending[0]) >= self._FLUSH_ROWS:
            self.flush()

    def _query_hook(self, number: int, attention: nn.Module):
        width = getattr(attention, "split_size", None)  # GPT-2: c_attn gives [q; k; v]

        def hook(module, args, output):
            rows = output[:, -self.window :]  # (B, w, h*d)
            rows = rows if width is None else rows[..., :width]
            self._pending[number].append((rows, self._rotary.pop(number, None), output.shape[1]))

        return hook

    def _rotary_hook(self, number: int):
        def hook(module, args, kwargs):
            if kwargs.get("position_embeddings") is None:
                raise TypeError(
                    f"{type(module).__name__} was called without position_embeddings=(cos, sin); "
                    f"AttentionScorer supports Llama-style attention that receives them"
                )
            cos, sin = kwargs["position_embeddings"]  # (B, q, d)
            self._rotary[number] = (cos[:, -self.window :], sin[:, -self.window :])

        return hook

    def flush(self) -> None:
        """Score the waiting query rows of every layer against its current cache."""
        for number, pending in enumerate(self._pending):
            if pending:
                self._accumulate(number, pending)
                pending.clear()

    def _accumulate(self, number: int, pending: list[tuple]) -> None:
        keys = self.cache.layers[number].keys  # (B, H, T, d)
        batch, kv_heads, length, head_size = keys.shape
        start = length - sum(tokens for *_, tokens in pending)  # cache index of the 1st token
        queries, positions = [], []
        for rows, rotary, tokens in pending:
            queries.append(_query_heads(rows, rotary, head_size))  # (B, h, w, d)
            positions.append(torch.arange(start + tokens - rows.shape[1], start + tokens))
            start += tokens
        query = torch.cat(queries, dim=2)  # (B, h, W, d)
        width, group = query.shape[2], query.shape[1] // kv_heads
        scale = getattr(self.layers[number][1], "scaling", head_size**-0.5)
        logits = query.reshape(batch, kv_heads, group * width, head_size) @ keys.transpose(2, 3)
        row_position = torch.cat(positions).repeat(group)  # (g*W,) cache index of each row
        future = torch.arange(length)[None, :] > row_position[:, None]  # (g*W, T)
        logits = (logits * scale).masked_fill(future, float("-inf"))
        received = torch.softmax(logits, dim=-1).sum(dim=2)  # (B, H, T)
        previous = self._scores[number]
        if previous is not None:
            received[..., : previous.shape[2]] += previous
        self._scores[number] = received


def _query_heads(
    rows: torch.Tensor, rotary: tuple[torch.Tensor, torch.Tensor] | None, head_size: int
) -> torch.Tensor:
    """Query rows ``(B, w, h*d)`` as heads ``(B, h, w, d)``, rotated when ``rotary`` is given."""
    batch, width = rows.shape[:2]
    query = rows.reshape(batch, width, -1, head_size).transpose(1, 2)
    if rotary is None:
        return query
    cos, sin = (t[:, None] for t in rotary)  # (B, 1, w, d)
    return query * cos + _rotate_half(query) * sin
