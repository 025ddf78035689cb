"""Int8 linears and progressive attention quantisation: exact identities and quality floors."""

import pytest
import torch
import torch.nn.functional as F  # noqa: N812

from edgeinfer.nlp import QuantConfig, SpAttenConfig
from edgeinfer.nlp.spatten import (
    Int8Linear,
    apply_linear,
    fake_quantize_rows,
    progressive_attention,
    quantize_per_row,
)
from tests.nlp.tolerances import ATTN_ATOL, MIN_INT8_LINEAR_COSINE


def _cosine(a, b):
    return float(F.cosine_similarity(a.reshape(1, -1), b.reshape(1, -1)))


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"linear_int8": 1}, TypeError, "linear_int8 must be a bool"),
        ({"attn_bits": 1}, ValueError, r"attn_bits must be in \[2, 8\]"),
        ({"attn_bits": 4.0}, TypeError, "attn_bits must be an int"),
        ({"recompute_threshold": 1.5}, ValueError, r"recompute_threshold must be in \[0, 1\]"),
    ],
)
def test_bad_quant_fields_are_rejected(kwargs, error, match):
    with pytest.raises(error, match=match):
        QuantConfig(**kwargs)


def test_spatten_config_rejects_a_non_quant_config():
    with pytest.raises(TypeError, match="quant must be a QuantConfig or None"):
        SpAttenConfig(quant={"linear_int8": True})


def test_per_row_int8_round_trip_error_is_half_a_step():
    torch.manual_seed(0)
    weight = torch.randn(64, 48)
    quantised, scale = quantize_per_row(weight)
    assert quantised.dtype == torch.int8 and int(quantised.abs().max()) == 127
    error = (quantised.double() * scale[:, None] - weight.double()).abs()
    assert bool((error <= scale[:, None] / 2 + 1e-9).all())


def test_int8_linear_is_close_to_float_and_slices_like_it():
    torch.manual_seed(0)
    linear = torch.nn.Linear(96, 64)
    x = torch.randn(2, 20, 96)
    q = Int8Linear(linear)
    assert _cosine(q(x), linear(x)) >= MIN_INT8_LINEAR_COSINE
    rows = torch.tensor([3, 4, 5, 40])
    cols = torch.tensor([0, 7, 8, 50, 95])
    sliced = apply_linear(x, q, rows=rows)
    assert torch.allclose(sliced, q(x)[..., rows], atol=1e-5)  # same per-row scales
    dense = apply_linear(x[..., cols], linear, cols=cols)
    assert _cosine(apply_linear(x[..., cols], q, cols=cols), dense) >= MIN_INT8_LINEAR_COSINE
    assert len(q._packed) == 3  # full, rows, cols: each packed once and cached


def test_fake_quantize_is_exact_on_representable_values_and_rejects_bad_bits():
    x = torch.tensor([[-7.0, 0.0, 3.0, 7.0]])
    assert torch.equal(fake_quantize_rows(x, 4), x)
    with pytest.raises(ValueError, match=r"bits must be an int in \[2, 16\]"):
        fake_quantize_rows(x, 1)


def _qkv(seed=0, lengths=(10, 7)):
    torch.manual_seed(seed)
    q, k, v = (torch.randn(2, 3, 10, 8) * 2 for _ in range(3))
    mask = torch.arange(10)[None, :] < torch.tensor(lengths)[:, None]
    return q, k, v, mask


def _reference(q, k, v, mask, bits=None):
    if bits is not None:
        q, k = fake_quantize_rows(q, bits), fake_quantize_rows(k, bits)
    logits = (q @ k.transpose(-1, -2) / q.shape[-1] ** 0.5).masked_fill(
        ~mask[:, None, None, :], float("-inf")
    )
    return torch.softmax(logits, -1) @ v


def test_threshold_one_recomputes_every_row_and_equals_full_precision():
    q, k, v, mask = _qkv()
    context, redo = progressive_attention(q, k, v, mask, bits=4, threshold=1.0)
    expected = F.scaled_dot_product_attention(q, k, v, attn_mask=mask[:, None, None, :])
    torch.testing.assert_close(context, expected, atol=ATTN_ATOL, rtol=0)
    assert int(redo.sum()) == 3 * int(mask.sum())  # every real row, no padded row


def test_threshold_zero_is_pure_low_bit():
    q, k, v, mask = _qkv()
    context, redo = progressive_attention(q, k, v, mask, bits=4, threshold=0.0)
    assert not bool(redo.any())
    torch.testing.assert_close(context, _reference(q, k, v, mask, bits=4), atol=ATTN_ATOL, rtol=0)


def test_intermediate_threshold_mixes_rows_by_their_peak():
    q, k, v, mask = _qkv(1)
    context, redo = progressive_attention(q, k, v, mask, bits=3, threshold=0.5)
    assert 0 < int(redo.sum()) < 3 * int(mask.sum())
    full, low = _reference(q, k, v, mask), _reference(q, k, v, mask, bits=3)
    real = mask[:, None, :].expand(redo.shape)
    torch.testing.assert_close(context[redo], full[redo], atol=ATTN_ATOL, rtol=0)
    torch.testing.assert_close(context[real & ~redo], low[real & ~redo], atol=ATTN_ATOL, rtol=0)
    more_bits, _ = progressive_attention(q, k, v, mask, bits=8, threshold=0.0)
    assert (more_bits - full)[real].abs().max() < (low - full)[real].abs().max()


def test_int8_linear_row_results_do_not_depend_on_the_other_rows():
    torch.manual_seed(1)
    q = Int8Linear(torch.nn.Linear(64, 48))
    x = torch.randn(9, 64)
    x[3] *= 1000.0  # a row of another magnitude would set a per-tensor scale for all
    x[5] = 0.0  # a padding-like zero row
    batched = q(x)
    for row in range(len(x)):
        assert torch.equal(batched[row : row + 1], q(x[row : row + 1])), row
    assert torch.equal(batched[5], q.bias)  # a zero row gives exactly the bias


def test_int8_linear_uses_no_deprecated_quantized_tensors():
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # torch's quantized-tensor deprecation would raise
        q = Int8Linear(torch.nn.Linear(32, 16))
        q(torch.randn(4, 32))
        apply_linear(torch.randn(4, 3), q, cols=torch.tensor([0, 5, 9]))


def test_int8_linear_rejects_inputs_of_the_wrong_width():
    q = Int8Linear(torch.nn.Linear(32, 16))
    with pytest.raises(ValueError, match=r"x must have 32 input features.*\(4, 31\)"):
        q(torch.randn(4, 31))
