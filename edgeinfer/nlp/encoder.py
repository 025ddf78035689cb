"""Sentence encoder: tokenizer + BERT-family model + mean pooling, optionally SpAtten-pruned.

``load_encoder("all-MiniLM-L6-v2")`` reproduces sentence-transformers' embeddings (mean
pooling over real tokens, then L2 normalisation). With ``spatten=SpAttenConfig(...)`` the model
runs the pruned forward and the mean is taken over the tokens still kept after the last layer
(pruned tokens contribute nothing). ``transformers`` is imported only when a model is loaded.
"""

from __future__ import annotations

import json
import logging
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import nn

from .._info import POOLINGS
from .registry import resolve_encoder_path
from .spatten import SpAttenConfig, SpAttenStats, apply_spatten

if TYPE_CHECKING:
    from .onnx_encoder import OnnxEncoder

__all__ = ["Encoder", "load_encoder", "mean_pool", "pool"]

logger = logging.getLogger(__name__)


def mean_pool(hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """L2-normalised mean of ``hidden (B, L, D)`` over ``mask (B, L)`` rows -> ``(B, D)``."""
    return pool(hidden, mask, "mean", True)


def pool(hidden: torch.Tensor, mask: torch.Tensor, pooling: str = "mean",
         normalize: bool = True) -> torch.Tensor:
    """One vector per row of ``hidden (B, L, D)``: the mean over ``mask (B, L)`` rows
    (``"mean"``) or the first token (``"cls"``), L2-normalised when ``normalize`` -> ``(B, D)``."""
    if pooling == "cls":
        vectors = hidden[:, 0]
    else:
        weights = mask.to(hidden.dtype).unsqueeze(-1)
        vectors = (hidden * weights).sum(dim=1) / weights.sum(dim=1).clamp(min=1e-9)
    return torch.nn.functional.normalize(vectors, p=2, dim=1) if normalize else vectors


def _check_texts(texts: object) -> list[str]:
    if isinstance(texts, str) or not isinstance(texts, (list, tuple)):
        raise TypeError(
            f"texts must be a list of str; got {type(texts).__name__}"
            + (" (wrap a single text as [text])" if isinstance(texts, str) else "")
        )
    for index, text in enumerate(texts):
        if not isinstance(text, str):
            raise TypeError(f"texts[{index}] must be a str; got {type(text).__name__}")
    return list(texts)


class Encoder:
    """Texts -> embeddings ``(N, D)`` float32 with a (pruned) encoder.

    Attributes: ``model`` the HF model, ``tokenizer``, ``spatten`` the SpAttenModel or
    ``None``, ``max_length`` tokens per text (longer texts are truncated, with a warning),
    ``pooling`` (``"mean"`` over real tokens or ``"cls"``) and ``normalize`` (unit length).
    """

    def __init__(
        self, model: nn.Module, tokenizer, *, spatten: SpAttenConfig | None, max_length: int,
        pooling: str = "mean", normalize: bool = True,
    ) -> None:
        if pooling not in POOLINGS:
            raise ValueError(f"pooling must be one of {list(POOLINGS)}; got {pooling!r}")
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.spatten = None if spatten is None else apply_spatten(model, spatten)
        self.max_length = max_length
        self.pooling, self.normalize = pooling, bool(normalize)

    @property
    def dim(self) -> int:
        """Embedding size ``D``."""
        return int(self.model.config.hidden_size)

    def tokenize(self, texts: list[str]) -> tuple[dict[str, torch.Tensor], int]:
        """Padded batch inputs ``(B, L)`` and how many texts were truncated."""
        batch = self.tokenizer(
            texts, padding=True, truncation=True, max_length=self.max_length,
            return_special_tokens_mask=True, return_tensors="pt",
        )  # fmt: skip
        truncated = sum(bool(e.overflowing) for e in (batch.encodings or []))
        inputs = dict(batch)
        inputs["protect"] = inputs.pop("special_tokens_mask").bool()
        return inputs, truncated

    @torch.inference_mode()
    def embed(self, inputs: dict[str, torch.Tensor]) -> tuple[torch.Tensor, SpAttenStats | None]:
        """Embeddings ``(B, D)`` of tokenized ``inputs`` and the pruning stats (or ``None``)."""
        if self.spatten is not None:
            out = self.spatten(**inputs)
            return pool(out.hidden, out.mask, self.pooling, self.normalize), out.stats
        hf_inputs = {k: v for k, v in inputs.items() if k != "protect"}
        hidden = self.model(**hf_inputs).last_hidden_state
        return pool(hidden, inputs["attention_mask"], self.pooling, self.normalize), None

    def encode(
        self, texts: list[str], batch_size: int = 8, *, progress: bool = False
    ) -> np.ndarray:
        """Embeddings ``(N, D)`` float32, L2-normalised, in the order of ``texts``.

        An empty list gives ``(0, D)``; an empty string is encoded as ``[CLS] [SEP]`` (a valid
        embedding, as sentence-transformers does). Texts are batched by length, so padding
        stays small; results do not depend on the batching.

        Raises:
            TypeError: ``texts`` not a list of str (names the first bad index).
            ValueError: ``batch_size`` not a positive int.
        """
        texts = _check_texts(texts)
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive int; got {batch_size!r}")
        result = np.zeros((len(texts), self.dim), dtype=np.float32)
        order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))
        starts = range(0, len(order), batch_size)
        truncated = 0
        for number, start in enumerate(_progress(starts, progress)):
            chunk = order[start : start + batch_size]
            inputs, cut = self.tokenize([texts[i] for i in chunk])
            truncated += cut
            result[chunk] = self.embed(inputs)[0].float().numpy()
            logger.debug("encoded batch %d/%d", number + 1, len(starts))
        if truncated:
            warnings.warn(
                f"{truncated} of {len(texts)} texts exceed max_length={self.max_length} tokens "
                f"and were truncated; pass a larger max_length to load_encoder (the model "
                f"allows at most {self.model.config.max_position_embeddings})",
                stacklevel=2,
            )
        return result


