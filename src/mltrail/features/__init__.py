"""The feature store: point-in-time-correct training sets, online serving, versioned data."""

from .store import ENTITY_TIME, FeatureStore, SavedDataset

__all__ = ["ENTITY_TIME", "FeatureStore", "SavedDataset"]
