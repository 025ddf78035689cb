"""The pruning math on small synthetic tensors: scores, keep counts, physical row removal."""

import torch

from edgeinfer.nlp.spatten.functional import (
    head_rows,
    keep_counts,
    prune_tokens,
    score_rows,
    select_heads,
    token_importance,
)


def _mask(lengths, width):
    return torch.arange(width)[None, :] < torch.tensor(lengths)[:, None]


def test_importance_is_probability_mass_received_from_real_queries():
    torch.manual_seed(0)
    query, key = torch.randn(2, 3, 6, 4), torch.randn(2, 3, 6, 4)
    mask = _mask([6, 4], 6)
    scores = token_importance(query, key, mask, count=6)
    assert scores.shape == (2, 6)
    assert torch.allclose(scores.sum(dim=1), torch.tensor([6.0 * 3, 4.0 * 3]))
    assert torch.all(scores[1, 4:] == 0)  # padding receives nothing
    sampled = token_importance(query, key, mask, count=3)
    assert torch.allclose(sampled.sum(dim=1), torch.tensor([3.0 * 3, 3.0 * 3]))


def test_sampled_importance_equals_the_sum_over_the_chosen_rows():
    torch.manual_seed(0)
    query, key = torch.randn(1, 2, 9, 4), torch.randn(1, 2, 9, 4)
    mask = torch.ones(1, 9, dtype=torch.bool)
    probs = torch.softmax(query @ key.transpose(-1, -2) / 2.0, dim=-1)  # (1, 2, 9, 9)
    expected = probs[:, :, [0, 4, 8]].sum(dim=(1, 2))
    torch.testing.assert_close(token_importance(query, key, mask, count=3), expected)


def test_importance_of_a_sequence_alone_equals_it_padded_in_a_batch():
    # alone (no padding) takes the unmasked fast path, in the batch the masked one
    torch.manual_seed(0)
    query, key = torch.randn(2, 3, 11, 4), torch.randn(2, 3, 11, 4)
    mask = _mask([11, 7], 11)
    batched = token_importance(query, key, mask, count=4)
    for row, length in enumerate((11, 7)):
        alone = token_importance(query[row:row + 1, :, :length], key[row:row + 1, :, :length],
                                 mask[row:row + 1, :length], count=4)
        torch.testing.assert_close(alone[0], batched[row, :length])
        assert torch.all(batched[row, length:] == 0)


def test_cached_rows_from_inference_mode_still_serve_autograd():
    torch.manual_seed(0)
    query, key = torch.randn(1, 2, 23, 4), torch.randn(1, 2, 23, 4)
    mask = torch.ones(1, 23, dtype=torch.bool)
    with torch.inference_mode():  # the first call for this (length, count) fills the cache
        expected = token_importance(query, key, mask, count=5)
    trained = query.clone().requires_grad_()
    scores = token_importance(trained, key, mask, count=5)
    scores.sum().backward()  # saving the cached index for backward must not fail
    torch.testing.assert_close(scores.detach(), expected)
    assert trained.grad is not None


def test_score_rows_are_evenly_spaced_real_rows_independent_of_the_batch():
    mask = torch.tensor([[1] * 10, [1, 1, 1] + [0] * 7, [0, 0] + [1] * 5 + [0] * 3]).bool()
    rows, weights = score_rows(mask, 4)
    assert rows.tolist() == [[0, 3, 6, 9], [0, 1, 2, 0], [2, 3, 5, 6]]
    assert weights.tolist() == [[1, 1, 1, 1], [1, 1, 1, 0], [1, 1, 1, 1]]
    alone, _ = score_rows(mask[1:2, :3], 4)
    assert alone.tolist() == [[0, 1, 2]]


def test_keep_counts_come_from_real_length_with_a_floor():
    assert keep_counts(torch.tensor([10, 3, 1]), 0.5, torch.tensor([2, 2, 1])) == [5, 2, 1]


def test_prune_tokens_physically_removes_rows_and_keeps_protected_ones():
    hidden = torch.arange(2 * 6, dtype=torch.float32).view(2, 6, 1)
    mask = _mask([6, 3], 6)
    importance = torch.tensor([[0.0, 5, 1, 4, 3, 0], [0.0, 9, 0, 7, 7, 7]])
    protect = torch.zeros(2, 6, dtype=torch.bool)
    protect[0, [0, 5]] = True
    protect[1, [0, 2]] = True
    (pruned,), new_mask = prune_tokens((hidden,), mask, importance, protect, [3, 2])
    assert pruned.shape == (2, 3, 1)
    assert pruned[0, :, 0].tolist() == [0.0, 1.0, 5.0]  # CLS, best, SEP in original order
    assert new_mask.tolist() == [[True, True, True], [True, True, False]]
    assert pruned[1, :2, 0].tolist() == [6.0, 8.0]  # protected beat the padding-scored 7s


def test_threshold_mode_keeps_more_than_the_floor_only_when_scores_pass():
    mask = _mask([5], 5)
    importance = torch.tensor([[0.0, 3.0, 2.9, 0.1, 0.0]])
    protect = torch.zeros(1, 5, dtype=torch.bool)
    hidden = torch.arange(5.0).view(1, 5, 1)
    (pruned,), _ = prune_tokens((hidden,), mask, importance, protect, [1], threshold=1.0)
    assert pruned[0, :, 0].tolist() == [1.0, 2.0]


def test_head_selection_slices_whole_heads():
    heads = select_heads(torch.tensor([0.1, 3.0, 2.0, 0.5]), torch.arange(4), 2)
    assert heads.tolist() == [1, 2]
    assert head_rows(heads, 3).tolist() == [3, 4, 5, 6, 7, 8]
