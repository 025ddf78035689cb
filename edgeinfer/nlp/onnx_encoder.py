"""Run an exported encoder (``nlp.export``) with ONNX Runtime: ``Encoder.encode`` without torch.

``OnnxEncoder(path)`` reads the tokenizer and settings stored in the file, so a folder of
model files is not needed; ``load_encoder(path)`` returns one for a ``.onnx`` path. The graph
takes one text at a time (its pruning keeps a count per text), so ``encode`` runs each text
on its own: a text's embedding never depends on the others.
"""

from __future__ import annotations

import json
import logging
import os
import warnings
from pathlib import Path

import numpy as np

from .export import FORMAT_VERSION, config_from_json
from .spatten.config import SpAttenConfig

__all__ = ["OnnxEncoder"]

logger = logging.getLogger(__name__)


def _session(path: Path, threads: int):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.log_severity_level = 3  # ORT's own warnings about optimisation choices
    try:
        return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    except Exception as error:  # ORT raises its own types for a damaged protobuf
        raise ValueError(
            f"{path}: ONNX Runtime cannot load this file ({type(error).__name__}: "
            f"{str(error)[:300]}); it is damaged or not an ONNX model: export it again"
        ) from error


class OnnxEncoder:
    """Texts -> embeddings ``(N, D)`` float32 with an exported (pruned) encoder.

    Attributes: ``path``, ``dim``, ``max_length`` (longer texts are truncated, with a
    warning), ``pooling``, ``normalize``, ``spatten`` (the exported ``SpAttenConfig``),
    ``family`` and ``threads`` (ONNX Runtime's intra-op threads).

    Raises (constructor):
        FileNotFoundError: no such file.
        ValueError: a damaged file, or an ONNX model that ``nlp.export`` did not write.
        TypeError / ValueError: bad ``threads`` or ``max_length``.
    """

    def __init__(self, path: str | os.PathLike[str], *, threads: int | None = None,
                 max_length: int | None = None) -> None:  # fmt: skip
        if not isinstance(path, str | os.PathLike):
            raise TypeError(f"path must be a str or os.PathLike; got {type(path).__name__}")
        self.path = Path(path)
        if not self.path.is_file():
            raise FileNotFoundError(f"exported encoder {self.path} does not exist")
        if threads is None:
            import torch

            threads = torch.get_num_threads()
        if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
            raise ValueError(f"threads must be a positive int or None; got {threads!r}")
        self.threads = threads
        self.session = _session(self.path, threads)
        meta = self._read_meta()
        self.dim, self.family = int(meta["dim"]), str(meta["family"])
        self.pooling, self.normalize = str(meta["pooling"]), bool(meta["normalize"])
        self.spatten: SpAttenConfig = config_from_json(meta["spatten"])
        self.max_positions = int(meta["max_positions"])
        self.max_length = self._check_max_length(max_length, int(meta["max_length"]))
        self.inputs = list(meta["inputs"])
        self.tokenizer = self._read_tokenizer()

    def _read_meta(self) -> dict:
        props = self.session.get_modelmeta().custom_metadata_map
        try:
            meta = json.loads(props["edgeinfer"])
            if meta.get("format") != "edgeinfer-encoder" or "edgeinfer.tokenizer" not in props:
                raise KeyError("format")
        except (KeyError, json.JSONDecodeError):
            raise ValueError(
                f"{self.path} is an ONNX model but not an encoder written by "
                "edgeinfer.nlp.export (no 'edgeinfer' metadata); export the encoder with it"
            ) from None
        if int(meta.get("version", 0)) > FORMAT_VERSION:
            raise ValueError(
                f"{self.path} was written by a newer edgeinfer (format {meta['version']}; this "
                f"one reads up to {FORMAT_VERSION}): upgrade edgeinfer"
            )
        return meta

    def _check_max_length(self, value: object, exported: int) -> int:
        if value is None:
            return exported
        if isinstance(value, bool) or not isinstance(value, int):
            raise TypeError(f"max_length must be an int or None; got {type(value).__name__}")
        if not 2 <= value <= self.max_positions:
            raise ValueError(
                f"max_length must be in [2, {self.max_positions}] for this model; got {value}"
            )
        return value

    def _read_tokenizer(self):
        from tokenizers import Tokenizer

        text = self.session.get_modelmeta().custom_metadata_map["edgeinfer.tokenizer"]
        tokenizer = Tokenizer.from_str(text)
        tokenizer.no_padding()
        tokenizer.enable_truncation(self.max_length)
        return tokenizer

    def tokenize(self, text: str) -> tuple[dict[str, np.ndarray], bool]:
        """The graph's inputs ``(1, n)`` int64 for one text, and whether it was truncated."""
        encoding = self.tokenizer.encode(text)
        ids = np.asarray([encoding.ids], dtype=np.int64)
        feed = {"input_ids": ids}
        if "token_type_ids" in self.inputs:
            feed["token_type_ids"] = np.asarray([encoding.type_ids], dtype=np.int64)
        return feed, bool(encoding.overflowing)

    def embed_one(self, text: str) -> tuple[np.ndarray, np.ndarray]:
        """``(embedding (D,) float32, kept (n',) int64)``: the text's vector and the original
        positions of the tokens its last layer still held."""
        feed, _ = self.tokenize(text)
        vector, kept = self.session.run(None, feed)
        return vector[0], kept

    def encode(self, texts: list[str], batch_size: int = 8, *, progress: bool = False
               ) -> np.ndarray:  # fmt: skip
        """Embeddings ``(N, D)`` float32 in the order of ``texts`` (as ``Encoder.encode``).

        ``batch_size`` is accepted for the same signature and checked; each text runs alone.

        Raises:
            TypeError: ``texts`` not a list of str (names the first bad index).
            ValueError: ``batch_size`` not a positive int.
        """
        from .encoder import _check_texts, _progress

        texts = _check_texts(texts)
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive int; got {batch_size!r}")
        result = np.zeros((len(texts), self.dim), dtype=np.float32)
        truncated = 0
        for index in _progress(range(len(texts)), progress):
            feed, cut = self.tokenize(texts[index])
            truncated += cut
            result[index] = self.session.run(["embedding"], feed)[0][0]
        if truncated:
            warnings.warn(
                f"{truncated} of {len(texts)} texts exceed max_length={self.max_length} tokens "
                f"and were truncated; pass a larger max_length to load_encoder (the model "
                f"allows at most {self.max_positions})",
                stacklevel=2,
            )
        return result

    def __repr__(self) -> str:
        return (f"OnnxEncoder({str(self.path)!r}, family={self.family!r}, dim={self.dim}, "
                f"token_keep={self.spatten.token_keep}, threads={self.threads})")  # fmt: skip
