"""Run every hostile case and print, per entry point, how many got each outcome.

    python tests/robustness/survey.py [--json FILE] [--only ENTRY,...]

Crash-class cases run in a child process (``--case ID --tmp DIR`` is that child's entry).
The table is the one issue 16 asks for: hostile inputs tried per entry point, and how many
were answered with a clear error (or the right result), an unclear error, silently, or by a
crash or hang.
"""

from __future__ import annotations

import argparse
import collections
import json
import sys
import tempfile
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tests.robustness.catalogue import all_cases
from tests.robustness.hostile import (
    OUTCOMES,
    child_main,
    classify,
    classify_in_child,
)


def main(argv: list[str]) -> int:
    if "--case" in argv:
        warnings.simplefilter("ignore")
        return child_main(all_cases(), argv)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", type=Path, help="write every case's outcome here")
    parser.add_argument("--only", help="comma list of entry points")
    parser.add_argument("--skip-slow", action="store_true", help="leave out slow cases")
    args = parser.parse_args(argv)
    wanted = None if args.only is None else set(args.only.split(","))
    rows, counts = [], collections.defaultdict(collections.Counter)
    for case in all_cases().values():
        if (wanted and case.entry not in wanted) or (args.skip_slow and case.slow):
            continue
        with tempfile.TemporaryDirectory() as folder, warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if case.child:
                outcome, detail = classify_in_child(case, Path(folder), Path(__file__))
            else:
                outcome, detail = classify(case, Path(folder))
        counts[case.entry][outcome] += 1
        rows.append({"id": case.id, "outcome": outcome, "detail": detail})
        print(f"{outcome:8s} {case.id}: {detail[:160]}", file=sys.stderr, flush=True)
    print("| entry point | tried | " + " | ".join(OUTCOMES) + " |")
    print("|---" * (len(OUTCOMES) + 2) + "|")
    total = collections.Counter()
    for entry, counter in counts.items():
        total.update(counter)
        print(f"| {entry} | {sum(counter.values())} | "
              + " | ".join(str(counter[o]) for o in OUTCOMES) + " |")
    print(f"| all | {sum(total.values())} | " + " | ".join(str(total[o]) for o in OUTCOMES)
          + " |")
    if args.json is not None:
        args.json.write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
