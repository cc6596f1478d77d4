"""Data layer: AVEC 2016 readers/writers, the embedded corpus, corpus model, preprocessing."""

from ddat_jax.data.avec2016 import (
    DIMENSIONS,
    FRAME_PERIOD,
    MODALITIES,
    PARTITIONS,
    RATERS,
    DataFormatError,
    check_time_grid,
    read_arff,
    read_gold_standard,
    read_ratings,
    write_arff,
    write_gold_standard,
    write_ratings,
)

__all__ = [
    "DIMENSIONS",
    "FRAME_PERIOD",
    "MODALITIES",
    "PARTITIONS",
    "RATERS",
    "DataFormatError",
    "check_time_grid",
    "read_arff",
    "read_gold_standard",
    "read_ratings",
    "write_arff",
    "write_gold_standard",
    "write_ratings",
]
