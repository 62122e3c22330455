"""Settings are strict: unknown keys and bad values fail at start-up, with the setting's name."""
from __future__ import annotations

from pathlib import Path

import pytest

from fsd.config import load_settings
from fsd.errors import InvalidArgument


def test_defaults_then_file_then_env_then_flags(tmp_path: Path) -> None:
    file = tmp_path / "fsd.toml"
    file.write_text('[server]\nport = 6000\nmax_workers = 4\n[store]\ndata_dir = "/tmp/x"\n')
    settings = load_settings(str(file), env={"FSD_SERVER_PORT": "7000", "FSD_STORE_SYNC_WRITES": "false"}, overrides={"server": {"port": 8000}})
    assert settings.server.port == 8000
    assert settings.server.max_workers == 4
    assert settings.store.data_dir == "/tmp/x" and settings.store.sync_writes is False
    assert load_settings(env={}).server.host == "127.0.0.1"


@pytest.mark.parametrize(
    "env, fragment",
    [
        ({"FSD_SERVER_PROT": "1"}, "unknown setting server.prot"),
        ({"FSD_NOPE_X": "1"}, "unknown section 'nope'"),
        ({"FSD_SERVER_PORT": "http"}, "server.port: expected int"),
        ({"FSD_SERVER_REFLECTION": "maybe"}, "server.reflection: expected true/false"),
        ({"FSD_LIMITS_MAX_ENTITIES": "-1"}, "limits.max_entities: must not be negative"),
    ],
)
def test_bad_settings_are_named(env: dict[str, str], fragment: str) -> None:
    with pytest.raises(InvalidArgument) as info:
        load_settings(env=env)
    assert fragment in info.value.message


def test_client_variables_are_not_daemon_settings() -> None:
    settings = load_settings(env={"FSD_TARGET": "127.0.0.1:1", "FSD_TOKEN": "x", "FSD_LOG_LEVEL": "DEBUG", "FSD_OFFLINE_ROOT": "/tmp"})
    assert settings.server.port == 50051


def test_unknown_file_section(tmp_path: Path) -> None:
    file = tmp_path / "fsd.toml"
    file.write_text("[servr]\nport = 1\n")
    with pytest.raises(InvalidArgument, match=r"unknown section \[servr\]"):
        load_settings(str(file), env={})


def test_paths_are_confined_to_allowed_roots(tmp_path: Path) -> None:
    import os

    from fsd.paths import confine

    inside, outside = tmp_path / "allowed", tmp_path / "elsewhere"
    inside.mkdir()
    outside.mkdir()
    os.symlink(outside, inside / "escape")
    roots = [inside.resolve()]
    assert confine(inside / "data" / "x.parquet", "file", roots) == (inside / "data" / "x.parquet").resolve()
    for bad in (inside / ".." / "elsewhere" / "x", inside / "escape" / "x", outside):
        with pytest.raises(InvalidArgument, match="outside the allowed roots"):
            confine(bad, "file", roots)
    assert confine(outside, "file", []) == outside.resolve()  # no roots configured: no limit


def test_daemon_refuses_a_data_dir_outside_the_allowed_roots(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from fsd.serving.server import Daemon

    monkeypatch.setenv("FSD_ALLOWED_ROOTS", str(tmp_path / "allowed"))
    settings = load_settings(env={}, overrides={"store": {"data_dir": str(tmp_path / "allowed" / ".." / "other")}})
    with pytest.raises(InvalidArgument, match="store.data_dir"):
        Daemon(settings)


def test_http_port_is_off_by_default_and_checked() -> None:
    from fsd.config import ServerSettings, http_port
    from fsd.errors import InvalidArgument

    assert http_port(ServerSettings()) is None
    assert http_port(ServerSettings(http_port="0")) == 0 and http_port(ServerSettings(http_port="8080")) == 8080
    for bad in ("-1", "70000", "http"):
        with pytest.raises(InvalidArgument, match="server.http_port"):
            http_port(ServerSettings(http_port=bad))
