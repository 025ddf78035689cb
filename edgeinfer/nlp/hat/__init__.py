"""HAT-style hardware-aware transformer search on a real pretrained encoder, offline.

``SuperEncoder.from_pretrained("all-MiniLM-L6-v2")`` is an elastic encoder (embedding width,
per-layer FFN width and heads, layer count; weights shared by front slicing, reordered by
importance); ``train_supernet`` distils it with sandwich sampling; ``collect_latency``
measures sub-networks on this device into a resumable CSV; ``LatencyPredictor.fit`` learns
latency from it (linear or HAT's MLP); ``search`` evolves the best sub-network under a
latency budget; ``SuperEncoder.export_subnet`` gives it as a plain HF ``BertModel``, and
``load_subnet`` reloads one saved with ``save_pretrained``.
``transformers`` is imported only when a model is built.
"""

from .data import SPLITS, corpus_splits, split_sentences
from .features import FEATURE_NAMES, config_features
from .flow import FULL, QUICK, Comparison, Flow, FlowSettings, compare_at_budget, prepare_flow
from .importance import ImportanceOrder, measure_importance, reorder_state_dict
from .latency import LatencyDataset, LatencyProfile, collect_latency, read_latency_csv
from .measure import (
    MEASURES,
    Measurement,
    latency_inputs,
    measure_config,
    measure_latency,
    measure_pair,
    reference_config,
)
from .plot import plot_predictions
from .predictor import KINDS, LatencyPredictor, split_indices
from .quality import QualityEvaluator, similarity_loss, similarity_quality
from .saved import load_subnet
from .search import (
    EvolutionConfig,
    SearchResult,
    evolve,
    search,
    uniform_baseline,
    uniform_candidates,
)
from .space import SearchSpace, SubConfig
from .supernet import SuperEncoder, bert_space, calibration_texts
from .train import (
    DEFAULT_CHECKPOINT,
    TrainConfig,
    TrainResult,
    load_checkpoint,
    save_checkpoint,
    train_supernet,
)

__all__ = [
    "DEFAULT_CHECKPOINT",
    "FEATURE_NAMES",
    "FULL",
    "KINDS",
    "MEASURES",
    "QUICK",
    "SPLITS",
    "Comparison",
    "EvolutionConfig",
    "Flow",
    "FlowSettings",
    "ImportanceOrder",
    "LatencyDataset",
    "LatencyPredictor",
    "LatencyProfile",
    "Measurement",
    "QualityEvaluator",
    "SearchResult",
    "SearchSpace",
    "SubConfig",
    "SuperEncoder",
    "TrainConfig",
    "TrainResult",
    "bert_space",
    "calibration_texts",
    "collect_latency",
    "compare_at_budget",
    "config_features",
    "corpus_splits",
    "evolve",
    "latency_inputs",
    "load_checkpoint",
    "load_subnet",
    "measure_config",
    "measure_importance",
    "measure_latency",
    "measure_pair",
    "plot_predictions",
    "prepare_flow",
    "read_latency_csv",
    "reference_config",
    "reorder_state_dict",
    "save_checkpoint",
    "search",
    "similarity_loss",
    "similarity_quality",
    "split_indices",
    "split_sentences",
    "train_supernet",
    "uniform_baseline",
    "uniform_candidates",
]
