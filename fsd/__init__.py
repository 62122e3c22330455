"""fsd: a versioned feature store. The public Python API is what __all__ lists.

Names are imported on first use (PEP 562), so `import fsd` and the `fsd` command start without loading gRPC,
numpy or Arrow until a call needs them."""
from __future__ import annotations

from typing import TYPE_CHECKING

__version__ = "0.1.0"

_EXPORTS = {
    "Client": "fsd.client",
    "OnlineFeatures": "fsd.domain",
    "FeatureValues": "fsd.domain",
    "DType": "fsd.domain",
    "KeyType": "fsd.domain",
    "ValueStatus": "fsd.domain",
    "VersionState": "fsd.domain",
    "FeatureRef": "fsd.domain",
    "FeatureSpec": "fsd.domain",
    "GroupSpec": "fsd.domain",
    "EntityKeySpec": "fsd.domain",
    "FsdError": "fsd.errors",
}
__all__ = list(_EXPORTS)

if TYPE_CHECKING:
    from fsd.client import Client
    from fsd.domain import DType, EntityKeySpec, FeatureRef, FeatureSpec, FeatureValues, GroupSpec, KeyType, OnlineFeatures, ValueStatus, VersionState
    from fsd.errors import FsdError


def __getattr__(name: str) -> object:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'fsd' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
