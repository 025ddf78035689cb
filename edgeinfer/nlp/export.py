"""Export a (pruned) sentence encoder to a mobile runtime: one file, text in, vector out.

``export(encoder, "onnx", "minilm.onnx", spatten=SpAttenConfig())`` writes the batch-1 graph
of ``export_graph.PrunedGraph``: ``input_ids (1, n)`` (and ``token_type_ids (1, n)`` for the
BERT layout) -> ``embedding (1, D)``, ``kept (n',)``, with a dynamic sequence axis, the token
scoring and ``TopK`` selection inside the graph and, with ``spatten.quant.linear_int8``, int8
linears quantised per row (per-channel int8 weights). The file also carries what turns a text
into those inputs: the tokenizer (its ``tokenizer.json``), ``max_length``, pooling,
normalisation and the pruning config, in the ONNX ``metadata_props`` (``edgeinfer`` and
``edgeinfer.tokenizer``), so ``OnnxEncoder(path)`` / ``load_encoder(path)`` needs nothing
else. ``onnx`` is imported only to write the metadata; ``onnxruntime`` only to run the file.

ExecuTorch is refused with the reason (see ``EXECUTORCH_LIMIT``).
"""

from __future__ import annotations

import dataclasses
import json
import os
import warnings
from pathlib import Path

import torch

from .spatten.config import QuantConfig, SpAttenConfig

__all__ = ["EXECUTORCH_LIMIT", "EXPORT_FORMATS", "FORMAT_VERSION", "config_from_json",
           "config_to_json", "export"]  # fmt: skip

EXPORT_FORMATS = ("onnx", "executorch")
FORMAT_VERSION = 1
EXECUTORCH_LIMIT = (
    "export to ExecuTorch is not built for the pruned encoder yet: its per-layer kept count "
    "(ceil(ratio * n) of the dynamic length n) and token selection are written as ONNX nodes, "
    "and under torch.export they read the length as a data-dependent value, which export "
    "refuses; export to 'onnx' (ONNX Runtime runs on Android and iOS)"
)
_UNPRUNED = SpAttenConfig(token_keep=1.0, quant=None)
_SAME = object()


def config_to_json(config: SpAttenConfig) -> dict:
    """A ``SpAttenConfig`` as JSON-ready data (``config_from_json`` reads it back)."""
    return dataclasses.asdict(config)


def config_from_json(data: dict) -> SpAttenConfig:
    """The ``SpAttenConfig`` written by ``config_to_json`` (validated as any config).

    Raises:
        ValueError: data that is not such a config.
    """
    try:
        fields = dict(data)
        for name in ("prune_layers", "token_schedule", "head_prune_layers"):
            if fields.get(name) is not None:
                fields[name] = tuple(fields[name])
        quant = fields.get("quant")
        fields["quant"] = None if quant is None else QuantConfig(**quant)
        return SpAttenConfig(**fields)
    except (TypeError, ValueError) as error:
        raise ValueError(f"not a pruning config written by export: {error}") from None


def _check_args(encoder: object, fmt: object, path: object) -> Path:
    from .encoder import Encoder

    if not isinstance(encoder, Encoder):
        raise TypeError(
            f"encoder must be an nlp.Encoder (from load_encoder); got {type(encoder).__name__}"
        )
    if fmt not in EXPORT_FORMATS:
        raise ValueError(f"format must be one of {list(EXPORT_FORMATS)}; got {fmt!r}")
    if not isinstance(path, str | os.PathLike):
        raise TypeError(f"path must be a str or os.PathLike; got {type(path).__name__}")
    path = Path(path)
    suffix = ".onnx" if fmt == "onnx" else ".pte"
    if path.suffix.lower() != suffix:
        raise ValueError(f"path for a {fmt!r} export must end in {suffix!r} (load_encoder picks "
                         f"the runtime by suffix); got {str(path)!r}")  # fmt: skip
    if not path.parent.is_dir() or not os.access(path.parent, os.W_OK):
        raise ValueError(f"path {str(path)!r}: the folder {str(path.parent)!r} does not exist "
                         "or is not writable; create it first")  # fmt: skip
    if path.is_dir():
        raise ValueError(f"path {str(path)!r} is a folder; name the file to write")
    return path


