"""Load generators: count-bounded sequential calls (latency) and time-bounded concurrent load (throughput).

- `sequential`: one blocking keep-alive socket, pre-built request bytes, every call timed exactly.
- `wrk_load`: wrk with bench/wrk_mcp.lua (preferred for concurrency; see run.py for why).
- `python_load`: N aiohttp processes, the fallback when wrk is not installed.

Every answer is checked: HTTP 200 with a JSON-RPC result. Bad answers are counted and the first few
are kept verbatim, because they are gateway bugs worth reporting.
"""

from __future__ import annotations

import array
import contextlib
import math
import multiprocessing as mp
import os
import resource
import subprocess
import time
from dataclasses import dataclass, field
from typing import Any

from client import AUTHORIZATION_ENV, CALL_TIMEOUT_S, HOST, Conn, answer_problem, base_headers, call_body, request_bytes
from procs import BENCH, Proc

LUA = BENCH / "wrk_mcp.lua"


@dataclass
class Load:
    """One measured load: who was called, how, and what came back."""

    target: str
    concurrency: int
    client: str
    requests: int = 0  # answers received in the measured window
    ok: int = 0
    http_errors: int = 0  # non-200 answers
    rpc_errors: int = 0  # 200 answers carrying a JSON-RPC error
    socket_errors: int = 0  # connect/read/write failures and timeouts
    duration_s: float = 0.0
    rps: float = 0.0
    p50_ms: float = 0.0
    p90_ms: float = 0.0
    p99_ms: float = 0.0
    mean_ms: float = 0.0
    max_ms: float = 0.0
    statuses: dict[str, int] = field(default_factory=dict)
    bad_samples: list[str] = field(default_factory=list)
    cpu_us_per_call: dict[str, float] = field(default_factory=dict)  # process name -> CPU us per call
    cpu_split: dict[str, list[int]] = field(default_factory=dict)  # process name -> % of its CPU per pid
    note: str = ""

    @property
    def good_rps(self) -> float:
        return self.ok / self.duration_s if self.duration_s else 0.0

    @property
    def errors(self) -> int:
        return self.http_errors + self.rpc_errors + self.socket_errors


def _summarise(load: Load, latencies_s: list[float] | array.array) -> None:
    if not latencies_s:
        return
    ordered = sorted(latencies_s)
    n = len(ordered)

    def pct(q: float) -> float:
        return ordered[min(n - 1, max(0, math.ceil(q * n) - 1))] * 1000  # nearest rank

    load.p50_ms, load.p90_ms, load.p99_ms = pct(0.50), pct(0.90), pct(0.99)
    load.mean_ms = sum(ordered) / n * 1000
    load.max_ms = ordered[-1] * 1000


# -- concurrency 1: sequential latency ------------------------------------------------------------------


def sequential(
    target: str,
    port: int,
    session_id: str | None,
    version: str,
    modern: bool,
    requests: int,
    warmup: int,
    time_limit: float,
    watch: dict[str, Proc],
) -> Load:
    load = Load(target, 1, "python-socket")
    headers = base_headers(session_id, version, modern)
    conn = Conn(port)
    latencies = array.array("d")
    clock = time.perf_counter
    try:
        deadline = time.monotonic() + time_limit
        for i in range(warmup):
            if time.monotonic() > deadline:
                break
            with contextlib.suppress(OSError, ValueError):
                conn.exchange(request_bytes(port, call_body(10_000_000 + i, modern), headers))
        prebuilt = [request_bytes(port, call_body(20_000_000 + i, modern), headers) for i in range(requests)]
        ticks = {name: proc.cpu_ticks() for name, proc in watch.items()}
        deadline = time.monotonic() + time_limit
        client_cpu = time.process_time()
        started = clock()
        for raw in prebuilt:
            if time.monotonic() > deadline:
                load.note = f"stopped at the {time_limit:g}s time limit"
                break
            t0 = clock()
            try:
                status, _, body = conn.exchange(raw)
            except (OSError, ValueError) as exc:
                load.socket_errors += 1
                if len(load.bad_samples) < 3:
                    load.bad_samples.append(f"{type(exc).__name__}: {exc}")
                continue
            latencies.append(clock() - t0)
            load.requests += 1
            problem = answer_problem(status, body)
            if problem is None:
                load.ok += 1
                continue
            if status != 200:
                load.http_errors += 1
                load.statuses[str(status)] = load.statuses.get(str(status), 0) + 1
            else:
                load.rpc_errors += 1
            if len(load.bad_samples) < 3 and problem not in load.bad_samples:
                load.bad_samples.append(problem)
        load.duration_s = clock() - started
        client_cpu = time.process_time() - client_cpu
    finally:
        conn.close()
    load.rps = load.requests / load.duration_s if load.duration_s else 0.0
    _cpu_per_call(load, watch, ticks)
    if load.requests:
        load.cpu_us_per_call["client"] = client_cpu / load.requests * 1e6
    _summarise(load, latencies)
    return load


