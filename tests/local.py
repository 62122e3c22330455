"""In-process read path for unit tests: the daemon's own Lookup and wire framing, without a daemon."""
from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

from fsd.domain import Clock, OnlineFeatures, RegistrySnapshot
from fsd.serving.lookup import FetchedRows, Lookup, LookupLimits
from fsd.online.base import OnlineStore
from fsd.v1 import serving_pb2
from fsd.wire import serving as wire


def request_bytes(refs: Sequence[str], entities: Mapping[str, Sequence[object]], manifest: str = "") -> bytes:
    return wire.get_features_request(refs, entities, manifest).SerializeToString()


def read_features(store: OnlineStore, snapshot: RegistrySnapshot, clock: Clock, refs: Sequence[str],
                  entities: Mapping[str, Sequence[object]], *, limits: LookupLimits | None = None, manifest: str = "",
                  keep: Callable[[FetchedRows], None] | None = None, fast_branch: bool = True) -> OnlineFeatures:
    """GetFeatures as the daemon answers it, decoded as the client decodes it."""
    lookup = Lookup(store, clock, limits or LookupLimits(), wire.refs_from_wire, fast_branch=fast_branch)
    encoder = wire.ResponseEncoder()
    fetched = lookup.get_features(snapshot, wire.get_request(request_bytes(refs, entities, manifest)))
    if keep is not None:
        keep(fetched)
    raw = encoder.encode_rows(fetched)
    return wire.online_features(serving_pb2.GetFeaturesResponse.FromString(raw))