def _progress(items, enabled: bool):
    if not enabled:
        return items
    try:
        from tqdm.auto import tqdm
    except ImportError:
        logger.info("progress needs tqdm; encoding without a progress bar")
        return items
    return tqdm(items, desc="encode", unit="batch")


def _default_max_length(path: Path, model: nn.Module, tokenizer) -> int:
    limit = int(model.config.max_position_embeddings)
    st_config = path / "sentence_bert_config.json"
    if st_config.is_file():
        limit = min(limit, int(json.loads(st_config.read_text()).get("max_seq_length", limit)))
    return min(limit, int(getattr(tokenizer, "model_max_length", limit) or limit))


def load_encoder(
    name_or_path: str | Path,
    *,
    spatten: SpAttenConfig | None = None,
    max_length: int | None = None,
    adaptation: str | Path | None = None,
    pooling: str = "mean",
    normalize: bool = True,
) -> Encoder | OnnxEncoder:
    """Load a BERT-family sentence encoder offline, optionally with SpAtten pruning.

    Args:
        name_or_path: a known offline name (``"all-MiniLM-L6-v2"``) or a local HF model dir.
        spatten: pruning config; ``None`` runs the unmodified HF forward.
        max_length: tokens per text; default the model's sentence-transformers setting
            (256 for all-MiniLM-L6-v2) capped by its position embeddings.
        adaptation: a pruning-aware distillation checkpoint (``spatten.adapt``,
            ``scripts/adapt_spatten.py``) loaded into the model's weights; needs ``spatten``,
            and warns when the checkpoint was trained for other keep ratios or layers.
        pooling / normalize: how token vectors become the text's vector (``"mean"`` or
            ``"cls"``; L2 normalisation); ``nlp.load_pretrained`` reads them from the folder.

    A path to a file written by ``nlp.export`` (``.onnx``) gives an ``OnnxEncoder`` with the
    file's own pruning, pooling and tokenizer (only ``max_length`` may be passed: it can
    shorten, not change, what was exported).

    Raises:
        FileNotFoundError: unknown name / missing directory (lists what is available offline),
            or a missing ``adaptation`` file.
        ValueError: a model folder whose files cannot be read (damaged weights, say).
        TypeError / ValueError: bad ``spatten``, ``max_length`` or ``adaptation`` (including
            one trained for another model: its tensor names or shapes do not match).
    """
    if isinstance(name_or_path, (str, Path)) and Path(name_or_path).suffix.lower() == ".onnx":
        return _exported(name_or_path, max_length, spatten=spatten, adaptation=adaptation,
                         pooling=pooling, normalize=normalize)  # fmt: skip
    path = resolve_encoder_path(name_or_path)
    if spatten is not None and not isinstance(spatten, SpAttenConfig):
        raise TypeError(f"spatten must be a SpAttenConfig or None; got {type(spatten).__name__}")
    state = _read_adaptation(adaptation, spatten)
    tokenizer, model = _read_model(path)
    if state is not None:
        from .spatten.adapt import adapted_model

        try:
            model = adapted_model(model, state, in_place=True)  # ours: no copy
        except KeyError as error:
            raise ValueError(f"adaptation {adaptation} does not fit {name_or_path}: "
                             f"{error.args[0]}") from None  # fmt: skip
    limit = int(model.config.max_position_embeddings)
    if max_length is None:
        max_length = _default_max_length(path, model, tokenizer)
    elif isinstance(max_length, bool) or not isinstance(max_length, int):
        raise TypeError(f"max_length must be an int or None; got {type(max_length).__name__}")
    elif not 2 <= max_length <= limit:
        raise ValueError(f"max_length must be in [2, {limit}] for this model; got {max_length}")
    return Encoder(model, tokenizer, spatten=spatten, max_length=max_length, pooling=pooling,
                   normalize=normalize)


