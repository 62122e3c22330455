"""Shared fixtures: real daemons on free loopback ports, temp data dirs, the example repo."""
from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

from fsd.client import Client
from fsd.examples import FRAUD_REPO
from fsd.registry.definitions import load_repo
from tests.daemon_process import DaemonProcess

# Shared, noisy 2-core machines: no per-example deadlines (speed is measured in loadtests/, not here).
settings.register_profile("fsd", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("fsd")

TYPES_REPO = """
feature_groups:
  - name: all_types
    entity_keys: [{name: entity_id, type: int64}]
    max_age: 1h
    features:
      - {name: f_int, dtype: int64}
      - {name: f_double, dtype: double}
      - {name: f_float, dtype: float}
      - {name: f_bool, dtype: bool}
      - {name: f_string, dtype: string}
      - {name: f_bytes, dtype: bytes}
      - {name: f_vec, dtype: float_vector, vector_dim: 3}
      - {name: f_required, dtype: int64, nullable: false}
  - name: pairs
    entity_keys: [{name: user, type: string}, {name: item_id, type: int64}]
    features:
      - {name: score, dtype: double, nullable: false}
"""


@pytest.fixture
def daemon_factory(tmp_path: Path) -> Iterator:  # type: ignore[type-arg]
    started: list[DaemonProcess] = []

    def make(name: str = "data", **kwargs: object) -> DaemonProcess:
        daemon = DaemonProcess(tmp_path / name, **kwargs)  # type: ignore[arg-type]
        started.append(daemon)
        return daemon

    yield make
    for daemon in started:
        daemon.stop()


@pytest.fixture
def daemon(daemon_factory) -> DaemonProcess:  # type: ignore[no-untyped-def]
    return daemon_factory().start()


@pytest.fixture
def client(daemon: DaemonProcess) -> Iterator[Client]:
    with Client(daemon.target, timeout=30) as c:
        yield c


@pytest.fixture
def typed_client(client: Client, tmp_path: Path) -> Client:
    repo = tmp_path / "types.yaml"
    repo.write_text(TYPES_REPO)
    client.apply(load_repo(repo))
    return client


@pytest.fixture
def fraud_client(client: Client) -> Client:
    client.apply(load_repo(FRAUD_REPO))
    return client
