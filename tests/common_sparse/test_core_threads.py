"""The core's worker pool: results in input order, no more busy threads than torch may use."""

import threading
import time

import pytest
import torch

from edgeinfer.common_sparse._threads import parallel_map, worker_count


@pytest.fixture
def two_threads():
    previous = torch.get_num_threads()
    torch.set_num_threads(2)
    yield
    torch.set_num_threads(previous)


def test_results_come_back_in_input_order(two_threads):
    assert worker_count(9) == 2
    assert parallel_map(lambda i: i * i, range(9)) == [i * i for i in range(9)]
    assert parallel_map(lambda i: i, []) == []


def test_at_most_worker_count_items_run_at_once(two_threads):
    busy, most, lock = [0], [0], threading.Lock()

    def piece(_):
        with lock:
            busy[0] += 1
            most[0] = max(most[0], busy[0])
        time.sleep(0.01)
        with lock:
            busy[0] -= 1

    parallel_map(piece, range(12))
    assert most[0] == 2


def test_an_error_in_a_piece_reaches_the_caller_after_every_piece_stopped(two_threads):
    finished = []

    def piece(i):
        if i == 0:
            raise ValueError("piece 0 failed")
        time.sleep(0.02)
        finished.append(i)

    with pytest.raises(ValueError, match="piece 0 failed"):
        parallel_map(piece, range(4))
    assert sorted(finished) == [2, 3]  # the other run finished before the error surfaced
