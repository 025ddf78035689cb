"""The hostile-input harness: a case, how its outcome is classified, and the child process.

Outcome classes (the contract of issue 16):

- ``clear``: an error of an expected type whose message matches the case's pattern (it names
  the argument or file, and says what was expected);
- ``right``: the call returned and the result is right (checked against a reference, or an
  undisturbed run for stateful objects);
- ``unclear``: an error, but of another type (deep inside torch, say) or a message that does
  not name what was wrong;
- ``silent``: the call returned when it should have refused, or returned wrong data;
- ``crash``: the process died (signal, abort), hung past the timeout, or ran out of memory.

Cases that can take the interpreter down run in a child process with a timeout and a memory
cap; the rest run in the test process.
"""

from __future__ import annotations

import json
import re
import resource
import subprocess
import sys
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

OUTCOMES = ("clear", "right", "unclear", "silent", "crash")
GOOD = ("clear", "right")
CHILD_TIMEOUT_S = 180
CHILD_MEMORY_BYTES = 12 * 2**30
BAD_INPUT_ERRORS = (ValueError, TypeError, FileNotFoundError, ImportError)


class Silent(Exception):  # noqa: N818 - an outcome, raised by a case to say what it saw
    """Raised inside a case: the code accepted bad input or returned wrong data."""


class Unclear(Exception):  # noqa: N818
    """Raised inside a case: an error came, but not a clear one."""


@dataclass(frozen=True)
class Case:
    """One hostile input for one entry point.

    ``run(tmp)`` performs the call (``tmp`` is an empty folder of its own). When ``match`` is
    set the call must raise one of ``errors`` with a message matching it; when ``match`` is
    None the call must return, and ``check(result)`` (if given) must hold. A case may also
    raise :class:`Silent` / :class:`Unclear` itself (stateful checks).
    """

    entry: str
    name: str
    run: Callable[[Path], object]
    match: str | None = None
    errors: tuple[type[BaseException], ...] = BAD_INPUT_ERRORS
    check: Callable[[object], bool] | None = None
    child: bool = False
    slow: bool = False

    @property
    def id(self) -> str:
        return f"{self.entry}::{self.name}"


def classify(case: Case, tmp: Path) -> tuple[str, str]:
    """Run ``case`` in this process: ``(outcome, detail)``."""
    try:
        result = case.run(tmp)
    except Silent as exc:
        return "silent", str(exc)
    except Unclear as exc:
        return "unclear", str(exc)
    except Exception as exc:  # every error is classified, none escapes
        detail = f"{type(exc).__name__}: {exc}"
        if case.match is None:
            return "unclear", f"expected a result, got {detail}"
        if not isinstance(exc, case.errors):
            return "unclear", detail
        if not re.search(case.match, str(exc), flags=re.DOTALL):
            return "unclear", f"message does not match {case.match!r}: {detail}"
        return "clear", detail
    if case.match is not None:
        return "silent", f"returned {type(result).__name__} instead of raising"
    if case.check is not None and not case.check(result):
        return "silent", f"returned a wrong result: {_short(result)}"
    return "right", "returned the right result"


def _short(value: object) -> str:
    text = repr(value)
    return text if len(text) < 200 else text[:200] + "..."


def expect_clear(call: Callable[[], object], match: str) -> str:
    """Call ``call`` inside a stateful case: it must raise a bad-input error matching
    ``match``; returns the message, raises :class:`Silent` / :class:`Unclear` otherwise."""
    try:
        call()
    except BAD_INPUT_ERRORS as exc:
        if not re.search(match, str(exc), flags=re.DOTALL):
            raise Unclear(f"message does not match {match!r}: {exc}") from exc
        return str(exc)
    except Exception as exc:
        raise Unclear(f"{type(exc).__name__}: {exc}") from exc
    raise Silent("the bad call was accepted")


def classify_in_child(case: Case, tmp: Path, script: Path) -> tuple[str, str]:
    """Run ``case`` in a fresh interpreter (``script --case ID``) with a timeout and a memory
    cap; a signal, a timeout or a non-JSON death is a crash."""

    def cap_memory() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (CHILD_MEMORY_BYTES, CHILD_MEMORY_BYTES))

    command = [sys.executable, str(script), "--case", case.id, "--tmp", str(tmp)]
    try:
        done = subprocess.run(command, capture_output=True, text=True, errors="replace",
                              timeout=CHILD_TIMEOUT_S, preexec_fn=cap_memory, check=False)
    except subprocess.TimeoutExpired:
        return "crash", f"hung: no answer within {CHILD_TIMEOUT_S} s"
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode == 0 and lines:
        answer = json.loads(lines[-1])
        return answer["outcome"], answer["detail"]
    tail = (done.stderr.strip().splitlines() or ["(no output)"])[-1]
    how = f"signal {-done.returncode}" if done.returncode < 0 else f"exit {done.returncode}"
    if "MemoryError" in done.stderr:
        how = "out of memory"
    return "crash", f"{how}: {tail[:300]}"


def child_main(cases: dict[str, Case], argv: list[str]) -> int:
    """The child's side: classify one case, print the outcome as one JSON line."""
    case, tmp = cases[argv[argv.index("--case") + 1]], Path(argv[argv.index("--tmp") + 1])
    try:
        outcome, detail = classify(case, tmp)
    except BaseException:  # classify catches Exception; this is MemoryError and friends
        outcome, detail = "crash", traceback.format_exc().splitlines()[-1]
    print(json.dumps({"outcome": outcome, "detail": detail}))
    return 0


# -- hostile bytes ------------------------------------------------------------------------------

def random_bytes(seed: int, size: int) -> bytes:
    import numpy as np

    return np.random.default_rng(seed).bytes(size)


def overwritten(data: bytes, seed: int, count: int, start: int = 0, stop: int | None = None
                ) -> bytes:
    """``data`` with ``count`` bytes in ``[start, stop)`` replaced by random ones."""
    import numpy as np

    rng = np.random.default_rng(seed)
    out = bytearray(data)
    for position in rng.integers(start, len(data) if stop is None else stop, count):
        out[position] = int(rng.integers(0, 256))
    return bytes(out)


def write(tmp: Path, name: str, data: bytes) -> Path:
    path = tmp / name
    path.write_bytes(data)
    return path
