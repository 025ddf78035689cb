"""Every hostile case, by id (``entry::name``), gathered from the per-entry-point modules."""

from __future__ import annotations

import functools

from tests.robustness import cases_cli, cases_nlp, cases_pointcloud, cases_readers, cases_video
from tests.robustness.hostile import Case

MODULES = (cases_readers, cases_pointcloud, cases_video, cases_nlp, cases_cli)


@functools.cache
def all_cases() -> dict[str, Case]:
    found: dict[str, Case] = {}
    for module in MODULES:
        for case in module.cases():
            assert case.id not in found, f"two cases named {case.id}"
            found[case.id] = case
    return found
