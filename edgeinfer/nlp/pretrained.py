"""The text engine's load-and-run surface, the same shape as the other engines'.

```python
from edgeinfer.nlp import SpAttenConfig, create_model, list_models, load_pretrained
encoder, info = load_pretrained("all-MiniLM-L6-v2", spatten=SpAttenConfig(token_keep=0.5))
info.input            # TextInput(tokenizer=..., max_length=256, pooling='mean', normalize=True)
vectors = encoder.encode(["a text", "another"])          # (2, 384)
model = create_model("bert", hidden_size=64, num_hidden_layers=2)   # random weights, eval mode
```

``load_pretrained`` reads a known offline name or any local HuggingFace encoder folder; its
pooling follows the folder's sentence-transformers files (``modules.json``, ``1_Pooling``,
``Normalize``) when it has them, else mean pooling with L2 normalisation (what
:class:`~edgeinfer.nlp.Encoder` always did). ``create_model`` builds a freshly initialised
encoder of a family from a config (for tests and for training elsewhere).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from torch import nn

from .._info import PretrainedInfo, TextInput
from .._names import unknown_name
from .encoder import Encoder, load_encoder
from .registry import resolve_encoder_path
from .spatten import SpAttenConfig

__all__ = ["FAMILIES", "SOURCES", "create_model", "list_models", "load_pretrained",
           "read_pooling"]

FAMILIES: dict[str, str] = {
    "bert": "bert", "distilbert": "distilbert", "mpnet": "mpnet", "roberta": "roberta",
    "xlm-roberta": "xlm-roberta", "modernbert": "modernbert",
}
"""``create_model`` names -> HuggingFace ``model_type``."""
SOURCES: tuple[str, ...] = ("huggingface",)
TASK = "sentence embedding"


def list_models() -> list[str]:
    """Encoder families :func:`create_model` builds, sorted."""
    return sorted(FAMILIES)


def create_model(name: str, **config: Any) -> nn.Module:
    """A freshly initialised HF encoder of family ``name`` (eval mode); ``config`` fields go to
    the family's HF config (``hidden_size``, ``num_hidden_layers``, ``vocab_size``, ...).

    Raises:
        ValueError: unknown family (close matches listed), or one this transformers lacks.
        TypeError: a config value HF refuses.
    """
    if name not in FAMILIES:
        raise ValueError(unknown_name("text model family", name, FAMILIES))
    from transformers import AutoConfig, AutoModel

    try:
        hf_config = AutoConfig.for_model(FAMILIES[name], **config)
    except ValueError as error:
        raise ValueError(f"family {name!r} is not available in this transformers: {error}") \
            from error
    return AutoModel.from_config(hf_config).eval()


def read_pooling(folder: str | os.PathLike[str]) -> tuple[str, bool] | None:
    """``(pooling, normalize)`` from a sentence-transformers folder, or ``None`` without one.

    Raises:
        ValueError: a pooling mode edgeinfer does not run (max, mean-sqrt-len, ...), or a
            damaged ``modules.json`` / pooling config.
    """
    folder = Path(folder)
    modules_file = folder / "modules.json"
    if not modules_file.is_file():
        return None
    try:
        modules = json.loads(modules_file.read_text())
        kinds = {str(m["type"]).rsplit(".", 1)[-1]: m.get("path", "") for m in modules}
        pooling_file = folder / kinds.get("Pooling", "1_Pooling") / "config.json"
        modes = json.loads(pooling_file.read_text()) if pooling_file.is_file() else {}
    except (ValueError, KeyError, TypeError) as error:
        raise ValueError(f"{modules_file}: damaged sentence-transformers config ({error})") \
            from error
    chosen = sorted(k.removeprefix("pooling_mode_") for k, v in modes.items()
                    if k.startswith("pooling_mode_") and v is True)
    by_name = {"cls_token": "cls", "mean_tokens": "mean"}
    if "Pooling" in kinds and (len(chosen) != 1 or chosen[0] not in by_name):
        raise ValueError(f"{folder}: pooling {chosen} is not supported; edgeinfer pools with "
                         "one of mean_tokens or cls_token")  # fmt: skip
    pooling = by_name[chosen[0]] if chosen else "mean"
    return pooling, "Normalize" in kinds


def load_pretrained(
    name_or_path: str | os.PathLike[str] = "all-MiniLM-L6-v2", *, source: str | None = None,
    spatten: SpAttenConfig | None = None, max_length: int | None = None,
    adaptation: str | os.PathLike[str] | None = None,
) -> tuple[Encoder, PretrainedInfo]:
    """A sentence :class:`Encoder` (optionally SpAtten-pruned) and its :class:`PretrainedInfo`.

    Args:
        name_or_path: an offline name (:func:`~edgeinfer.nlp.list_encoders`) or a local HF
            encoder folder (BERT, RoBERTa, DistilBERT, MPNet, XLM-R, ...).
        source: ``"huggingface"`` (the only text source; default detected).
        spatten / max_length / adaptation: as :func:`~edgeinfer.nlp.load_encoder`.

    Raises:
        FileNotFoundError / ValueError / TypeError: as :func:`~edgeinfer.nlp.load_encoder`, an
            unknown ``source``, or an unsupported pooling mode.
    """
    if source is not None and source not in SOURCES:
        raise ValueError(unknown_name("text checkpoint source", source, SOURCES))
    path = resolve_encoder_path(name_or_path)
    pooling, normalize = read_pooling(path) or ("mean", True)
    encoder = load_encoder(path, spatten=spatten, max_length=max_length, adaptation=adaptation,
                           pooling=pooling, normalize=normalize)  # fmt: skip
    spec = TextInput(str(path), encoder.max_length, pooling, normalize)
    info = PretrainedInfo("nlp", str(encoder.model.config.model_type), TASK, (), spec,
                          str(name_or_path), "huggingface")  # fmt: skip
    return encoder, info
