"""One "unknown name — did you mean" message for every registry, CLI choice and model name.

Lives at the package root, below the engines, so each of them (and the CLI) words the miss the
same way: what was asked for, the close matches, and everything that would have worked.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable

__all__ = ["close_matches", "unknown_name"]


def close_matches(name: object, choices: Iterable[str], *, cutoff: float = 0.5) -> list[str]:
    """Up to three of ``choices`` that look like ``name`` (case-insensitive), best first."""
    options = list(choices)
    lowered = {option.lower(): option for option in options}
    found = difflib.get_close_matches(str(name).lower(), list(lowered), n=3, cutoff=cutoff)
    return [lowered[match] for match in found]


def unknown_name(what: str, name: object, choices: Iterable[str], *, cutoff: float = 0.5,
                 fix: str = "") -> str:
    """The message for an unknown ``name`` among ``choices``; ``what`` names the kind
    ("point-cloud model"), ``fix`` (optional) is appended as the last sentence.

    ``unknown point-cloud model 'minkunett'; did you mean 'minkunet'? available: minkunet, spvcnn``
    """
    options = sorted(choices)
    matches = close_matches(name, options, cutoff=cutoff)
    hint = f"did you mean {' or '.join(repr(m) for m in matches)}? " if matches else ""
    listed = ", ".join(options) if options else "none"
    return f"unknown {what} {name!r}; {hint}available: {listed}" + (f"; {fix}" if fix else "")
