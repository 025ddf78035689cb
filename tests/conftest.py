"""Fixtures shared by every test folder."""

import pytest
import torch


@pytest.fixture
def one_thread():
    """Run on one torch intra-op thread, restored afterwards.

    For tests on tiny tensors: a second thread buys nothing, and on a busy 2-core host the
    OpenMP workers spin-wait against other processes and make such tests several times slower.
    """
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)
