"""MOTChallenge evaluation with TrackEval's metrics (HOTA, CLEAR, Identity) and benchmark rules."""

from cstrack.evaluation.benchmark import BENCHMARKS, BenchmarkRules, benchmark_rules, preprocess_sequence
from cstrack.evaluation.metrics import SCORE_FIELDS, evaluate, evaluate_sequence, format_table

__all__ = [
    "BENCHMARKS",
    "SCORE_FIELDS",
    "BenchmarkRules",
    "benchmark_rules",
    "evaluate",
    "evaluate_sequence",
    "format_table",
    "preprocess_sequence",
]
