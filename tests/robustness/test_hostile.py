"""Every hostile case of the catalogue gets a clear error or the right answer.

Crash-class cases (native readers and runtimes) run in a child process with a timeout and a
memory cap (``hostile.classify_in_child``); the outcome classes are defined in ``hostile``.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.robustness.catalogue import all_cases
from tests.robustness.hostile import GOOD, classify, classify_in_child

SURVEY = Path(__file__).with_name("survey.py")


def _params():
    for case in all_cases().values():
        marks = [pytest.mark.slow] if case.slow else []
        yield pytest.param(case, id=case.id, marks=marks)


@pytest.mark.parametrize("case", _params())
def test_hostile_input_gets_a_clear_answer(case, tmp_path, one_thread):
    if case.child:
        outcome, detail = classify_in_child(case, tmp_path, SURVEY)
    else:
        outcome, detail = classify(case, tmp_path)
    assert outcome in GOOD, f"{case.id}: {outcome}: {detail}"
