"""MOTChallenge evaluation with TrackEval's metrics (HOTA, CLEAR, Identity) and benchmark rules."""

from cstrack.evaluation.benchmark import (
    BENCHMARKS,
    BenchmarkRules,
    benchmark_rules,
    guess_benchmark,
    preprocess_sequence,
)
from cstrack.evaluation.metrics import (
    SCORE_FIELDS,
    SequenceTables,
    evaluate,
    evaluate_sequence,
    evaluate_tables,
    format_table,
    frame_window,
    read_tables,
)
from cstrack.evaluation.per_class import evaluate_classes, evaluate_per_class, has_classes

__all__ = [
    "BENCHMARKS",
    "SCORE_FIELDS",
    "BenchmarkRules",
    "SequenceTables",
    "benchmark_rules",
    "evaluate",
    "evaluate_classes",
    "evaluate_per_class",
    "evaluate_sequence",
    "evaluate_tables",
    "format_table",
    "frame_window",
    "guess_benchmark",
    "has_classes",
    "preprocess_sequence",
    "read_tables",
]
