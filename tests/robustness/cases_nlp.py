"""Hostile texts, arguments and model folders for the text engine (``load_encoder``/``encode``).

Batch independence is part of the contract: a text's embedding must not depend on the other
texts of its batch or on their padding, so encoding at ``batch_size=8`` is compared with
``batch_size=1`` per text.
"""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np

from tests.robustness.hostile import Case, Silent

MODEL = "all-MiniLM-L6-v2"
BATCH_COSINE = 0.9999  # fp32: float noise only (GEMMs of other shapes sum in another order)
# With int8 linears each row is quantised on its own, but a row's fp32 attention output still
# differs from batch to batch by float noise (padding changes the reduction lengths) and that
# noise moves some int8 roundings: measured min 0.9974 over 50 Lee documents (per-tensor
# activations, before: 0.93), so the pruned int8 encoder is held to this looser floor.
BATCH_COSINE_INT8 = 0.995


@functools.cache
def _encoder(pruned: bool):
    from edgeinfer.nlp import SpAttenConfig, load_encoder

    return load_encoder(MODEL, spatten=SpAttenConfig() if pruned else None, max_length=128)


@functools.cache
def _texts() -> tuple[str, ...]:
    from edgeinfer.datasets import read_lee_corpus

    documents = read_lee_corpus()[:16]
    # very different lengths in one batch: padding is the largest part of the short ones
    return tuple(doc if i % 2 else doc[: 40 + 7 * i] for i, doc in enumerate(documents))


def _batch_independent(pruned: bool):
    def run(tmp: Path):
        encoder, texts = _encoder(pruned), list(_texts())
        batched, alone = encoder.encode(texts, batch_size=8), encoder.encode(texts, batch_size=1)
        cosine = np.sum(batched * alone, axis=1)  # both L2-normalised
        worst = int(np.argmin(cosine))
        floor = BATCH_COSINE_INT8 if pruned else BATCH_COSINE
        if cosine[worst] < floor:
            raise Silent(f"text {worst}: cosine {cosine[worst]:.4f} between batch_size=8 and "
                         f"batch_size=1 (must be >= {floor})")
        return True

    return run


def _encode(texts, **kwargs):
    return lambda tmp: _encoder(False).encode(texts, **kwargs)


def _unit_rows(count: int):
    def check(result) -> bool:
        norms = np.linalg.norm(result, axis=1)
        return result.shape[0] == count and bool(np.all(np.abs(norms - 1) < 1e-4))

    return check


def _load(name_or_path, **kwargs):
    def run(tmp: Path):
        from edgeinfer.nlp import load_encoder

        target = name_or_path(tmp) if callable(name_or_path) else name_or_path
        return load_encoder(target, **kwargs)

    return run


def _broken_model_dir(tmp: Path) -> Path:
    from edgeinfer.nlp.registry import resolve_encoder_path

    source = resolve_encoder_path(MODEL)
    target = tmp / "broken-model"
    target.mkdir()
    for item in source.iterdir():
        if item.is_file():
            data = item.read_bytes()
            if item.suffix in (".safetensors", ".bin"):
                data = data[: len(data) // 3]
            (target / item.name).write_bytes(data)
    return target


def _config(**kwargs):
    def run(tmp: Path):
        from edgeinfer.nlp import SpAttenConfig

        return SpAttenConfig(**kwargs)

    return run


def cases() -> list[Case]:
    entry = "Encoder.encode"
    return [
        Case(entry, "a str instead of a list", _encode("one text"), r"texts must be a list"),
        Case(entry, "None among the texts", _encode(["a", None]), r"texts\[1\]"),
        Case(entry, "bytes among the texts", _encode(["a", b"b"]), r"texts\[1\]"),
        Case(entry, "batch_size 0", _encode(["a"], batch_size=0), r"batch_size"),
        Case(entry, "batch_size True", _encode(["a"], batch_size=True), r"batch_size"),
        Case(entry, "control characters and emoji", _encode(["\x00\x01\x7f", "🙂" * 50, ""]),
             check=_unit_rows(3)),
        Case(entry, "a text far beyond max_length", _encode(["word " * 5000]),
             check=_unit_rows(1)),
        Case(entry, "fp32: batch 8 equals batch 1", _batch_independent(False), check=bool),
        Case(entry, "SpAttenConfig(): batch 8 equals batch 1", _batch_independent(True),
             check=bool),
        Case("load_encoder", "unknown name", _load("all-MiniLM-L7"), r"all-MiniLM-L7"),
        Case("load_encoder", "a folder without a model", _load(lambda tmp: tmp), r"config\.json"
             r"|no such|not found|model"),
        Case("load_encoder", "weights file cut short", _load(_broken_model_dir),
             r"broken-model", child=True),
        Case("load_encoder", "max_length 0", _load(MODEL, max_length=0), r"max_length"),
        Case("load_encoder", "max_length beyond the model", _load(MODEL, max_length=10**6),
             r"max_length"),
        Case("load_encoder", "spatten as a string", _load(MODEL, spatten="fast"), r"spatten"),
        Case("SpAttenConfig", "token_keep 1.5", _config(token_keep=1.5), r"token_keep"),
        Case("SpAttenConfig", "token_keep NaN", _config(token_keep=float("nan")), r"token_keep"),
        Case("SpAttenConfig", "head_keep 0", _config(head_keep=0.0), r"head_keep"),
        Case("SpAttenConfig", "prune_layers negative", _config(prune_layers=(-1,)),
             r"prune_layers"),
    ]
