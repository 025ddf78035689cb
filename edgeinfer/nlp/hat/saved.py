"""Reload a sub-network that was exported (``export_subnet``) and saved with ``save_pretrained``.

An exported sub-network has per-layer head counts and FFN widths, which a ``BertConfig`` cannot
describe, so ``BertModel.from_pretrained`` rejects its weights (size mismatch). The export
records the shape on the config (``hat_subconfig``, ``hat_head_dim``); ``load_subnet`` reads it
from ``config.json``, rebuilds the same compact model and loads the saved safetensors weights,
so the reloaded model computes exactly what the exported one did::

    model = supernet.export_subnet(config)
    model.save_pretrained("subnet/")
    model, config = load_subnet("subnet/")

``transformers`` and ``safetensors`` are imported only when a model is loaded.
"""

from __future__ import annotations

import json
from pathlib import Path

from torch import nn

from ..._checkpoint import state_dict_mismatch
from .export import build_bert
from .space import SubConfig

__all__ = ["load_subnet"]

_EXPECTED = (
    "a directory written by save_pretrained of a model from export_subnet / "
    "SuperEncoder.export_subnet: config.json (with hat_subconfig) and model.safetensors"
)


def _read_subconfig(folder: Path) -> tuple[dict, SubConfig, int]:
    config_file = folder / "config.json"
    if not config_file.is_file():
        raise FileNotFoundError(f"no config.json in {folder}; expected {_EXPECTED}")
    try:
        values = json.loads(config_file.read_text())
    except json.JSONDecodeError as exc:
        raise ValueError(f"{config_file} is not valid JSON ({exc}); expected {_EXPECTED}") from None
    if "hat_subconfig" not in values:
        raise ValueError(
            f"{config_file} has no hat_subconfig: not a HAT sub-network export (a plain BERT "
            f"directory loads with transformers.BertModel.from_pretrained); expected {_EXPECTED}"
        )
    config = SubConfig.from_dict(values["hat_subconfig"])
    hidden, layers = values.get("hidden_size"), values.get("num_hidden_layers")
    if hidden != config.embed_dim or layers != config.layers:
        raise ValueError(
            f"{config_file} is inconsistent: hat_subconfig {config} but hidden_size={hidden}, "
            f"num_hidden_layers={layers}"
        )
    head_dim = values.get("hat_head_dim") or hidden // values["num_attention_heads"]
    return values, config, int(head_dim)


def _read_weights(folder: Path) -> dict:
    from safetensors.torch import load_file

    single, index = folder / "model.safetensors", folder / "model.safetensors.index.json"
    if single.is_file():
        return load_file(single)
    if index.is_file():
        shards = sorted(set(json.loads(index.read_text())["weight_map"].values()))
        missing = [name for name in shards if not (folder / name).is_file()]
        if missing:
            raise FileNotFoundError(f"{index} lists shards missing from {folder}: {missing}")
        state = {}
        for name in shards:
            state.update(load_file(folder / name))
        return state
    raise FileNotFoundError(
        f"no model.safetensors (or model.safetensors.index.json) in {folder}; expected "
        f"{_EXPECTED}. Save with model.save_pretrained(path) (safetensors is its default)."
    )


def load_subnet(
    path: str | Path, *, attn_implementation: str = "sdpa"
) -> tuple[nn.Module, SubConfig]:
    """``(model, config)``: the ``transformers.BertModel`` (eval mode, no pooler) saved at
    ``path`` and the ``SubConfig`` it was exported from. Its ``last_hidden_state`` is
    ``(B, L, config.embed_dim)``, equal to the exported model's before saving.

    Args:
        path: the ``save_pretrained`` directory of an exported sub-network.
        attn_implementation: HF attention kernel (``"sdpa"``, what export uses by default,
            or ``"eager"``).

    Raises:
        FileNotFoundError: ``path`` is not a directory, or config.json / the weights are missing.
        ValueError: config.json is not a HAT export, or the weights do not fit its shape
            (names the missing, unexpected or mis-shaped tensors).
    """
    from transformers import BertConfig

    folder = Path(path).expanduser()
    if not folder.is_dir():
        raise FileNotFoundError(f"sub-network directory {folder} does not exist; expected "
                                f"{_EXPECTED}")  # fmt: skip
    values, config, head_dim = _read_subconfig(folder)
    base = BertConfig.from_dict(values)
    base._attn_implementation = attn_implementation
    model = build_bert(base, config, head_dim)
    state = _read_weights(folder)
    mismatch = state_dict_mismatch(model.state_dict(), state)
    if mismatch is not None:
        raise ValueError(
            f"the weights in {folder} do not match its hat_subconfig {config}: {mismatch}"
        )
    model.load_state_dict(state, strict=True)
    return model.eval(), config