def _cpu_per_call(load: Load, watch: dict[str, Proc], before: dict[str, dict[int, int]]) -> None:
    """CPU microseconds per answered call for each watched process tree, and how it split across processes."""
    hz = os.sysconf("SC_CLK_TCK")
    for name, proc in watch.items():
        now = proc.cpu_ticks()
        used = {pid: ticks - before[name].get(pid, 0) for pid, ticks in now.items()}
        total = sum(used.values())
        if load.requests:
            load.cpu_us_per_call[name] = total / hz / load.requests * 1e6
        if len(used) > 1 and total:
            load.cpu_split[name] = [round(100 * used[pid] / total) for pid in sorted(used)]


# -- concurrency N: wrk --------------------------------------------------------------------------------


def wrk_load(
    target: str,
    port: int,
    session_id: str | None,
    version: str,
    modern: bool,
    concurrency: int,
    duration: int,
    threads: int,
    watch: dict[str, Proc],
    warmup: int = 1,
) -> Load:
    def run(seconds: int) -> str:
        argv = ["wrk", f"-t{threads}", f"-c{concurrency}", f"-d{seconds}s", f"--timeout={CALL_TIMEOUT_S:g}s"]
        argv += [
            "-s",
            str(LUA),
            f"http://{HOST}:{port}/mcp",
            "--",
            session_id or "-",
            version,
            "1" if modern else "0",
            "0",
            os.environ.get(AUTHORIZATION_ENV) or "-",
        ]
        done = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 30, check=False)
        if "WRK_RESULT" not in done.stdout:
            raise RuntimeError(f"wrk failed (exit {done.returncode}): {done.stderr.strip()} {done.stdout.strip()}")
        return done.stdout

    if warmup:
        run(warmup)
    ticks = {name: proc.cpu_ticks() for name, proc in watch.items()}
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    out = run(duration)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    client_cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    load = Load(target, concurrency, f"wrk -t{threads}")
    for line in out.splitlines():
        parts = line.split("\t")
        if parts[0] == "WRK_RESULT":
            (dur_us, reqs, ok, bad, rpc, e_conn, e_read, e_write, e_timeout) = (int(x) for x in parts[1:10])
            mean_us = float(parts[10])
            p50, p90, p99, mx = (int(x) for x in parts[11:15])
            load.duration_s = dur_us / 1e6
            load.requests, load.ok, load.http_errors, load.rpc_errors = reqs, ok, bad, rpc
            load.socket_errors = e_conn + e_read + e_write + e_timeout
            load.rps = reqs / load.duration_s if load.duration_s else 0.0
            load.mean_ms, load.p50_ms, load.p90_ms, load.p99_ms, load.max_ms = (
                mean_us / 1000,
                p50 / 1000,
                p90 / 1000,
                p99 / 1000,
                mx / 1000,
            )
            if load.socket_errors:
                load.bad_samples.append(
                    f"socket errors: connect {e_conn}, read {e_read}, write {e_write}, timeout {e_timeout}"
                )
        elif parts[0] == "WRK_STATUS":
            load.statuses[parts[1]] = load.statuses.get(parts[1], 0) + int(parts[2])
        elif parts[0] == "WRK_FIRST_BAD" and len(load.bad_samples) < 4:
            load.bad_samples.append(parts[1])
    _cpu_per_call(load, watch, ticks)
    if load.requests:
        load.cpu_us_per_call["client"] = client_cpu / load.requests * 1e6
    return load


# -- concurrency N: Python aiohttp processes (fallback, and for --compare-clients) ------------------------


