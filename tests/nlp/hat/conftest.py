"""A tiny random BERT (built here, no download) and its supernet, shared by the HAT tests."""

import os

import numpy as np
import pytest
import torch

pytest.importorskip("transformers")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

TINY = {"vocab_size": 120, "hidden_size": 64, "num_hidden_layers": 3, "num_attention_heads": 4,
        "intermediate_size": 96, "max_position_embeddings": 40}  # fmt: skip


def make_tiny_bert(seed: int = 0):
    """A random post-LN BertModel of the TINY shape (head dim 16), eval mode."""
    from transformers import BertConfig, BertModel

    torch.manual_seed(seed)
    model = BertModel(BertConfig(**TINY, hidden_dropout_prob=0.0,
                                 attention_probs_dropout_prob=0.0), add_pooling_layer=False)
    with torch.no_grad():  # spread the weights so heads and neurons differ in importance
        for param in model.parameters():
            param.mul_(torch.empty_like(param).uniform_(0.2, 3.0))
    return model.eval()


def tiny_batches(count: int = 2, batch: int = 4, length: int = 12, seed: int = 1):
    """Random token batches with padding in every batch (row i has length - i real tokens)."""
    generator = torch.Generator().manual_seed(seed)
    batches = []
    for _ in range(count):
        ids = torch.randint(5, TINY["vocab_size"], (batch, length), generator=generator)
        mask = torch.ones(batch, length, dtype=torch.int64)
        for row in range(batch):
            mask[row, length - row :] = 0
        batches.append({"input_ids": ids * mask, "attention_mask": mask})
    return batches


@pytest.fixture(scope="module")
def tiny_bert():
    return make_tiny_bert()


@pytest.fixture(scope="module")
def tiny_supernet(tiny_bert):
    from edgeinfer.nlp.hat import SuperEncoder

    return SuperEncoder.from_model(tiny_bert, calibration=tiny_batches())


class WordTokenizer:
    """A stand-in for a HF tokenizer over the tiny vocabulary: one id per word (a stable
    hash), [CLS]=1 ... [SEP]=2, right padding with 0. Enough for training and quality code."""

    def __call__(self, texts, *, padding=True, truncation=True, max_length=512,
                 return_tensors="pt", **_):  # fmt: skip
        rows = []
        for text in texts:
            ids = [5 + sum(map(ord, w)) % (TINY["vocab_size"] - 5) for w in text.split()]
            rows.append([1, *ids[: max_length - 2], 2])
        width = max(len(r) for r in rows)
        ids = torch.zeros(len(rows), width, dtype=torch.int64)
        mask = torch.zeros(len(rows), width, dtype=torch.int64)
        for index, row in enumerate(rows):
            ids[index, : len(row)] = torch.tensor(row)
            mask[index, : len(row)] = 1
        return {"input_ids": ids, "attention_mask": mask}


SENTENCES = [
    " ".join(f"w{(7 * i + 3 * j) % 50}" for j in range(4 + i % 9)) for i in range(40)
]


def synthetic_dataset(configs, latency, profile):
    """A LatencyDataset whose measures follow ``latency (N,)``: wall = latency, CPU median
    0.9x, CPU min 0.85x, CPU ratio to a 2 ms reference = 0.5 x latency, so the ``ref_cpu_ms``
    measure equals ``latency`` again."""
    from edgeinfer.nlp.hat import LatencyDataset

    latency = np.asarray(latency, dtype=np.float64)
    reference = np.full(len(latency), 2.0)
    columns = {"latency_ms": latency, "cpu_ms": 0.9 * latency, "cpu_min_ms": 0.85 * latency,
               "ref_wall_ratio": latency / 2.0, "ref_cpu_ratio": latency / 2.0,
               "ref_cpu_ms": reference}  # fmt: skip
    return LatencyDataset(tuple(configs), columns, profile)
