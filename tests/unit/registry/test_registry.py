"""Registry apply rules, durability across reopen, and snapshot resolution."""
from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fsd.domain import DType, EntityKeySpec, FeatureSpec, GroupSpec, KeyType, VersionState
from fsd.errors import FailedPrecondition, InvalidArgument, NotFound
from fsd.registry.registry import Registry
from fsd.registry.versioning import BEHAVIOUR_FIELDS, METADATA_FIELDS

KEYS = (EntityKeySpec("customer_id", KeyType.INT64),)


def group(*features: FeatureSpec, **kw: object) -> GroupSpec:
    return GroupSpec(name=kw.pop("name", "g"), entity_keys=kw.pop("entity_keys", KEYS), features=features, **kw)  # type: ignore[arg-type]


BASE = FeatureSpec("amount", DType.DOUBLE, transformation="sum(x)", window_seconds=3600, meaning="EUR sum")


@pytest.fixture
def registry(tmp_path: Path) -> Registry:
    return Registry(str(tmp_path / "registry.sqlite"))


def test_first_apply_creates_version_1_serving(registry: Registry) -> None:
    result = registry.apply([group(BASE)], actor="ann", reason="launch")
    assert [(c.feature, c.action, c.version) for c in result.changes] == [("", "create", 0), ("amount", "create", 1)]
    resolved = registry.snapshot().resolve("g:amount")
    assert (resolved.version, resolved.dtype) == (1, DType.DOUBLE)
    assert registry.snapshot().group("g").serving_version("amount").state == VersionState.SERVING  # type: ignore[union-attr]


def test_reapplying_the_same_definition_changes_nothing(registry: Registry) -> None:
    first = registry.apply([group(BASE)])
    again = registry.apply([group(BASE)])
    assert again.revision == first.revision
    assert {c.action for c in again.changes} == {"unchanged"}


def test_definitions_survive_reopen(tmp_path: Path) -> None:
    path = str(tmp_path / "r.sqlite")
    reg = Registry(path)
    reg.apply([group(BASE, max_age_seconds=60)], actor="ann", reason="launch")
    slot = reg.snapshot().resolve("g:amount").slot
    reg.close()
    reopened = Registry(path)
    assert reopened.snapshot().resolve("g:amount").slot == slot
    assert reopened.snapshot().resolve("g:amount").max_age_micros == 60_000_000
    assert [(h.action, h.actor, h.reason) for h in reopened.history("g", "amount").entries][-1] == ("create", "ann", "launch")


def test_behaviour_change_creates_pending_version_and_old_keeps_serving(registry: Registry) -> None:
    registry.apply([group(BASE)])
    changed = dataclasses.replace(BASE, window_seconds=7200)
    result = registry.apply([group(changed)])
    change = next(c for c in result.changes if c.feature == "amount")
    assert (change.action, change.version, change.detail) == ("new_version", 2, "changed: window_seconds")
    snap = registry.snapshot()
    assert snap.resolve("g:amount").version == 1  # unpinned still serves v1
    assert snap.resolve("g:amount@2").version == 2  # pending is readable when pinned
    assert snap.resolve("g:amount@2").slot != snap.resolve("g:amount@1").slot


def test_metadata_only_change_keeps_version(registry: Registry) -> None:
    registry.apply([group(BASE)])
    result = registry.apply([group(dataclasses.replace(BASE, description="new words", owner="bob"))])
    change = next(c for c in result.changes if c.feature == "amount")
    assert (change.action, change.version) == ("metadata_update", 1)
    assert registry.snapshot().group("g").versions["amount"][-1].spec.owner == "bob"


def test_group_source_change_versions_every_feature(registry: Registry) -> None:
    other = FeatureSpec("count", DType.INT64)
    registry.apply([group(BASE, other, source="s3://a")])
    result = registry.apply([group(BASE, other, source="s3://b")])
    assert {(c.feature, c.action) for c in result.changes if c.feature} == {("amount", "new_version"), ("count", "new_version")}


def test_nullable_addition_is_compatible_and_non_nullable_refused(registry: Registry) -> None:
    registry.apply([group(BASE)])
    added = registry.apply([group(BASE, FeatureSpec("new_nullable", DType.STRING))])
    assert next(c for c in added.changes if c.feature == "new_nullable").action == "compatible_expansion"
    with pytest.raises(FailedPrecondition, match="non-nullable"):
        registry.apply([group(BASE, FeatureSpec("new_nullable", DType.STRING), FeatureSpec("strict", DType.INT64, nullable=False))])


