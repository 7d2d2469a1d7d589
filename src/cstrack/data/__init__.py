"""Dataset I/O: MOTChallenge sequences, annotation tables and tracking results."""

from cstrack.atomic import atomic_write
from cstrack.data.mot import (
    MotSequence,
    SequenceInfo,
    filter_results,
    find_sequences,
    read_mot_file,
    read_results,
    read_seqinfo,
    results_table,
    write_results,
    write_seqinfo,
)

__all__ = [
    "MotSequence",
    "SequenceInfo",
    "atomic_write",
    "filter_results",
    "find_sequences",
    "read_mot_file",
    "read_results",
    "read_seqinfo",
    "results_table",
    "write_results",
    "write_seqinfo",
]
