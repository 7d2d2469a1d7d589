"""MOTChallenge evaluation with TrackEval's metrics (HOTA, CLEAR, Identity) and benchmark rules."""

from cstrack.evaluation.benchmark import BENCHMARKS, BenchmarkRules, benchmark_rules, preprocess_sequence
from cstrack.evaluation.metrics import (
    SCORE_FIELDS,
    SequenceTables,
    evaluate,
    evaluate_sequence,
    evaluate_tables,
    format_table,
)

__all__ = [
    "BENCHMARKS",
    "SCORE_FIELDS",
    "BenchmarkRules",
    "SequenceTables",
    "benchmark_rules",
    "evaluate",
    "evaluate_sequence",
    "evaluate_tables",
    "format_table",
    "preprocess_sequence",
]
