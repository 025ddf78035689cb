"""Reading a ``torch.save`` checkpoint file with errors that say what to do.

Shared by the engines' training modules (engines never import each other, so the one reader
lives at the package root, below all of them). Loads with ``weights_only=True``: a checkpoint
is tensors and plain Python values, never pickled code.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

__all__ = ["read_checkpoint_file", "state_dict_mismatch"]


def read_checkpoint_file(path: Path, kind: str, hint: str) -> Any:
    """The object stored at ``path``; ``kind`` names it in errors ("video checkpoint").

    Raises:
        FileNotFoundError: no file at ``path`` (the message ends with ``hint``).
        ValueError: the file cannot be read by ``torch.load`` (damaged, or not a checkpoint).
    """
    import torch

    if not path.is_file():
        raise FileNotFoundError(f"no {kind} at {path}; {hint}")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises many kinds for a damaged file
        raise ValueError(
            f"{path} is not a readable {kind} (corrupt or not written by save_checkpoint: "
            f"{type(error).__name__}: {error}); {hint}"
        ) from error


def state_dict_mismatch(expected: Mapping[str, Any], state: Mapping[str, Any]) -> str | None:
    """How ``state`` differs from a model's ``expected`` state dict, or ``None`` if it fits.

    Names the first five missing, unexpected and wrongly shaped keys and how many of each.
    """
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    reshaped = sorted(k for k in set(state) & set(expected) if state[k].shape != expected[k].shape)
    if not (missing or unexpected or reshaped):
        return None
    return (f"missing keys {missing[:5]}, unexpected keys {unexpected[:5]}, other shapes "
            f"{reshaped[:5]} ({len(missing)}/{len(unexpected)}/{len(reshaped)} in all)")
