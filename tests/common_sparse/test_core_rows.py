"""Row selection against python references; exact identities for keep-all."""

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from edgeinfer.common_sparse import scatter_rows, select_rows, threshold_rows, topk_rows

scores_lists = st.lists(st.sampled_from([0.0, 0.5, 1.0, 2.0, -1.0]), min_size=0, max_size=30)


@settings(max_examples=60, deadline=None)
@given(scores_lists, st.data())
def test_topk_keeps_highest_scores_with_lowest_index_on_ties(values, data):
    k = data.draw(st.integers(0, len(values)))
    kept = topk_rows(torch.tensor(values, dtype=torch.float32), k)
    by_rank = sorted(range(len(values)), key=lambda i: (-values[i], i))[:k]
    assert kept.tolist() == sorted(by_rank)
    assert kept.dtype == torch.int64


@settings(max_examples=40, deadline=None)
@given(scores_lists, st.sampled_from([-2.0, 0.0, 0.5, 3.0]))
def test_threshold_keeps_scores_at_or_above(values, threshold):
    kept = threshold_rows(torch.tensor(values, dtype=torch.float32), threshold)
    assert kept.tolist() == [i for i, v in enumerate(values) if v >= threshold]


def test_keep_all_is_identity_and_scatter_round_trips():
    x = torch.randn(7, 3, 2)
    scores = torch.randn(7)
    every = topk_rows(scores, 7)
    assert torch.equal(select_rows(x, every), x)
    assert torch.equal(threshold_rows(scores, float("-inf")), torch.arange(7))
    kept = topk_rows(scores, 3)
    assert torch.equal(scatter_rows(torch.zeros_like(x), kept, select_rows(x, kept))[kept], x[kept])
    assert torch.equal(scatter_rows(x, kept, select_rows(x, kept)), x)


def test_scatter_rows_leaves_other_rows_and_base_untouched():
    base = torch.zeros(5, 2)
    out = scatter_rows(base, torch.tensor([3, 0]), torch.tensor([[1.0, 1.0], [2.0, 2.0]]))
    assert out.tolist() == [[2, 2], [0, 0], [0, 0], [1, 1], [0, 0]]
    assert torch.equal(base, torch.zeros(5, 2))


def test_empty_selection():
    x = torch.randn(4, 3)
    none = topk_rows(torch.randn(4), 0)
    assert select_rows(x, none).shape == (0, 3)
    assert torch.equal(scatter_rows(x, none, x[:0]), x)


def test_invalid_inputs_raise_with_the_fix():
    x = torch.randn(4, 3)
    with pytest.raises(ValueError, match=r"row numbers in \[0, 4\); got values in \[0, 4\]"):
        select_rows(x, torch.tensor([0, 4]))
    with pytest.raises(TypeError, match="1-D int64"):
        select_rows(x, torch.tensor([0, 1], dtype=torch.int32))
    with pytest.raises(ValueError, match=r"k must be in \[0, 4\]"):
        topk_rows(torch.randn(4), 5)
    with pytest.raises(ValueError, match="NaN"):
        topk_rows(torch.tensor([0.0, float("nan")]), 1)
    with pytest.raises(TypeError, match=r"1-D floating"):
        threshold_rows(torch.ones(2, 2), 0.5)
    with pytest.raises(ValueError, match="must not repeat a row"):
        scatter_rows(x, torch.tensor([1, 1]), torch.randn(2, 3))
    with pytest.raises(ValueError, match=r"rows must have shape \(len\(index\)"):
        scatter_rows(x, torch.tensor([1]), torch.randn(2, 3))
    with pytest.raises(TypeError, match="dtype"):
        scatter_rows(x, torch.tensor([1]), torch.randn(1, 3, dtype=torch.float64))
