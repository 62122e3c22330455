"""Options every verb shares, declared once: connection (target, token, TLS), output format and log level."""
from __future__ import annotations

import argparse
import json
import os
from collections.abc import Callable
from dataclasses import asdict, is_dataclass
from enum import Enum
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from fsd.client import Client


def common_parent() -> argparse.ArgumentParser:
    """--log-level for every verb."""
    parent = argparse.ArgumentParser(add_help=False)
    parent.add_argument("--log-level", default=None, help="DEBUG, INFO, WARNING (default) or ERROR; also $FSD_LOG_LEVEL")
    return parent


def connection_parent() -> argparse.ArgumentParser:
    """How a verb reaches the daemon (each falls back to its environment variable)."""
    parent = argparse.ArgumentParser(add_help=False)
    group = parent.add_argument_group("connection")
    group.add_argument("--target", default=None, help="daemon address host:port (default $FSD_TARGET or 127.0.0.1:50051)")
    group.add_argument("--token", default=None, help="bearer token (default $FSD_TOKEN)")
    group.add_argument("--tls-ca", default=None, help="CA bundle: connect with TLS (default $FSD_TLS_CA)")
    group.add_argument("--tls-cert", default=None, help="client certificate for mutual TLS (default $FSD_TLS_CERT)")
    group.add_argument("--tls-key", default=None, help="client key for mutual TLS (default $FSD_TLS_KEY)")
    return parent


def output_parent() -> argparse.ArgumentParser:
    parent = argparse.ArgumentParser(add_help=False)
    parent.add_argument("--output", "-o", choices=["table", "json"], default="table", help="table (default) or json (stable, documented)")
    return parent


def client_from(args: argparse.Namespace) -> Client:
    from fsd.client import Client

    return Client(args.target or None, token=args.token, tls_ca=args.tls_ca, tls_cert=args.tls_cert, tls_key=args.tls_key)


def actor(args: argparse.Namespace) -> str:
    return getattr(args, "by", None) or os.environ.get("USER", "")


def to_json(value: object) -> object:
    """Domain records as plain JSON values: dataclasses as objects, enums by name, None as null."""
    if is_dataclass(value) and not isinstance(value, type):
        return {k: to_json(v) for k, v in asdict(value).items()}
    if isinstance(value, Enum):
        return value.name
    if isinstance(value, dict):
        return {str(k): to_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_json(v) for v in value]
    if isinstance(value, float) and value != value:
        return None
    return value


def emit(args: argparse.Namespace, document: object, table: Callable[[], str]) -> None:
    """Print `document` as JSON with --output json, else the table."""
    if getattr(args, "output", "table") == "json":
        print(json.dumps(to_json(document), indent=2, sort_keys=True))
    else:
        print(table())
