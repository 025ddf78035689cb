"""The mobile latency benchmark harness every engine uses.

An engine declares ``BENCHMARKS`` in ``<engine>/bench.py``; ``discover_benchmarks`` finds
them; ``run_benchmark`` times baseline and candidate interleaved on the same input under a
``DeviceProfile`` (thread count, restored after); ``report`` writes Markdown, JSON and plots.
"""

from .case import Benchmark, Case, PlotSpec
from .discover import DiscoveredBenchmark, discover_benchmarks
from .environment import collect_environment
from .macs import count_macs
from .memory import PeakMemory, measure_peak_rss, measure_peak_rss_in_child
from .profile import DeviceProfile, available_cores, device_profile, parse_threads
from .quality import cosine_similarity, max_abs_error, relative_error
from .report import format_table, render_markdown, to_json, tradeoff_points, write_plot
from .runner import BenchmarkResult, CaseResult, RunConfig, run_benchmark, run_case
from .timing import PairTiming, Stats, summarize, time_interleaved, time_pair

__all__ = [
    "Benchmark",
    "BenchmarkResult",
    "Case",
    "CaseResult",
    "DeviceProfile",
    "DiscoveredBenchmark",
    "PairTiming",
    "PeakMemory",
    "PlotSpec",
    "RunConfig",
    "Stats",
    "available_cores",
    "collect_environment",
    "cosine_similarity",
    "count_macs",
    "device_profile",
    "discover_benchmarks",
    "format_table",
    "max_abs_error",
    "measure_peak_rss",
    "measure_peak_rss_in_child",
    "parse_threads",
    "relative_error",
    "render_markdown",
    "run_benchmark",
    "run_case",
    "summarize",
    "time_interleaved",
    "time_pair",
    "to_json",
    "tradeoff_points",
    "write_plot",
]
