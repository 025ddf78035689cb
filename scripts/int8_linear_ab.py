"""Before/after of the int8 linears: the deprecated fbgemm path against the per-row ``_int_mm``.

The old ``Int8Linear`` packed torch quantized tensors (``quantized.linear_dynamic``, deprecated
in this torch, a warning on every run) and quantised each call's activations per tensor with
7 bits: a text's embedding then depended on the other texts of its batch. The new one
quantises every activation row on its own (8 bits) and multiplies with ``torch._int_mm``.

In one process this script times both (the old forward is kept here, privately, as the
baseline) on MiniLM's linear shapes, interleaved with alternating order, medians over repeats
under the harness's ``steady_allocator``, with each side's cosine and relative error to fp32;
then it encodes the Lee test documents with ``SpAttenConfig()`` through each and reports the
lowest per-document cosine between ``batch_size=8`` and ``batch_size=1``, the mean cosine to
the unpruned fp32 model, and the encode time (interleaved too).

    taskset -c 1 .venv/bin/python scripts/int8_linear_ab.py --threads 1

Takes about two minutes on the 2-core development host (``--quick``: well under one).
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import warnings

import numpy as np
import torch
import torch.nn.functional as F  # noqa: N812

from edgeinfer.bench import time_pair
from edgeinfer.bench.allocator import steady_allocator
from edgeinfer.bench.environment import cpu_model, git_commit
from edgeinfer.nlp.spatten import quant

SHAPES = ((384, 384), (384, 1152), (384, 1536), (1536, 384))  # out, fused QKV, FFN in / out
ROWS = (128, 512, 1024)  # tokens of one text, a batch of short texts, 8 x 128


def _old_pack(linear: torch.nn.Linear):
    # the previous implementation, kept here only as the baseline
    weight, scale = quant.quantize_per_row(linear.weight)
    zero = torch.zeros(scale.numel(), dtype=torch.int64)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch deprecates quantized tensors
        qweight = torch._make_per_channel_quantized_tensor(weight, scale, zero, 0)
    bias = None if linear.bias is None else linear.bias.detach().float()
    return torch.ops.quantized.linear_prepack(qweight, bias)


def _old_forward(self, x, rows=None, cols=None):
    # the old Int8Linear.forward: per-tensor 7-bit activations (reduce_range), fbgemm GEMM
    if rows is not None or cols is not None:
        raise NotImplementedError("the baseline runs unsliced linears only (no head pruning)")
    packed = self.__dict__.get("_old_packed")
    if packed is None:
        packed = self._old_packed = _old_pack(self._source)
    flat = x.reshape(-1, x.shape[-1]).float().contiguous()
    out = torch.ops.quantized.linear_dynamic(flat, packed, True)
    return out.view(*x.shape[:-1], out.shape[-1])


@contextlib.contextmanager
def _old_linears():
    """Within the block, ``Int8Linear`` built or called runs the old forward."""
    new_init, new_forward = quant.Int8Linear.__init__, quant.Int8Linear.forward

    def init(self, linear):
        new_init(self, linear)
        self._source = linear

    quant.Int8Linear.__init__, quant.Int8Linear.forward = init, _old_forward
    try:
        yield
    finally:
        quant.Int8Linear.__init__, quant.Int8Linear.forward = new_init, new_forward


def _ms(stats) -> str:
    return f"{stats.median:.3f} ({stats.p10:.3f}-{stats.p90:.3f})"


def _quality(out: torch.Tensor, reference: torch.Tensor) -> str:
    out, reference = out.flatten().double(), reference.flatten().double()
    cosine = float(F.cosine_similarity(out, reference, dim=0))
    return f"{cosine:.6f} / {float((out - reference).norm() / reference.norm()):.2e}"


def linear_rows(repeats: int) -> None:
    print("| in -> out | rows | old ms (p10-p90) | new ms (p10-p90) | speed-up x | "
          "old cos / rel err | new cos / rel err |")  # fmt: skip
    print("|---|---|---|---|---|---|---|")
    torch.manual_seed(0)
    for fan_in, fan_out in SHAPES:
        linear = torch.nn.Linear(fan_in, fan_out).requires_grad_(False)
        new = quant.Int8Linear(linear)
        with _old_linears():
            old = quant.Int8Linear(linear)
        for rows in ROWS:
            x = torch.randn(rows, fan_in)
            with steady_allocator():  # as the benchmarks time: no per-call page faults
                timing = time_pair(functools.partial(_old_forward, old), new, x, warmup=5,
                                   repeats=repeats)  # fmt: skip
            reference = linear(x)
            print(f"| {fan_in} -> {fan_out} | {rows} | {_ms(timing.baseline_wall)} | "
                  f"{_ms(timing.candidate_wall)} | {timing.speedup:.2f} | "
                  f"{_quality(_old_forward(old, x), reference)} | "
                  f"{_quality(new(x), reference)} |")  # fmt: skip


def encoder_rows(documents: int, repeats: int) -> None:
    from edgeinfer.datasets import read_lee_corpus
    from edgeinfer.nlp import SpAttenConfig, load_encoder

    texts = read_lee_corpus("test")[:documents]
    full = load_encoder("all-MiniLM-L6-v2").encode(texts, batch_size=8)
    fp32 = load_encoder("all-MiniLM-L6-v2", spatten=SpAttenConfig(quant=None))
    with _old_linears():
        old = load_encoder("all-MiniLM-L6-v2", spatten=SpAttenConfig())
    new = load_encoder("all-MiniLM-L6-v2", spatten=SpAttenConfig())

    def run_old(batch):
        with _old_linears():
            return old.encode(texts, batch_size=batch)

    def run_new(batch):
        return new.encode(texts, batch_size=batch)

    print(f"\nLee test documents: {len(texts)}, SpAttenConfig() (token_keep 0.6), "
          f"max_length {new.max_length}\n")  # fmt: skip
    print("| linears | min cosine batch 8 vs 1 | docs < 0.9999 | mean / min cosine to fp32 "
          "unpruned (batch 8) | encode ms, batch 8 (p10-p90) |")  # fmt: skip
    print("|---|---|---|---|---|")
    with steady_allocator():
        timing = time_pair(run_old, run_new, 8, warmup=1, repeats=repeats)
    sides = (
        ("fp32 (quant=None)", lambda batch: fp32.encode(texts, batch_size=batch), None),
        ("old int8 (per tensor)", run_old, timing.baseline_wall),
        ("new int8 (per row)", run_new, timing.candidate_wall),
    )
    for label, run, wall in sides:
        batched, alone = run(8), run(1)
        batch = np.sum(batched * alone, axis=1)  # rows are L2-normalised
        to_full = np.sum(batched * full, axis=1)
        print(f"| {label} | {batch.min():.6f} | {int((batch < 0.9999).sum())} | "
              f"{to_full.mean():.5f} / {to_full.min():.5f} | "
              f"{'-' if wall is None else _ms(wall)} |")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    parser.add_argument("--quick", action="store_true", help="fewer repeats and documents")
    args = parser.parse_args()
    if args.threads < 1:
        parser.error(f"--threads must be >= 1; got {args.threads}")
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {args.threads} thread(s), {cpu_model()}, "
          f"commit {git_commit()}\n")  # fmt: skip
    with torch.inference_mode(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the baseline's deprecation warnings
        linear_rows(repeats=15 if args.quick else 60)
        encoder_rows(documents=16 if args.quick else 50, repeats=2 if args.quick else 5)


if __name__ == "__main__":
    main()
