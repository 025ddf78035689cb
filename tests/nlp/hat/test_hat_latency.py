"""Latency dataset collection on the tiny supernet: CSV contents, resuming, corrupt files."""

import csv

import numpy as np
import pytest
import torch

from edgeinfer.nlp.hat import (
    MEASURES,
    LatencyProfile,
    Measurement,
    SubConfig,
    collect_latency,
    measure_latency,
    measure_pair,
    read_latency_csv,
)
from edgeinfer.nlp.hat.latency import COLUMNS

PROFILE = LatencyProfile.current(threads=1, seq_len=8, batch=1)
HEADER = ",".join(COLUMNS) + "\n"


def _collect(supernet, path, count, seen=None, **kwargs):
    def note(index, config, measured):
        if seen is not None:
            seen.append(index)

    options = {"profile": PROFILE, "warmup": 0, "repeats": 2, "progress": False}
    return collect_latency(supernet, path, count=count, on_row=note, **(options | kwargs))


def test_collects_largest_smallest_then_samples(tiny_supernet, tmp_path):
    path = tmp_path / "lat.csv"
    data = _collect(tiny_supernet, path, 5)
    assert len(data) == 5 and data.profile == PROFILE
    assert data.configs[0] == tiny_supernet.space.largest()
    assert data.configs[1] == tiny_supernet.space.smallest()
    assert all(tiny_supernet.space.check(c) for c in data.configs)
    for name in MEASURES:
        assert data.values(name).shape == (5,) and (data.values(name) > 0).all()
    assert (data.columns["cpu_min_ms"] <= data.columns["cpu_ms"]).all()
    np.testing.assert_allclose(data.values("ref_cpu_ms"),
                               data.columns["ref_cpu_ratio"] * data.reference_ms)  # fmt: skip
    with path.open() as handle:
        rows = list(csv.DictReader(handle))
    assert list(rows[0]) == list(COLUMNS) and rows[0]["threads"] == "1"
    assert rows[0]["seq_len"] == "8" and rows[0]["cpu"] == PROFILE.cpu


def test_a_second_run_resumes_where_the_first_stopped(tiny_supernet, tmp_path):
    path = tmp_path / "lat.csv"
    first = _collect(tiny_supernet, path, 4)
    seen = []
    second = _collect(tiny_supernet, path, 7, seen)
    assert seen == [4, 5, 6]
    assert second.configs[:4] == first.configs
    for name, column in first.columns.items():
        np.testing.assert_array_equal(second.columns[name][:4], column)
    assert second.configs == _collect(tiny_supernet, tmp_path / "fresh.csv", 7).configs


def test_resuming_under_another_profile_or_seed_is_refused(tiny_supernet, tmp_path):
    path = tmp_path / "lat.csv"
    _collect(tiny_supernet, path, 3)
    other = LatencyProfile.current(threads=2, seq_len=8, batch=1)
    with pytest.raises(ValueError, match=r"measured under \[1 thread, seq 8.*this run is \[2 thr"):
        _collect(tiny_supernet, path, 4, profile=other)
    with pytest.raises(ValueError, match="not the first samples of this run's plan"):
        _collect(tiny_supernet, path, 5, seed=1)


@pytest.mark.parametrize(
    ("content", "match"),
    [
        ("embed_dim,layers\n1,2\n", r"columns \['ffn_dims', 'heads'.* are missing"),
        (",".join(COLUMNS) + "\n", "has a header but no rows"),
        (HEADER + "64,2,96 96,4,1.0,1,1,1,1,1,1,10,1,8,1,cpu,t\n",
         r"line 2: not a valid latency row .*one FFN width and one head count"),
        (HEADER + "64,1,96,4,fast,1,1,1,1,1,1,10,1,8,1,cpu,t\n",
         r"line 2: not a valid latency row \(could not convert"),
        (HEADER + "64,1,96,4,-3,1,1,1,1,1,1,10,1,8,1,cpu,t\n", r"latency_ms=-3, .*\(need > 0\)"),
        (HEADER + "64,1,96,4,1,1,1,1,1,1,10,1,8,1,cpu,t\n64,1,96,4,1,1,1,1,1,1,10,2,8,1,cpu,t\n",
         "mixes rows from 2 profiles"),
        ("\x00\x01garbage", "columns .* are missing"),
    ],
)
def test_corrupt_csv_is_reported_clearly(tmp_path, content, match):
    path = tmp_path / "bad.csv"
    path.write_text(content)
    with pytest.raises(ValueError, match=match):
        read_latency_csv(path)


def test_missing_csv_and_bad_count(tiny_supernet, tmp_path):
    with pytest.raises(FileNotFoundError, match="no latency CSV at"):
        read_latency_csv(tmp_path / "none.csv")
    with pytest.raises(ValueError, match="count must be an int >= 2"):
        _collect(tiny_supernet, tmp_path / "x.csv", 1)


def test_a_truncated_file_stops_the_resume_with_the_line(tiny_supernet, tmp_path):
    path = tmp_path / "lat.csv"
    _collect(tiny_supernet, path, 3)
    text = path.read_text()
    for cut in (25, 3, 1):  # a run killed in the middle of a row, wherever the cut lands
        path.write_text(text[: len(text) - cut])
        with pytest.raises(ValueError, match=r"line 4: not a valid latency row \(cut short: no"):
            _collect(tiny_supernet, path, 5)


def test_measure_latency_times_every_repeat(tiny_supernet):
    model = tiny_supernet.export_subnet(SubConfig(16, (16,), (1,)))
    calls = []
    inputs = {"input_ids": np.zeros(0)}

    def fake(**kwargs):
        calls.append(kwargs)

    wall, cpu = measure_latency(fake, inputs, warmup=2, repeats=5)
    assert len(calls) == 7 and wall.n == 5 and cpu.n == 5 and wall.median >= 0
    with pytest.raises(ValueError, match="need repeats >= 1"):
        measure_latency(model, inputs, repeats=0)


def test_measurement_values_and_interleaved_pair(tiny_supernet):
    measured = Measurement(latency_ms=4.0, cpu_ms=3.0, cpu_min_ms=2.5, ref_wall_ratio=2.0,
                           ref_cpu_ratio=1.5, ref_cpu_ms=2.0)  # fmt: skip
    assert measured.value("latency_ms") == 4.0 and measured.value("cpu_min_ms") == 2.5
    assert measured.value("ref_cpu_ms") == 3.0 and measured.value("ref_cpu_ms", 4.0) == 6.0
    with pytest.raises(ValueError, match="measure must be one of"):
        measured.value("wall")
    inputs = {"input_ids": torch.ones(1, 8, dtype=torch.int64) * 7,
              "attention_mask": torch.ones(1, 8, dtype=torch.int64)}  # fmt: skip
    model = tiny_supernet.export_subnet(SubConfig(16, (16,), (1,)))
    pair = measure_pair(model, model, inputs, warmup=0, repeats=3)
    assert pair.latency_ms > 0 and pair.ref_cpu_ms > 0 and pair.ref_cpu_ratio > 0
