"""fsd: a versioned feature store. The public Python API is what __all__ lists."""
from __future__ import annotations

from fsd.client import Client, FeatureValues, OnlineFeatures
from fsd.domain import DType, EntityKeySpec, FeatureRef, FeatureSpec, GroupSpec, KeyType, ValueStatus, VersionState

__all__ = [
    "Client",
    "OnlineFeatures",
    "FeatureValues",
    "DType",
    "KeyType",
    "ValueStatus",
    "VersionState",
    "FeatureRef",
    "FeatureSpec",
    "GroupSpec",
    "EntityKeySpec",
]
__version__ = "0.1.0"
