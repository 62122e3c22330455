"""The Spark training-set engine (local[2], one session for the test session: it takes seconds to start) against
the brute-force reference and against the local engine, as tests/unit/offline/test_engines.py does the others."""
from __future__ import annotations

from pathlib import Path

from hypothesis import given, settings

from fsd.offline import spark_engine
from fsd.offline.retrieval import get_historical_features
from fsd.offline.store import OfflineStore
from tests.unit.offline.test_engines import _random_store
from tests.unit.offline.test_point_in_time import brute_force_case, brute_force_inputs, check_against_brute_force


@settings(max_examples=15)
@given(**brute_force_inputs)
def test_spark_join_matches_brute_force(spark, tmp_path_factory, rows, queries, max_age_s, as_of_s) -> None:  # type: ignore[no-untyped-def]
    store = OfflineStore(tmp_path_factory.mktemp("spark"))
    entity_rows, feature, as_of = brute_force_case(store, rows, queries, max_age_s, as_of_s)
    out = spark_engine.get_historical_features(store, entity_rows, [feature], as_of_micros=as_of)
    check_against_brute_force(out, rows, queries, max_age_s, as_of)


def test_spark_equals_the_local_engine_on_random_data(spark, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    store, features, entity_rows = _random_store(tmp_path / "off", seed=11, entities=150, rows_per_feature=3000)
    expected = get_historical_features(store, entity_rows, features, with_status=True)
    assert spark_engine.get_historical_features(store, entity_rows, features).equals(expected)
