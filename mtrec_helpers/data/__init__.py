"""Data layer: MovieLens readers, synthetic data, preprocessing, leave-one-out split, persistence."""

from mtrec_helpers.core.errors import DataError
from mtrec_helpers.core.protocol import SPLITS
from mtrec_helpers.data.movielens import DATASETS, DatasetSpec
from mtrec_helpers.data.preprocess import PAD
from mtrec_helpers.data.schema import RawData
from mtrec_helpers.data.store import ProcessedData, load_processed, load_raw, prepare_dataset
from mtrec_helpers.data.synthetic import SyntheticConfig, SyntheticTruth, generate

__all__ = [
    "DATASETS",
    "PAD",
    "SPLITS",
    "DataError",
    "DatasetSpec",
    "ProcessedData",
    "RawData",
    "SyntheticConfig",
    "SyntheticTruth",
    "generate",
    "load_processed",
    "load_raw",
    "prepare_dataset",
]
