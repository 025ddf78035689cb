"""The device profile sets threads for the run and restores every setting after."""

import os

import pytest
import torch

from edgeinfer.bench import DeviceProfile, available_cores, device_profile, parse_threads
from edgeinfer.bench.profile import THREAD_ENV_VARS


@pytest.fixture
def known_thread_state(monkeypatch):
    saved = torch.get_num_threads()
    torch.set_num_threads(2)
    monkeypatch.setenv("OMP_NUM_THREADS", "7")
    monkeypatch.delenv("MKL_NUM_THREADS", raising=False)
    monkeypatch.delenv("OPENBLAS_NUM_THREADS", raising=False)
    yield
    torch.set_num_threads(saved)


def _state():
    return torch.get_num_threads(), {name: os.environ.get(name) for name in THREAD_ENV_VARS}


@pytest.mark.usefixtures("known_thread_state")
def test_profile_sets_threads_inside_and_restores_after():
    before = _state()
    with device_profile(DeviceProfile(threads=1)):
        assert torch.get_num_threads() == 1
        assert all(os.environ[name] == "1" for name in THREAD_ENV_VARS)
    assert _state() == before
    assert before[1] == {"OMP_NUM_THREADS": "7", "MKL_NUM_THREADS": None,
                         "OPENBLAS_NUM_THREADS": None}


@pytest.mark.usefixtures("known_thread_state")
def test_profile_restores_after_an_error():
    before = _state()
    with pytest.raises(RuntimeError, match="boom"), device_profile(DeviceProfile(threads=1)):
        raise RuntimeError("boom")
    assert _state() == before


def test_profile_limits_numpy_blas_pool_and_restores_it():
    from threadpoolctl import threadpool_info

    def blas_limits():
        return [pool["num_threads"] for pool in threadpool_info() if pool["user_api"] == "blas"]

    before = blas_limits()
    with device_profile(DeviceProfile(threads=1)):
        assert all(limit == 1 for limit in blas_limits())
    assert blas_limits() == before


@pytest.mark.parametrize(
    ("spec", "expected"),
    [("1", (1,)), ("1,2", (1, 2)), (" 2 , 1 ", (2, 1)), ("1,1", (1,)),
     ("all", (available_cores(),))],
)
def test_parse_threads_accepts_lists_and_all(spec, expected):
    assert parse_threads(spec) == expected


@pytest.mark.parametrize("spec", ["", "0", "-1", "1,x", "1.5", "1,,2", "two"])
def test_parse_threads_rejects_bad_lists(spec):
    with pytest.raises(ValueError, match="comma-separated list of positive integers"):
        parse_threads(spec)


@pytest.mark.parametrize(("threads", "error"), [(0, ValueError), (True, TypeError),
                                                 ("1", TypeError)])
def test_device_profile_validates_threads(threads, error):
    with pytest.raises(error, match="threads"):
        DeviceProfile(threads=threads)
