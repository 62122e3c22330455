"""Generate the Python gRPC/protobuf modules in fsd/v1/ from proto/fsd/v1/*.proto (the one command).

    python proto/generate.py          # regenerate in place
    python proto/generate.py --check  # regenerate into a temp dir and fail on any difference
"""
from __future__ import annotations

import argparse
import filecmp
import shutil
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PROTO_ROOT = ROOT / "proto"
PACKAGE_DIR = Path("fsd") / "v1"
GENERATED_SUFFIXES = ("_pb2.py", "_pb2.pyi", "_pb2_grpc.py")


def _generate(out_dir: Path) -> list[Path]:
    from grpc_tools import protoc  # imported late: only needed to generate
    import grpc_tools

    protos = sorted((PROTO_ROOT / PACKAGE_DIR).glob("*.proto"))
    well_known = Path(grpc_tools.__file__).parent / "_proto"
    args = [
        "protoc",
        f"-I{PROTO_ROOT}",
        f"-I{well_known}",
        f"--python_out={out_dir}",
        f"--pyi_out={out_dir}",
        f"--grpc_python_out={out_dir}",
        *[str(p) for p in protos],
    ]
    if protoc.main(args) != 0:
        raise SystemExit("protoc failed")
    return sorted(p for p in (out_dir / PACKAGE_DIR).iterdir() if p.name.endswith(GENERATED_SUFFIXES))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail if the committed code differs")
    args = parser.parse_args()
    target = ROOT / PACKAGE_DIR
    with tempfile.TemporaryDirectory() as tmp:
        generated = _generate(Path(tmp))
        if args.check:
            committed = sorted(p.name for p in target.iterdir() if p.name.endswith(GENERATED_SUFFIXES))
            names = [p.name for p in generated]
            stale = [n for n in names if not (target / n).exists() or not filecmp.cmp(target / n, Path(tmp) / PACKAGE_DIR / n, shallow=False)]
            extra = sorted(set(committed) - set(names))
            if stale or extra:
                print(f"generated code is out of date: {stale + extra}; run: python proto/generate.py", file=sys.stderr)
                return 1
            print(f"generated code matches proto/ ({len(names)} files)")
            return 0
        for path in generated:
            shutil.copyfile(path, target / path.name)
        print(f"wrote {len(generated)} files to {target}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
