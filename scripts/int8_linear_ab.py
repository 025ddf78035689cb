"""Before/after of the int8 linears: the deprecated fbgemm path against the per-row ``_int_mm``.

The old ``Int8Linear`` packed torch quantized tensors (``quantized.linear_dynamic``, deprecated
in this torch) and quantised each call's activations per tensor, 7-bit: a text's embedding then
depended on the other texts of its batch. The new one quantises every activation row on its
own (8-bit) and multiplies with ``torch._int_mm``. In one process this script times both on
MiniLM's linear shapes (interleaved, order alternating, medians, under the harness's
``steady_allocator`` like every benchmark) with their cosine to fp32,
then encodes the Lee test documents with ``SpAttenConfig()`` through each and reports the
lowest per-document cosine between ``batch_size=8`` and ``batch_size=1`` and the mean cosine to
the unpruned fp32 model.

    .venv/bin/python scripts/int8_linear_ab.py --threads 1

Takes about two minutes on the 2-core development host.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import statistics
import time
import warnings

import numpy as np
import torch
import torch.nn.functional as F  # noqa: N812

from edgeinfer.bench import time_pair
from edgeinfer.bench.allocator import steady_allocator
from edgeinfer.nlp.spatten import quant

SHAPES = ((384, 384), (384, 1536), (1536, 384))  # MiniLM: attention, FFN in, FFN out
ROWS = (128, 512, 1024)


def _old_pack(linear: torch.nn.Linear):
    # the previous implementation, kept here only as the baseline
    weight, scale = quant.quantize_per_row(linear.weight)
    zero = torch.zeros(scale.numel(), dtype=torch.int64)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        qweight = torch._make_per_channel_quantized_tensor(weight, scale, zero, 0)
    return torch.ops.quantized.linear_prepack(qweight, linear.bias.detach())


def _old_forward(self, x, rows=None, cols=None):
    packed = self.__dict__.setdefault("_old_packed", {}).get((rows is None, cols is None))
    if packed is None:  # unsliced use only (the script's encoders prune no heads)
        assert rows is None and cols is None
        packed = self._old_packed[(True, True)] = _old_pack(self._source)
    flat = x.reshape(-1, x.shape[-1]).float().contiguous()
    out = torch.ops.quantized.linear_dynamic(flat, packed, True)
    return out.view(*x.shape[:-1], out.shape[-1])


@contextlib.contextmanager
def _old_linears():
    new_init, new_forward = quant.Int8Linear.__init__, quant.Int8Linear.forward

    def init(self, linear):
        new_init(self, linear)
        self._source = linear

    quant.Int8Linear.__init__, quant.Int8Linear.forward = init, _old_forward
    try:
        yield
    finally:
        quant.Int8Linear.__init__, quant.Int8Linear.forward = new_init, new_forward


def _cosine(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(F.cosine_similarity(a.flatten().double(), b.flatten().double(), dim=0))


def linear_rows() -> None:
    print("| in -> out | rows | old ms | new ms | new speed-up | old cosine | new cosine |")
    print("|---|---|---|---|---|---|---|")
    torch.manual_seed(0)
    for fan_in, fan_out in SHAPES:
        linear = torch.nn.Linear(fan_in, fan_out).requires_grad_(False)
        new = quant.Int8Linear(linear)
        with _old_linears():
            old = quant.Int8Linear(linear)
        for rows in ROWS:
            x = torch.randn(rows, fan_in)
            reference = linear(x)
            with steady_allocator():  # as the benchmarks time: warm-process page faults
                timing = time_pair(functools.partial(_old_forward, old), new, x, warmup=3,
                                   repeats=40)
            print(f"| {fan_in} -> {fan_out} | {rows} | {timing.baseline_wall.median:.3f} | "
                  f"{timing.candidate_wall.median:.3f} | {timing.speedup:.2f}x | "
                  f"{_cosine(_old_forward(old, x), reference):.6f} | "
                  f"{_cosine(new(x), reference):.6f} |")


def encoder_rows() -> None:
    from edgeinfer.datasets import read_lee_corpus
    from edgeinfer.nlp import SpAttenConfig, load_encoder

    texts = read_lee_corpus()[:50]
    full = load_encoder("all-MiniLM-L6-v2", max_length=256).encode(texts, batch_size=8)
    print("\n| Int8Linear | min cosine batch 8 vs 1 | mean cosine to fp32 unpruned | "
          "encode 50 docs, batch 8 (median of 5, ms; old then new, not interleaved) |")
    print("|---|---|---|---|")
    for label, patch in (("old (fbgemm, per tensor)", _old_linears), ("new (per row)",
                                                                       contextlib.nullcontext)):
        with patch():
            encoder = load_encoder("all-MiniLM-L6-v2", spatten=SpAttenConfig(), max_length=256)
            batched = encoder.encode(texts, batch_size=8)
            alone = encoder.encode(texts, batch_size=1)
            with steady_allocator():
                seconds = []
                for _ in range(5):
                    start = time.perf_counter()
                    encoder.encode(texts, batch_size=8)
                    seconds.append(time.perf_counter() - start)
        print(f"| {label} | {np.sum(batched * alone, axis=1).min():.4f} | "
              f"{np.sum(batched * full, axis=1).mean():.4f} | "
              f"{1e3 * statistics.median(seconds):.0f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    args = parser.parse_args()
    if args.threads < 1:
        parser.error(f"--threads must be >= 1; got {args.threads}")
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {args.threads} thread(s)\n")
    with torch.inference_mode(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        linear_rows()
        encoder_rows()


if __name__ == "__main__":
    main()
