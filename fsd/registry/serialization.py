"""GroupSpec/FeatureSpec <-> JSON for the registry's durable storage."""
from __future__ import annotations

import json
from dataclasses import asdict

from fsd.domain import DType, EntityKeySpec, FeatureSpec, FreshnessPolicy, GroupSpec, KeyType
from fsd.domain.aggregation import Aggregation


def feature_to_dict(spec: FeatureSpec) -> dict[str, object]:
    data = asdict(spec)
    data["dtype"] = int(spec.dtype)
    data["source_dependencies"] = list(spec.source_dependencies)
    data["tags"] = [list(t) for t in spec.tags]
    return data


def feature_from_dict(data: dict) -> FeatureSpec:  # type: ignore[type-arg]
    values = dict(data)
    values["dtype"] = DType(values["dtype"])
    values["source_dependencies"] = tuple(values.get("source_dependencies", ()))
    values["tags"] = tuple(tuple(t) for t in values.get("tags", ()))
    values["aggregation"] = Aggregation(**values["aggregation"]) if values.get("aggregation") else None
    return FeatureSpec(**values)


def group_to_json(spec: GroupSpec) -> str:
    data = {
        "name": spec.name,
        "entity_keys": [{"name": k.name, "type": int(k.type)} for k in spec.entity_keys],
        "features": [feature_to_dict(f) for f in spec.features],
        "source": spec.source,
        "owner": spec.owner,
        "description": spec.description,
        "tags": [list(t) for t in spec.tags],
        "max_age_seconds": spec.max_age_seconds,
        "sync_interval_seconds": spec.sync_interval_seconds,
        "policy": asdict(spec.policy),
        "timestamp_field": spec.timestamp_field,
        "sync_adaptive": spec.sync_adaptive,
        "sync_min_seconds": spec.sync_min_seconds,
        "sync_max_seconds": spec.sync_max_seconds,
        "event_columns": [[name, int(dtype)] for name, dtype in spec.event_columns],
        "allowed_lateness_seconds": spec.allowed_lateness_seconds,
    }
    return json.dumps(data, sort_keys=True)


def group_from_json(text: str) -> GroupSpec:
    data = json.loads(text)
    return GroupSpec(
        name=data["name"],
        entity_keys=tuple(EntityKeySpec(k["name"], KeyType(k["type"])) for k in data["entity_keys"]),
        features=tuple(feature_from_dict(f) for f in data["features"]),
        source=data["source"],
        owner=data["owner"],
        description=data["description"],
        tags=tuple(tuple(t) for t in data["tags"]),
        max_age_seconds=data["max_age_seconds"],
        sync_interval_seconds=data["sync_interval_seconds"],
        policy=FreshnessPolicy(**data.get("policy", {})),
        timestamp_field=data.get("timestamp_field", "event_timestamp"),
        sync_adaptive=data.get("sync_adaptive", False),
        sync_min_seconds=data.get("sync_min_seconds", 0),
        sync_max_seconds=data.get("sync_max_seconds", 0),
        event_columns=tuple((name, DType(dtype)) for name, dtype in data.get("event_columns", ())),
        allowed_lateness_seconds=data.get("allowed_lateness_seconds", 0),
    )
