"""The `fsd` command: verbs in modules by group (daemon, registry, data, monitor), shared options declared once
(fsd.cli.options), documented exit codes (fsd.cli.exits). Only argparse is imported up front, so `fsd --help`
starts fast; each verb imports what it needs."""
from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence

from fsd.cli import exits

__all__ = ["build_parser", "main"]


class _Version(argparse.Action):
    """`fsd --version`: fsd's version, the wire contract, and which codec this installation would run."""

    def __call__(self, parser, namespace, values, option_string=None):  # type: ignore[no-untyped-def]
        from fsd import __version__, codec

        kind = "native (compiled fsd._native)" if codec.NATIVE else (
            "pure-Python reference (FSD_NO_EXTENSIONS=1)" if codec.REFERENCE_REQUESTED else "pure-Python reference (compiled codec NOT importable)")
        print(f"fsd {__version__}\nproto fsd.v1\ncodec {kind}")
        parser.exit(0)


def build_parser() -> argparse.ArgumentParser:
    from fsd.cli import daemon_verbs, data_verbs, monitor_verbs, registry_verbs
    from fsd.cli.options import common_parent, connection_parent, output_parent

    parser = argparse.ArgumentParser(prog="fsd", description="fsd: a versioned feature store")
    parser.add_argument("--log-level", dest="top_log_level", default=None, help="DEBUG, INFO, WARNING or ERROR (also $FSD_LOG_LEVEL)")
    parser.add_argument("--version", nargs=0, action=_Version, help="print fsd's version, proto version and codec, then exit")
    sub = parser.add_subparsers(dest="command", required=True, metavar="VERB")
    common, connection, output = common_parent(), connection_parent(), output_parent()
    daemon_verbs.register(sub, common, connection)
    registry_verbs.register(sub, common, connection, output)
    data_verbs.register(sub, common, connection, output)
    monitor_verbs.register(sub, common, connection, output)
    completion = sub.add_parser("completion", parents=[common], help="print a shell completion script (bash or zsh)",
                                description="Install with: source <(fsd completion bash)   (zsh: source <(fsd completion zsh))")
    completion.add_argument("shell", choices=["bash", "zsh"], help="the shell to complete for")
    completion.set_defaults(func=_completion)
    return parser


def _completion(args: argparse.Namespace) -> int:
    from fsd.cli.completion import script

    print(script(build_parser(), args.shell))
    return exits.OK


def _configure_logging(args: argparse.Namespace) -> None:
    level = args.log_level or args.top_log_level or os.environ.get("FSD_LOG_LEVEL") or getattr(args, "default_log_level", "WARNING")
    logging.basicConfig(level=getattr(logging, str(level).upper(), logging.WARNING), format="%(asctime)s %(levelname)s %(name)s: %(message)s")


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    _configure_logging(args)
    from fsd.errors import FsdError

    try:
        return int(args.func(args) or 0)
    except exits.UsageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exits.USAGE
    except FsdError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        return exits.UNAVAILABLE if exc.code == "UNAVAILABLE" else exits.ERROR
    except OSError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exits.ERROR
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return exits.INTERRUPTED
