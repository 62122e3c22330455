"""What serving from several processes could add on this machine: bare gRPC echo, 1 vs N processes.

    python -m loadtests.reuseport_ceiling [--processes 2] [--calls 20000] [--rounds 2]

N echo processes share one port with SO_REUSEPORT; an asyncio client keeps 16 calls in flight over 4 channels
(so connections spread over the listeners). The ratio N-process QPS / 1-process QPS is the ceiling for any
multi-process fsd design (RocksDB secondaries behind SO_REUSEPORT) before its own costs: secondaries see
writes only after try_catch_up_with_primary, and registry changes would have to reach every process.
"""
from __future__ import annotations

import argparse
import asyncio
import socket
import subprocess
import sys
import time
from concurrent import futures

import grpc

METHOD = "/bench.Echo/Call"
REPLY = b"x" * 700  # about a 1 x 10 GetFeatures reply


def serve(port: int) -> None:
    def call(request: bytes, context: grpc.ServicerContext) -> bytes:
        return REPLY

    handler = grpc.method_handlers_generic_handler("bench.Echo", {"Call": grpc.unary_unary_rpc_method_handler(call)})
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=16), options=[("grpc.so_reuseport", 1)])
    server.add_generic_rpc_handlers((handler,))
    server.add_insecure_port(f"127.0.0.1:{port}")
    server.start()
    server.wait_for_termination()


async def load(port: int, calls: int, in_flight: int = 16, channels: int = 4) -> float:
    opened = [grpc.aio.insecure_channel(f"127.0.0.1:{port}", options=[("grpc.use_local_subchannel_pool", 1)]) for _ in range(channels)]
    stubs = [c.unary_unary(METHOD) for c in opened]
    remaining = iter(range(calls))

    async def worker(i: int) -> None:
        for _ in remaining:
            await stubs[i % channels](b"y" * 60, timeout=10)

    began = time.perf_counter()
    await asyncio.gather(*(worker(i) for i in range(in_flight)))
    qps = calls / (time.perf_counter() - began)
    for channel in opened:
        await channel.close()
    return qps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--calls", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--serve", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve)
        return
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    results: dict[int, list[float]] = {1: [], args.processes: []}
    for _ in range(args.rounds):
        for processes in (1, args.processes):
            servers = [subprocess.Popen([sys.executable, "-m", "loadtests.reuseport_ceiling", "--serve", str(port)]) for _ in range(processes)]
            try:
                time.sleep(1.5)
                results[processes].append(asyncio.run(load(port, args.calls)))
            finally:
                for server in servers:
                    server.terminate()
                    server.wait(10)
    one, many = sorted(results[1])[len(results[1]) // 2], sorted(results[args.processes])[len(results[args.processes]) // 2]
    print(f"echo, 16 in flight: 1 process {one:.0f} QPS, {args.processes} processes {many:.0f} QPS -> {many / one:.2f}x")


if __name__ == "__main__":
    main()
