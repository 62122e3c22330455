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
    assert set(groups) == {"customer_profile", "transaction_velocity", "customer_merchant"}
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
