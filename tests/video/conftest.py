"""Every video test runs on one intra-op thread (see ``one_thread`` in tests/conftest.py)."""

import pytest


@pytest.fixture(autouse=True)
def _video_tests_on_one_thread(one_thread):
    return one_thread
