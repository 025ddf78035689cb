"""Interleaved timing: same input to both sides, alternating order, honest statistics."""

import numpy as np
import pytest

from edgeinfer.bench import summarize, time_pair


def test_summarize_matches_numpy_percentiles():
    samples = [5.0, 1.0, 9.0, 3.0, 7.0, 2.0, 8.0]
    stats = summarize(samples)
    assert stats.median == 5.0
    assert stats.p10 == pytest.approx(np.percentile(samples, 10))
    assert stats.p90 == pytest.approx(np.percentile(samples, 90))
    assert stats.n == 7


def test_summarize_rejects_no_samples():
    with pytest.raises(ValueError, match="at least one sample"):
        summarize([])


def test_time_pair_interleaves_and_passes_the_same_input():
    calls, seen = [], []
    state = object()

    def side(label):
        def run(inputs):
            calls.append(label)
            seen.append(inputs)
        return run

    timing = time_pair(side("b"), side("c"), state, warmup=1, repeats=4, min_repeats=4)
    assert calls == ["b", "c", "b", "c", "c", "b", "b", "c", "c", "b"]
    assert all(item is state for item in seen)
    assert timing.baseline_wall.n == timing.candidate_wall.n == 4


def test_time_pair_stops_at_the_budget_after_min_repeats():
    timing = time_pair(lambda _: None, lambda _: None, None, warmup=0, repeats=1000,
                       min_repeats=3, budget_s=0.0)
    assert timing.baseline_wall.n == 3


@pytest.mark.parametrize(("kwargs", "match"), [({"repeats": 0}, "repeats"),
                                                ({"warmup": -1}, "warmup")])
def test_time_pair_validates_counts(kwargs, match):
    with pytest.raises(ValueError, match=match):
        time_pair(lambda _: None, lambda _: None, None, **kwargs)


def test_time_interleaved_calls_every_side_once_per_repeat_in_order():
    from edgeinfer.bench import time_interleaved

    calls = []
    sides = {name: (lambda name=name: calls.append(name)) for name in ("a", "b", "c")}
    stats = time_interleaved(sides, warmup=1, repeats=3)
    assert calls == ["a", "b", "c"] * 4
    assert {name: s.n for name, s in stats.items()} == {"a": 3, "b": 3, "c": 3}
    with pytest.raises(ValueError, match="repeats >= 1"):
        time_interleaved(sides, repeats=0)
    with pytest.raises(ValueError, match="needs sides"):
        time_interleaved({})