def _exported(path: str | Path, max_length: int | None, **fixed):
    """``OnnxEncoder`` of an exported file; refuses settings the export fixed."""
    from .onnx_encoder import OnnxEncoder

    defaults = {"spatten": None, "adaptation": None, "pooling": "mean", "normalize": True}
    changed = [name for name, value in fixed.items() if value != defaults[name]]
    if changed:
        raise ValueError(
            f"{path} is an exported encoder: its {', '.join(changed)} were fixed at export; "
            "export again with the settings you want (nlp.export) and load without them"
        )
    return OnnxEncoder(path, max_length=max_length)


def _read_model(path: Path):
    """``(tokenizer, model)`` of a local HF folder; a damaged folder raises ValueError."""
    from transformers import AutoModel, AutoTokenizer

    from ._quiet import quiet_loading

    try:
        with quiet_loading():
            tokenizer = AutoTokenizer.from_pretrained(str(path), local_files_only=True)
            model = AutoModel.from_pretrained(str(path), local_files_only=True)
    except Exception as error:  # safetensors, tokenizers and transformers raise their own
        raise ValueError(
            f"{path}: cannot load this model folder ({type(error).__name__}: "
            f"{str(error)[:300]}); a weights, config or tokenizer file is damaged or "
            "missing: copy the model folder again"
        ) from error
    return tokenizer, model


def _read_adaptation(adaptation: str | Path | None, spatten: SpAttenConfig | None):
    """The state of an adaptation checkpoint, checked against ``spatten`` (None: no file)."""
    if adaptation is None:
        return None
    if not isinstance(adaptation, (str, Path)):
        raise TypeError(
            f"adaptation must be a path to a checkpoint or None; got {type(adaptation).__name__}"
        )
    if spatten is None:
        raise ValueError(
            "adaptation needs spatten=: an adaptation is trained for one pruned forward; "
            "pass the SpAttenConfig it was trained with"
        )
    if not Path(adaptation).is_file():
        raise FileNotFoundError(f"adaptation checkpoint {adaptation} does not exist")
    from .spatten.adapt import load_adaptation, pruning_meta

    state, meta = load_adaptation(adaptation)
    wanted = pruning_meta(spatten)
    trained = {key: meta.get(key) for key in wanted}
    if trained != wanted:
        warnings.warn(
            f"adaptation {adaptation} was trained for {trained}, but spatten has {wanted}; "
            f"its quality gain may not carry over",
            stacklevel=3,
        )
    return state
