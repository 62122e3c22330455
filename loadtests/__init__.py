"""Benchmarks: `python -m loadtests.bench` (with a same-run bare gRPC echo baseline) and locustfile.py."""