def test_entity_key_change_and_removal_are_refused_and_write_nothing(registry: Registry) -> None:
    registry.apply([group(BASE, FeatureSpec("count", DType.INT64))])
    before = registry.snapshot().revision
    with pytest.raises(FailedPrecondition, match="entity keys cannot change"):
        registry.apply([group(BASE, FeatureSpec("count", DType.INT64), entity_keys=(EntityKeySpec("customer_id", KeyType.STRING),))])
    with pytest.raises(FailedPrecondition, match="'count' was removed"):
        registry.apply([group(BASE)])
    assert registry.snapshot().revision == before


def test_apply_is_all_or_nothing_across_groups(registry: Registry) -> None:
    registry.apply([group(BASE)])
    good_new_group = group(BASE, name="other")
    bad_change = group(BASE, entity_keys=(EntityKeySpec("x", KeyType.INT64),))
    with pytest.raises(FailedPrecondition):
        registry.apply([good_new_group, bad_change])
    with pytest.raises(NotFound):
        registry.snapshot().group("other")


def test_stale_expected_revision_is_refused(registry: Registry) -> None:
    registry.apply([group(BASE)])
    with pytest.raises(FailedPrecondition, match="revision"):
        registry.apply([group(dataclasses.replace(BASE, owner="z"))], expected_revision=0)


def test_invalid_wire_definitions_are_refused(registry: Registry) -> None:
    with pytest.raises(InvalidArgument, match="vector_dim"):
        registry.apply([group(FeatureSpec("v", DType.FLOAT_VECTOR))])
    with pytest.raises(InvalidArgument, match="name"):
        registry.apply([group(BASE, name="Bad Name")])


def test_resolve_errors(registry: Registry) -> None:
    registry.apply([group(BASE)])
    snap = registry.snapshot()
    with pytest.raises(NotFound, match="unknown feature group"):
        snap.resolve("x:amount")
    with pytest.raises(NotFound, match="no feature"):
        snap.resolve("g:nope")
    with pytest.raises(NotFound, match="no version 3"):
        snap.resolve("g:amount@3")
    with pytest.raises(InvalidArgument):
        snap.resolve("g-amount")


# --- property: the version decision follows the rules for any edit ---------------------------------------------

_EDITS = {
    "dtype": lambda f: dataclasses.replace(f, dtype=DType.FLOAT if f.dtype != DType.FLOAT else DType.DOUBLE),
    "nullable": lambda f: dataclasses.replace(f, nullable=not f.nullable),
    "transformation": lambda f: dataclasses.replace(f, transformation=f.transformation + " + 1"),
    "window_seconds": lambda f: dataclasses.replace(f, window_seconds=f.window_seconds + 60),
    "source_dependencies": lambda f: dataclasses.replace(f, source_dependencies=(*f.source_dependencies, "extra")),
    "meaning": lambda f: dataclasses.replace(f, meaning=f.meaning + " (v2)"),
    "allow_nan": lambda f: dataclasses.replace(f, allow_nan=not f.allow_nan),
    "description": lambda f: dataclasses.replace(f, description=f.description + "!"),
    "owner": lambda f: dataclasses.replace(f, owner=f.owner + "x"),
    "tags": lambda f: dataclasses.replace(f, tags=(*f.tags, ("k", "v"))),
    "max_age_seconds": lambda f: dataclasses.replace(f, max_age_seconds=f.max_age_seconds + 30),
}


def test_edit_table_covers_every_field() -> None:
    # vector_dim only exists on vectors, so it has its own test below.
    assert set(_EDITS) | {"vector_dim"} == set(BEHAVIOUR_FIELDS) | set(METADATA_FIELDS)


def test_vector_dimension_change_is_a_new_version(registry: Registry) -> None:
    vec = FeatureSpec("emb", DType.FLOAT_VECTOR, vector_dim=8)
    registry.apply([group(vec)])
    change = next(c for c in registry.apply([group(dataclasses.replace(vec, vector_dim=16))]).changes if c.feature == "emb")
    assert (change.action, change.version, change.detail) == ("new_version", 2, "changed: vector_dim")


@settings(max_examples=60)
@given(st.lists(st.sampled_from(sorted(_EDITS)), min_size=1, max_size=4, unique=True))
def test_version_decision_follows_rules(tmp_path_factory: pytest.TempPathFactory, edits: list[str]) -> None:
    registry = Registry(str(tmp_path_factory.mktemp("reg") / "r.sqlite"))
    registry.apply([group(BASE)])
    edited = BASE
    for name in edits:
        edited = _EDITS[name](edited)
    change = next(c for c in registry.apply([group(edited)]).changes if c.feature == "amount")
    behaviour = sorted(set(edits) & set(BEHAVIOUR_FIELDS))
    if behaviour:
        assert (change.action, change.version) == ("new_version", 2)
        assert change.detail == "changed: " + ", ".join(behaviour)
        assert registry.snapshot().resolve("g:amount").version == 1
    else:
        assert (change.action, change.version) == ("metadata_update", 1)
    registry.close()
