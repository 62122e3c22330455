"""A bare gRPC echo baseline: same server model (sync, thread pool), raw bytes, a fixed-size reply, no work.

Run: python -m loadtests.echo_server PORT_FILE
A request is padded to the size of the real request it stands in for; its first 4 bytes (big-endian) say
how large the reply must be, so one server mirrors every benchmark case.
"""
from __future__ import annotations

import os
import signal
import sys
import threading
from concurrent import futures

import grpc

METHOD = "/bench.Echo/Call"


def main() -> None:
    port_file = sys.argv[1]
    replies: dict[int, bytes] = {}

    def call(request: bytes, context: grpc.ServicerContext) -> bytes:
        size = int.from_bytes(request[:4], "big")
        reply = replies.get(size)
        if reply is None:
            reply = replies.setdefault(size, b"x" * size)
        return reply

    handler = grpc.method_handlers_generic_handler(
        "bench.Echo", {"Call": grpc.unary_unary_rpc_method_handler(call, request_deserializer=None, response_serializer=None)}
    )
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=16), options=[("grpc.so_reuseport", 0)])
    server.add_generic_rpc_handlers((handler,))
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    with open(port_file + ".tmp", "w") as fh:
        fh.write(str(port))
    os.replace(port_file + ".tmp", port_file)
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    done.wait()
    server.stop(1)


if __name__ == "__main__":
    main()