def _pruning(encoder, spatten: object) -> SpAttenConfig:
    if spatten is _SAME:
        return _UNPRUNED if encoder.spatten is None else encoder.spatten.config
    if spatten is None:
        return _UNPRUNED
    if not isinstance(spatten, SpAttenConfig):
        raise TypeError(f"spatten must be a SpAttenConfig or None (unpruned, float32); got "
                        f"{type(spatten).__name__}")  # fmt: skip
    return spatten


def export(encoder, fmt: str, path: str | os.PathLike[str], *, spatten: object = _SAME,
           fused_attention: bool = True, opset: int = 17) -> Path:  # fmt: skip
    """Write ``encoder`` (pruned by ``spatten``) as one ONNX file; see the module docstring.

    Args:
        encoder: an ``nlp.Encoder``; its weights (adapted ones too), tokenizer, ``max_length``,
            pooling and normalisation go into the file.
        fmt: ``"onnx"`` (``.onnx``); ``"executorch"`` is refused with ``EXECUTORCH_LIMIT``.
        spatten: the pruning to export; default the encoder's own (unpruned when it has none),
            ``None`` the unpruned float32 encoder. Head pruning, threshold mode and
            progressive attention quantisation are refused (``check_exportable``).
        fused_attention: each layer's attention as ONNX Runtime's ``MultiHeadAttention``
            (fast, ONNX Runtime only); False writes standard ONNX ``MatMul``/``Softmax`` nodes.
        opset: ONNX opset (>= 17: ``LayerNormalization``).

    Returns:
        The path written (a half-written file never has its name).

    Raises:
        TypeError / ValueError: bad arguments (named, before any tracing); a family or pruning
            setting the graph does not compute.
        NotImplementedError: ``fmt="executorch"`` (with the reason).
    """
    path = _check_args(encoder, fmt, path)
    config = _pruning(encoder, spatten)
    if isinstance(opset, bool) or not isinstance(opset, int) or opset < 17:
        raise ValueError(f"opset must be an int >= 17 (LayerNormalization); got {opset!r}")
    from .export_graph import PrunedGraph

    graph = PrunedGraph(encoder, config, fused_attention=bool(fused_attention)).eval()
    if fmt == "executorch":
        raise NotImplementedError(EXECUTORCH_LIMIT)
    sample = encoder.tokenizer(["an edgeinfer export traces this sentence"], return_tensors="pt")
    names = ["input_ids", "token_type_ids"] if graph.token_types else ["input_ids"]
    inputs = tuple(sample.get(name, torch.zeros_like(sample["input_ids"])) for name in names)
    partial = path.with_name(path.name + ".partial")
    with warnings.catch_warnings(), torch.no_grad():
        warnings.filterwarnings("ignore", message=".*legacy TorchScript-based ONNX export.*")
        warnings.filterwarnings("ignore", message=".*will be removed.*")
        warnings.filterwarnings("ignore", category=torch.jit.TracerWarning)
        torch.onnx.export(
            graph, inputs, str(partial), dynamo=False, input_names=names,
            output_names=["embedding", "kept"], opset_version=opset, do_constant_folding=True,
            dynamic_axes={**{name: {1: "tokens"} for name in names}, "kept": {0: "kept"}},
        )  # fmt: skip
    _write_metadata(partial, encoder, config, graph)
    partial.replace(path)
    return path


def _write_metadata(path: Path, encoder, config: SpAttenConfig, graph) -> None:
    import onnx

    model = onnx.load(str(path))
    meta = {
        "format": "edgeinfer-encoder", "version": FORMAT_VERSION, "family": graph.layout.family,
        "dim": encoder.dim, "max_length": encoder.max_length,
        "max_positions": int(encoder.model.config.max_position_embeddings),
        "pooling": encoder.pooling, "normalize": encoder.normalize,
        "inputs": [node.name for node in model.graph.input],
        "fused_attention": graph.fused, "spatten": config_to_json(config),
    }  # fmt: skip
    for key, value in (("edgeinfer", json.dumps(meta)),
                       ("edgeinfer.tokenizer", encoder.tokenizer.backend_tokenizer.to_str())):
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.save(model, str(path))
