"""Which HTTP stack for the Feast-compatible endpoint: the standard library's threading server against aiohttp,
both answering the same JSON body, measured in the same run (how the choice in fsd/serving/http_api.py was made).

    python -m loadtests.bench_http_stack [--calls 3000] [--in-flight 16]

Each server runs in its own process; the client is one keep-alive connection for the sequential case and
`--in-flight` connections on threads for the concurrent one. Reported: p50/p99/p99.9 µs and QPS per stack.
"""
from __future__ import annotations

import argparse
import http.client
import json
import multiprocessing
import statistics
import threading
import time

from loadtests.bench import percentile

BODY = json.dumps({"features": ["transaction_velocity:txn_count_1h"] * 10, "entities": {"customer_id": list(range(10))}}).encode()


def _stdlib_server(port_queue: multiprocessing.Queue) -> None:  # type: ignore[type-arg]
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True  # headers and body go out as two writes: without it, 40 ms delayed ACKs

        def do_POST(self) -> None:  # noqa: N802 - http.server's name
            body = self.rfile.read(int(self.headers["Content-Length"]))
            out = json.dumps({"echo": json.loads(body)}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(out)))
            self.end_headers()
            self.wfile.write(out)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    port_queue.put(server.server_address[1])
    server.serve_forever()


def _aiohttp_server(port_queue: multiprocessing.Queue) -> None:  # type: ignore[type-arg]
    import asyncio

    from aiohttp import web

    async def handle(request: web.Request) -> web.Response:
        body = await request.read()
        return web.Response(body=json.dumps({"echo": json.loads(body)}).encode(), content_type="application/json")

    async def main() -> None:
        app = web.Application()
        app.router.add_post("/get-online-features", handle)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port_queue.put(site._server.sockets[0].getsockname()[1])  # type: ignore[union-attr]
        await asyncio.Event().wait()

    asyncio.run(main())


def _calls(port: int, count: int, latencies: list[float]) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", port)
    for _ in range(count):
        began = time.perf_counter()
        conn.request("POST", "/get-online-features", BODY, {"Content-Type": "application/json"})
        response = conn.getresponse()
        response.read()
        latencies.append((time.perf_counter() - began) * 1e6)
    conn.close()


def measure(target: object, calls: int, in_flight: int) -> dict[str, float]:
    ctx = multiprocessing.get_context("spawn")
    ports: multiprocessing.Queue = ctx.Queue()  # type: ignore[type-arg]
    proc = ctx.Process(target=target, args=(ports,), daemon=True)
    proc.start()
    port = ports.get(timeout=30)
    try:
        _calls(port, 200, [])  # warm-up
        sequential: list[float] = []
        began = time.perf_counter()
        _calls(port, calls, sequential)
        seq_qps = calls / (time.perf_counter() - began)
        concurrent: list[float] = []
        threads = [threading.Thread(target=_calls, args=(port, calls // in_flight, concurrent)) for _ in range(in_flight)]
        began = time.perf_counter()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        conc_qps = len(concurrent) / (time.perf_counter() - began)
    finally:
        proc.terminate()
        proc.join(10)
    seq = sorted(sequential)
    return {"seq_p50_us": statistics.median(seq), "seq_p99_us": percentile(seq, 99), "seq_p999_us": percentile(seq, 99.9), "seq_qps": seq_qps,
            "conc_p50_us": statistics.median(concurrent), "conc_p99_us": percentile(sorted(concurrent), 99), "conc_qps": conc_qps}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=3000)
    parser.add_argument("--in-flight", type=int, default=16)
    args = parser.parse_args()
    print(f"{'stack':<10} {'seq p50 µs':>11} {'seq p99 µs':>11} {'seq p99.9':>10} {'seq QPS':>9} {'16-in-flight p50':>17} {'p99':>8} {'QPS':>8}")
    for name, target in (("stdlib", _stdlib_server), ("aiohttp", _aiohttp_server)):
        r = measure(target, args.calls, args.in_flight)
        print(f"{name:<10} {r['seq_p50_us']:>11.0f} {r['seq_p99_us']:>11.0f} {r['seq_p999_us']:>10.0f} {r['seq_qps']:>9.0f} "
              f"{r['conc_p50_us']:>17.0f} {r['conc_p99_us']:>8.0f} {r['conc_qps']:>8.0f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