def _py_worker(
    port: int,
    session_id: str | None,
    version: str,
    modern: bool,
    tasks: int,
    start_at: float,
    end_at: float,
    slot: int,
    out: Any,
) -> None:
    import asyncio

    import aiohttp

    async def main() -> dict[str, Any]:
        headers = base_headers(session_id, version, modern)
        stats: dict[str, Any] = {"requests": 0, "ok": 0, "http": 0, "rpc": 0, "sock": 0, "statuses": {}, "bad": []}
        latencies = array.array("d")
        ids = iter(range(slot * 100_000_000, (slot + 1) * 100_000_000))
        connector = aiohttp.TCPConnector(limit=tasks, force_close=False)
        timeout = aiohttp.ClientTimeout(total=CALL_TIMEOUT_S)
        async with aiohttp.ClientSession(connector=connector, timeout=timeout) as http:
            url = f"http://{HOST}:{port}/mcp"

            async def one() -> None:
                while True:
                    now = time.monotonic()
                    if now >= end_at:
                        return
                    t0 = time.perf_counter()
                    try:
                        async with http.post(url, data=call_body(next(ids), modern), headers=headers) as r:
                            status, body = r.status, await r.read()
                    except (aiohttp.ClientError, TimeoutError, OSError) as exc:
                        if now >= start_at:
                            stats["sock"] += 1
                            if len(stats["bad"]) < 3:
                                stats["bad"].append(f"{type(exc).__name__}: {exc}")
                        continue
                    if now < start_at or time.monotonic() > end_at:
                        continue  # warm-up, or finished after the window closed
                    latencies.append(time.perf_counter() - t0)
                    stats["requests"] += 1
                    problem = answer_problem(status, body)
                    if problem is None:
                        stats["ok"] += 1
                        continue
                    if status != 200:
                        stats["http"] += 1
                        stats["statuses"][str(status)] = stats["statuses"].get(str(status), 0) + 1
                    else:
                        stats["rpc"] += 1
                    if len(stats["bad"]) < 3 and problem not in stats["bad"]:
                        stats["bad"].append(problem)

            async def cpu_window() -> None:
                await asyncio.sleep(max(0.0, start_at - time.monotonic()))
                stats["cpu"] = -time.process_time()
                await asyncio.sleep(max(0.0, end_at - time.monotonic()))
                stats["cpu"] += time.process_time()

            await asyncio.gather(cpu_window(), *(one() for _ in range(tasks)))
        stats["latencies"] = latencies.tobytes()
        return stats

    try:
        import uvloop

        result = uvloop.run(main())
    except ImportError:
        result = asyncio.run(main())
    out.put(result)


def python_load(
    target: str,
    port: int,
    session_id: str | None,
    version: str,
    modern: bool,
    concurrency: int,
    duration: int,
    procs: int,
    watch: dict[str, Proc],
    warmup: float = 1.0,
) -> Load:
    ctx = mp.get_context("spawn")
    out = ctx.Queue()
    spawn_allowance = 2.0 + 0.3 * procs
    start_at = time.monotonic() + spawn_allowance + warmup
    end_at = start_at + duration
    shares = [concurrency // procs + (1 if i < concurrency % procs else 0) for i in range(procs)]
    workers = [
        ctx.Process(
            target=_py_worker, args=(port, session_id, version, modern, n, start_at, end_at, i, out), daemon=True
        )
        for i, n in enumerate(shares)
        if n
    ]
    for worker in workers:
        worker.start()
    time.sleep(max(0.0, start_at - time.monotonic()))
    ticks = {name: proc.cpu_ticks() for name, proc in watch.items()}
    results = []
    for _ in workers:
        try:
            results.append(out.get(timeout=duration + spawn_allowance + warmup + CALL_TIMEOUT_S + 10))
        except Exception:
            break
    for worker in workers:
        worker.join(5)
        if worker.is_alive():
            worker.kill()
    load = Load(target, concurrency, f"python aiohttp x{len(workers)} proc")
    if len(results) < len(workers):
        load.note = f"only {len(results)} of {len(workers)} client processes reported"
    latencies = array.array("d")
    client_cpu = 0.0
    for r in results:
        client_cpu += r.get("cpu", 0.0)
        load.requests += r["requests"]
        load.ok += r["ok"]
        load.http_errors += r["http"]
        load.rpc_errors += r["rpc"]
        load.socket_errors += r["sock"]
        for k, v in r["statuses"].items():
            load.statuses[k] = load.statuses.get(k, 0) + v
        for b in r["bad"]:
            if len(load.bad_samples) < 4 and b not in load.bad_samples:
                load.bad_samples.append(b)
        chunk = array.array("d")
        chunk.frombytes(r["latencies"])
        latencies.extend(chunk)
    load.duration_s = float(duration)
    load.rps = load.requests / duration
    _cpu_per_call(load, watch, ticks)
    if load.requests:
        load.cpu_us_per_call["client"] = client_cpu / load.requests * 1e6
    _summarise(load, latencies)
    return load
