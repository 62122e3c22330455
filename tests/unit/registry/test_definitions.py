"""Feature repo YAML: what loads, and errors that point at file and line."""
from __future__ import annotations

from pathlib import Path

import pytest

from fsd.domain import DType, KeyType
from fsd.errors import InvalidArgument
from fsd.examples import FRAUD_REPO
from fsd.registry.definitions import load_repo, load_text
from fsd.domain.durations import format_duration, parse_duration


def test_example_repo_loads() -> None:
    groups = {g.name: g for g in load_repo(FRAUD_REPO)}
    assert set(groups) == {"customer_profile", "transaction_velocity", "customer_merchant", "card_activity"}
    activity = groups["card_activity"]  # computed by fsd from pushed events
    assert dict(activity.event_columns) == {"amount_eur": DType.DOUBLE, "merchant_mcc": DType.STRING}
    assert activity.feature("amount_sum_1h").aggregation.function == "sum"  # type: ignore[union-attr]
    velocity = groups["transaction_velocity"]
    assert velocity.max_age_seconds == 900 and velocity.sync_interval_seconds == 60
    assert velocity.feature("txn_count_1h").window_seconds == 3600  # type: ignore[union-attr]
    embedding = groups["customer_profile"].feature("behaviour_embedding")
    assert embedding is not None and embedding.dtype == DType.FLOAT_VECTOR and embedding.vector_dim == 8
    assert [k.type for k in groups["customer_merchant"].entity_keys] == [KeyType.INT64, KeyType.STRING]


GOOD = """
feature_groups:
  - name: g
    entity_keys: [{name: id, type: int64}]
    features:
      - {name: f, dtype: double}
"""


@pytest.mark.parametrize(
    "text, fragment",
    [
        (GOOD.replace("dtype: double", "dtype: decimal"), "x.yaml:6: feature f: unknown dtype 'decimal'"),
        (GOOD.replace("name: g", "name: G-1"), "x.yaml:3: group name 'G-1'"),
        (GOOD.replace("    features:", "    colour: red\n    features:"), "x.yaml:5: unknown key 'colour'"),
        (GOOD.replace("type: int64", "type: uuid"), "type must be int64 or string"),
        (GOOD + "      - {name: f, dtype: int64}\n", "x.yaml:7: group g: duplicate feature 'f'"),
        (GOOD.replace("{name: f, dtype: double}", "{name: id, dtype: double}"), "reserved"),
        (GOOD.replace("{name: f, dtype: double}", "{name: v, dtype: float_vector}"), "float_vector needs vector_dim"),
        (GOOD.replace("{name: f, dtype: double}", "{name: f, dtype: double, window: soon}"), "not a duration: 'soon'"),
        ("feature_groups: [\n  {name: g,\n", "x.yaml:3: invalid YAML"),
        (GOOD.replace("entity_keys: [{name: id, type: int64}]", "entity_keys: []"), "entity_keys must be a non-empty list"),
    ],
)
def test_errors_name_file_line_and_field(text: str, fragment: str) -> None:
    with pytest.raises(InvalidArgument) as info:
        load_text(text, "x.yaml")
    assert fragment in info.value.message


def test_group_declared_in_two_files_is_refused(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text(GOOD)
    (tmp_path / "b.yaml").write_text(GOOD)
    with pytest.raises(InvalidArgument, match="also declared in"):
        load_repo(tmp_path)


@pytest.mark.parametrize("text, seconds", [("90", 90), (90, 90), ("15m", 900), ("1h30m", 5400), ("2d", 172800), ("1w", 604800)])
def test_durations(text: object, seconds: int) -> None:
    assert parse_duration(text) == seconds
    assert parse_duration(format_duration(seconds)) == seconds


@pytest.mark.parametrize("bad", ["", "m", "5x", "1h 5", "-3", True, 1.5])
def test_bad_durations(bad: object) -> None:
    with pytest.raises(ValueError):
        parse_duration(bad)


@pytest.mark.parametrize("feature,message", [
    ("{name: f, dtype: int64, aggregation: {function: median, column: amount, window: 1h}}", "must be one of"),
    ("{name: f, dtype: double, aggregation: {function: sum, column: nope, window: 1h}}", "not a column"),
    ("{name: f, dtype: int64, aggregation: {function: sum, column: amount, window: 1h}}", "gives double"),
    ("{name: f, dtype: double, aggregation: {function: sum, column: amount, window: 90s}}", "whole number of minutes"),
    ("{name: f, dtype: double, nullable: false, aggregation: {function: mean, column: amount, window: 1h}}", "declare it nullable"),
    ("{name: f, dtype: int64, aggregation: {function: count, window: 1h, filter: 'amount >'}}", "filter"),
    ("{name: f, dtype: double}", "holds only computed features"),
])
def test_aggregation_mistakes_are_named(feature: str, message: str) -> None:
    text = f"""
feature_groups:
  - name: events
    entity_keys: [{{name: id, type: int64}}]
    event_source: {{columns: {{amount: double}}}}
    features:
      - {feature}
"""
    with pytest.raises(InvalidArgument, match=message):
        load_text(text)


def test_a_changed_window_is_a_new_behaviour_and_precomputed_hashes_stay() -> None:
    from fsd.domain import FeatureSpec
    from fsd.domain.aggregation import Aggregation
    from fsd.registry.versioning import behaviour_hash

    plain = FeatureSpec("x", DType.DOUBLE, transformation="sum(a)", window_seconds=3600)
    # the hash this feature had before aggregations existed: re-applying a repo creates no new versions
    assert behaviour_hash(plain, "parquet://s") == "30d4e3808f4aa70ad74a8150d65f4da2343048e3c03be8c3bec90e521822515a"
    one = FeatureSpec("n", DType.INT64, aggregation=Aggregation("count", "", 3600))
    two = FeatureSpec("n", DType.INT64, aggregation=Aggregation("count", "", 7200))
    assert behaviour_hash(one, "") != behaviour_hash(two, "") != behaviour_hash(FeatureSpec("n", DType.INT64), "")
