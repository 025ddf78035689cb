"""Run the video tests on one intra-op thread, restored afterwards.

The tensors here are tiny (32-64 px, widths 0.25): a second thread buys nothing, and on a busy
2-core host the OpenMP workers spin-wait against other processes, making the folder ~5x slower.
"""

import pytest
import torch


@pytest.fixture(autouse=True)
def _one_thread():
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)
