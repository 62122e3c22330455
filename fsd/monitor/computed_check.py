"""Validation of a computed feature version: the sampled entities' online values, combined from their tiles at
an instant, against the brute-force reference recomputed from the offline event log at the same instant. The
expected consistency is 100 %; a difference is a defect, logged with the entity and the events involved."""
from __future__ import annotations

import logging
import random
from collections import Counter
from collections.abc import Mapping


from fsd import codec
from fsd.aggregation import tiles
from fsd.aggregation.event_log import RECEIVED, ROW, SEQ, EventLog
from fsd.aggregation.layout import tile_keys
from fsd.aggregation.reference import NOT_FOUND, Event, value_at
from fsd.domain import GroupInfo, KeyType, VersionInfo
from fsd.online.base import OnlineStore

logger = logging.getLogger(__name__)


def _micros(column: object) -> list[int]:
    return column.cast("int64").to_pylist()  # type: ignore[attr-defined]


def check_computed(store: OnlineStore, offline_root: str, info: GroupInfo, version: VersionInfo, sample: int, now: int
                   ) -> tuple[int, int, Counter[str]]:
    """(sampled, matching, mismatch counts) for one computed feature version at instant `now`."""
    agg = version.spec.aggregation
    assert agg is not None
    log = EventLog(offline_root, info.spec.name).read()
    if log is None or log.num_rows == 0:
        return 0, 0, Counter()
    key_names = [k.name for k in info.spec.entity_keys]
    key_rows = list(zip(*(log[k].to_pylist() for k in key_names)))
    by_entity: dict[tuple[object, ...], list[int]] = {}
    for i, key in enumerate(key_rows):
        by_entity.setdefault(key, []).append(i)
    chosen = random.Random().sample(sorted(by_entity, key=repr), min(sample, len(by_entity)))
    columns = {name: log[name].to_pylist() for name, _ in info.spec.event_columns}
    event_times, received = _micros(log["event_timestamp"]), _micros(log[RECEIVED])
    seqs, rows = log[SEQ].to_pylist(), log[ROW].to_pylist()
    entities = codec.encode_entities([[key[j] for key in chosen] for j in range(len(key_names))],
                                     [k.type == KeyType.STRING for k in info.spec.entity_keys])
    blobs = store.get_many(tile_keys(info.group_id, entities))
    max_age = (version.spec.max_age_seconds or info.spec.max_age_seconds) * 1_000_000
    folder = tiles.FeatureTiles(version.slot, agg, info.spec.allowed_lateness_seconds * 1_000_000)
    matching, mismatches = 0, Counter[str]()
    for key, blob in zip(chosen, blobs):
        events = [Event(event_times[i], received[i], (seqs[i], rows[i]), {n: c[i] for n, c in columns.items()}) for i in by_entity[key]]
        status, value, newest = value_at(agg, events, now, max_age)
        state = tiles.decode(blob).get(version.slot) if blob is not None else None
        if state is None:
            if status == NOT_FOUND:
                matching += 1
            else:
                mismatches["missing_online"] += 1
                _defect(info, version, key, "no tiles online", events)
            continue
        online = folder.value_at(state, now, max_age)
        if online == (status, value, newest):
            matching += 1
        else:
            mismatches["value_differs"] += 1
            _defect(info, version, key, f"online {online[1]!r} (event time {online[2]}), event log gives {value!r} (event time {newest})", events)
    return len(chosen), matching, mismatches


def _defect(info: GroupInfo, version: VersionInfo, key: tuple[object, ...], what: str, events: list[Event]) -> None:
    seqs = sorted({e.order[0] for e in events})
    logger.warning("computed feature %s:%s@%d, entity %s: %s; events involved: %d, in pushes %s", info.spec.name, version.spec.name,
                   version.version, _short(dict(zip([k.name for k in info.spec.entity_keys], key))), what, len(events), seqs[:20])


def _short(entity: Mapping[str, object]) -> str:
    text = repr(entity)
    return text if len(text) <= 200 else text[:200] + "…"


__all__ = ["check_computed"]
