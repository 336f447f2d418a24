"""The gateway's benchmark: `tools/call` pass-through, direct to a fast upstream vs through the gateway.

    python bench/run.py [--duration S] [--requests N] [--workers-run] [--modern] [--json FILE]

One run starts `bench/fast_upstream.py`, measures it directly, then starts `mcp-gateway serve` in front
of it and measures the same calls through the gateway, at concurrency 1 (latency over a fixed number of
sequential calls) and at concurrency 32 (throughput over a fixed time). Everything is bounded in count
and time and stops by itself; only 127.0.0.1 is used. See bench/README.md for what each number means.

Load generators (the client must not be the bottleneck; measured here on 2 shared cores, see
`--compare-clients`, which repeats the measurement on demand):

- concurrency 32: `wrk` with bench/wrk_mcp.lua (fresh JSON-RPC id per call, every answer checked).
  Against the direct upstream wrk reached 16-20k calls/s, where one Python aiohttp process capped at
  ~3.5k/s and two aiohttp processes at ~5k/s: a Python client spends more CPU per call than the uvicorn
  upstream does, and on two cores that CPU is taken from the server under test. wrk uses ~5x less.
  Without wrk the run still works, with N aiohttp processes and a loud note that the direct numbers
  are then client-bound (so gateway/direct ratios look better than they are).
- concurrency 1: a blocking-socket Python client with pre-built request bytes (~30 us of its own per
  call). It is count-bounded (wrk can only stop on time) and records every call's latency exactly.
"""

from __future__ import annotations

import argparse
import array
import contextlib
import json
import math
import multiprocessing as mp
import os
import platform
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
LUA = BENCH / "wrk_mcp.lua"
LEGACY = "2025-11-25"
MODERN = "2026-07-28"
HOST = "127.0.0.1"
CLIENT_INFO = {"name": "bench", "version": "1"}
BUDGET_P50_MS = 0.5
BUDGET_P99_MS = 2.0
BUDGET_RPS_PER_WORKER = 3000
CALL_TIMEOUT_S = 10.0


# -- results ---------------------------------------------------------------------------------------


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
    note: str = ""

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


# -- processes -------------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def _descendants(pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        ppid = int(stat[stat.rindex(")") + 2 :].split()[1])
        children.setdefault(ppid, []).append(int(entry))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def _rss_kb(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def _cpu_ticks(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/stat") as f:
            stat = f.read()
    except OSError:
        return 0
    fields = stat[stat.rindex(")") + 2 :].split()
    return int(fields[11]) + int(fields[12])  # utime + stime


class Proc:
    """A child process we started (and its descendants): readiness, RSS, CPU time, and a clean stop."""

    def __init__(self, name: str, argv: list[str], log_path: Path, *, capture_stdout: bool = False) -> None:
        self.name = name
        self.log_path = log_path
        self._log = open(log_path, "wb")  # noqa: SIM115 - closed in stop()
        self.popen = subprocess.Popen(
            argv,
            stdout=subprocess.PIPE if capture_stdout else self._log,
            stderr=self._log,
            stdin=subprocess.DEVNULL,
            cwd=BENCH.parent,
        )
        self.exit_note = ""

    @property
    def pid(self) -> int:
        return self.popen.pid

    def tree(self) -> list[int]:
        return [self.pid, *_descendants(self.pid)]

    def rss_kb(self) -> dict[int, int]:
        return {pid: _rss_kb(pid) for pid in self.tree()}

    def cpu_ticks(self) -> int:
        return sum(_cpu_ticks(pid) for pid in self.tree())

    def alive(self) -> bool:
        return self.popen.poll() is None

    def log_text(self) -> str:
        if not self._log.closed:
            self._log.flush()
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def stop(self, grace: float = 10.0) -> None:
        """SIGTERM, wait `grace` seconds, then SIGKILL whatever of our tree is left (by pid)."""
        if self.popen.poll() is not None:
            self.exit_note = f"had already exited with code {self.popen.returncode}"
        else:
            tree = [(pid, _start_time(pid)) for pid in self.tree()]
            self.popen.send_signal(signal.SIGTERM)
            started = time.monotonic()
            try:
                code = self.popen.wait(grace)
                self.exit_note = f"stopped on SIGTERM in {time.monotonic() - started:.1f}s (exit code {code})"
            except subprocess.TimeoutExpired:
                self.exit_note = f"did NOT stop within {grace:g}s of SIGTERM: killed"
            leftovers = [pid for pid, born in tree if born is not None and _start_time(pid) == born]
            if leftovers and "NOT" not in self.exit_note:
                self.exit_note += f"; {len(leftovers)} child process(es) outlived it: killed"
            for pid in leftovers:
                with contextlib.suppress(OSError):
                    os.kill(pid, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.popen.wait(5)
        if self.popen.stdout is not None:
            self.popen.stdout.close()
        self._log.close()


def _start_time(pid: int) -> int | None:
    """The process's start time in ticks: with the pid it names one process, even if pids are reused."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            stat = f.read()
    except OSError:
        return None
    fields = stat[stat.rindex(")") + 2 :].split()
    if fields[0] == "Z":
        return None
    return int(fields[19])


def start_upstream(workdir: Path) -> tuple[Proc, int]:
    proc = Proc(
        "upstream",
        [sys.executable, str(BENCH / "fast_upstream.py"), "--port", "0"],
        workdir / "upstream.log",
        capture_stdout=True,
    )
    assert proc.popen.stdout is not None
    os.set_blocking(proc.popen.stdout.fileno(), False)
    deadline = time.monotonic() + 20
    seen = b""
    while time.monotonic() < deadline:
        with contextlib.suppress(BlockingIOError, TypeError):
            seen += proc.popen.stdout.read() or b""
        if b"READY" in seen:
            return proc, int(seen.split(b"READY", 1)[1].split()[0])
        if not proc.alive():
            break
        time.sleep(0.05)
    proc.stop()
    raise SystemExit(f"fast_upstream did not start:\n{proc.log_text()[-2000:]}")


def start_gateway(workdir: Path, upstream_port: int, workers: int, protocol: str) -> tuple[Proc, int, str]:
    """Start `mcp-gateway serve` and wait for /readyz 200. Returns (process, port, readyz body)."""
    port = _free_port()
    config = workdir / f"gateway-w{workers}.yaml"
    config.write_text(
        f"""server:
  host: {HOST}
  port: {port}
  drain_timeout: 2
upstreams:
  fast:
    transport: streamable_http
    url: http://{HOST}:{upstream_port}/mcp
    prefixing: false
    protocol: "{protocol}"
"""
    )
    argv = [sys.executable, "-m", "mcp_gateway", "serve", "--config", str(config), "--port", str(port)]
    argv += ["--log-level", "warning", "--workers", str(workers)]
    proc = Proc(f"gateway-w{workers}", argv, workdir / f"gateway-w{workers}.log")
    deadline = time.monotonic() + 45
    last = "no answer"
    good = 0
    while time.monotonic() < deadline:
        if not proc.alive():
            raise GatewayFailed(f"gateway exited with code {proc.popen.returncode} before /readyz:\n{proc.log_text()[-3000:]}", proc)
        try:
            with urllib.request.urlopen(f"http://{HOST}:{port}/readyz", timeout=2) as response:
                last = response.read().decode(errors="replace")
                good += 1
                # With several workers each one connects its own upstreams: a few fresh
                # connections in a row make it likely that every worker is ready.
                if good >= (1 if workers == 1 else 3 * workers):
                    return proc, port, last
                continue
        except urllib.error.HTTPError as exc:
            last = f"HTTP {exc.code} {exc.read().decode(errors='replace')}"
            good = 0
        except OSError as exc:
            last = str(exc)
            good = 0
        time.sleep(0.1)
    raise GatewayFailed(f"gateway not ready within 45s; last /readyz: {last}\n{proc.log_text()[-3000:]}", proc)


class GatewayFailed(Exception):
    def __init__(self, message: str, proc: Proc) -> None:
        super().__init__(message)
        self.proc = proc


# -- raw HTTP/1.1 (blocking, keep-alive) -------------------------------------------------------------


class Conn:
    """A minimal keep-alive HTTP/1.1 client on one blocking socket: pre-built requests, exact timing."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.sock: socket.socket | None = None
        self.buf = b""

    def _connect(self) -> socket.socket:
        sock = socket.create_connection((HOST, self.port), timeout=CALL_TIMEOUT_S)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock, self.buf = sock, b""
        return sock

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()
            self.sock = None

    def exchange(self, raw: bytes) -> tuple[int, dict[str, str], bytes]:
        sock = self.sock or self._connect()
        try:
            sock.sendall(raw)
            status, headers, body = self._read()
        except Exception:
            self.close()
            raise
        if headers.get("connection", "").lower() == "close":
            self.close()
        return status, headers, body

    def _fill(self) -> None:
        assert self.sock is not None
        chunk = self.sock.recv(65536)
        if not chunk:
            raise ConnectionError("server closed the connection")
        self.buf += chunk

    def _read(self) -> tuple[int, dict[str, str], bytes]:
        while b"\r\n\r\n" not in self.buf:
            self._fill()
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        if "content-length" in headers:
            size = int(headers["content-length"])
            while len(self.buf) < size:
                self._fill()
            body, self.buf = self.buf[:size], self.buf[size:]
            return status, headers, body
        if headers.get("transfer-encoding", "").lower() == "chunked":
            parts = []
            while True:
                while b"\r\n" not in self.buf:
                    self._fill()
                size_line, self.buf = self.buf.split(b"\r\n", 1)
                size = int(size_line.split(b";")[0], 16)
                while len(self.buf) < size + 2:
                    self._fill()
                parts.append(self.buf[:size])
                self.buf = self.buf[size + 2 :]
                if size == 0:
                    return status, headers, b"".join(parts)
        # No length: the body runs to the end of the connection.
        with contextlib.suppress(ConnectionError):
            while True:
                self._fill()
        body, self.buf = self.buf, b""
        self.close()
        return status, headers, body


def _request_bytes(port: int, body: bytes, headers: dict[str, str]) -> bytes:
    lines = [f"POST /mcp HTTP/1.1", f"Host: {HOST}:{port}"]
    lines += [f"{k}: {v}" for k, v in headers.items()]
    lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def _base_headers(session_id: str | None, version: str, modern: bool) -> dict[str, str]:
    headers = {
        "Content-Type": "application/json",
        "Accept": "application/json, text/event-stream",
        "Mcp-Protocol-Version": version,
    }
    if session_id:
        headers["Mcp-Session-Id"] = session_id
    if modern:
        headers["Mcp-Method"] = "tools/call"
        headers["Mcp-Name"] = "echo"
    return headers


def _call_body(request_id: int, modern: bool) -> bytes:
    params: dict[str, Any] = {"name": "echo", "arguments": {"text": "hi"}}
    if modern:
        params["_meta"] = {
            "io.modelcontextprotocol/protocolVersion": MODERN,
            "io.modelcontextprotocol/clientCapabilities": {},
        }
    return json.dumps(
        {"jsonrpc": "2.0", "id": request_id, "method": "tools/call", "params": params}, separators=(",", ":")
    ).encode()


def _answer_problem(status: int, body: bytes) -> str | None:
    """None for a good echo answer; otherwise what was wrong, with the exact response text."""
    text = body.decode("utf-8", errors="replace")
    if status != 200:
        return f"HTTP {status} {text}"
    try:
        message = json.loads(text)
    except ValueError:
        return f"HTTP 200 (not JSON) {text[:2000]}"
    if "error" in message or not isinstance(message.get("result"), dict):
        return f"HTTP 200 {text[:2000]}"
    return None


def handshake(port: int) -> str:
    """initialize + notifications/initialized; returns the session id or raises with the answer text."""
    conn = Conn(port)
    try:
        init = {
            "jsonrpc": "2.0",
            "id": 1,
            "method": "initialize",
            "params": {"protocolVersion": LEGACY, "capabilities": {}, "clientInfo": CLIENT_INFO},
        }
        headers = {"Content-Type": "application/json", "Accept": "application/json, text/event-stream"}
        status, answer_headers, body = conn.exchange(_request_bytes(port, json.dumps(init).encode(), headers))
        sid = answer_headers.get("mcp-session-id")
        if status != 200 or not sid:
            raise RuntimeError(f"initialize failed: HTTP {status} {body.decode(errors='replace')[:2000]}")
        headers |= {"Mcp-Session-Id": sid, "Mcp-Protocol-Version": LEGACY}
        note = json.dumps({"jsonrpc": "2.0", "method": "notifications/initialized"}).encode()
        status, _, body = conn.exchange(_request_bytes(port, note, headers))
        if status != 202:
            raise RuntimeError(f"notifications/initialized: HTTP {status} {body.decode(errors='replace')[:2000]}")
        return sid
    finally:
        conn.close()


def probe_call(port: int, session_id: str | None, version: str, modern: bool) -> tuple[int, str]:
    conn = Conn(port)
    try:
        raw = _request_bytes(port, _call_body(1, modern), _base_headers(session_id, version, modern))
        status, _, body = conn.exchange(raw)
        return status, body.decode("utf-8", errors="replace")
    finally:
        conn.close()


# -- concurrency 1: sequential latency ------------------------------------------------------------------


def sequential(
    target: str, port: int, session_id: str | None, version: str, modern: bool, requests: int, warmup: int,
    time_limit: float, watch: dict[str, Proc],
) -> Load:
    load = Load(target, 1, "python-socket")
    headers = _base_headers(session_id, version, modern)
    conn = Conn(port)
    latencies = array.array("d")
    clock = time.perf_counter
    try:
        deadline = time.monotonic() + time_limit
        for i in range(warmup):
            if time.monotonic() > deadline:
                break
            with contextlib.suppress(OSError, ValueError):
                conn.exchange(_request_bytes(port, _call_body(10_000_000 + i, modern), headers))
        prebuilt = [_request_bytes(port, _call_body(20_000_000 + i, modern), headers) for i in range(requests)]
        ticks = {name: proc.cpu_ticks() for name, proc in watch.items()}
        deadline = time.monotonic() + time_limit
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
            problem = _answer_problem(status, body)
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
    finally:
        conn.close()
    load.rps = load.requests / load.duration_s if load.duration_s else 0.0
    _cpu_per_call(load, watch, ticks)
    _summarise(load, latencies)
    return load


def _cpu_per_call(load: Load, watch: dict[str, Proc], before: dict[str, int]) -> None:
    hz = os.sysconf("SC_CLK_TCK")
    for name, proc in watch.items():
        used = proc.cpu_ticks() - before[name]
        if load.requests:
            load.cpu_us_per_call[name] = used / hz / load.requests * 1e6


# -- concurrency N: wrk --------------------------------------------------------------------------------


def wrk_load(
    target: str, port: int, session_id: str | None, version: str, modern: bool, concurrency: int, duration: int,
    threads: int, watch: dict[str, Proc], warmup: int = 1,
) -> Load:
    def run(seconds: int) -> str:
        argv = ["wrk", f"-t{threads}", f"-c{concurrency}", f"-d{seconds}s", f"--timeout={CALL_TIMEOUT_S:g}s"]
        argv += ["-s", str(LUA), f"http://{HOST}:{port}/mcp", "--", session_id or "-", version, "1" if modern else "0", "0"]
        done = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 30, check=False)
        if "WRK_RESULT" not in done.stdout:
            raise RuntimeError(f"wrk failed (exit {done.returncode}): {done.stderr.strip()} {done.stdout.strip()}")
        return done.stdout

    if warmup:
        run(warmup)
    ticks = {name: proc.cpu_ticks() for name, proc in watch.items()}
    out = run(duration)
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
                mean_us / 1000, p50 / 1000, p90 / 1000, p99 / 1000, mx / 1000,
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
    return load


# -- concurrency N: Python aiohttp processes (fallback, and for --compare-clients) ------------------------


def _py_worker(port: int, session_id: str | None, version: str, modern: bool, tasks: int, start_at: float,
               end_at: float, slot: int, out: Any) -> None:
    import asyncio

    import aiohttp

    async def main() -> dict[str, Any]:
        headers = _base_headers(session_id, version, modern)
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
                        async with http.post(url, data=_call_body(next(ids), modern), headers=headers) as r:
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
                    problem = _answer_problem(status, body)
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

            await asyncio.gather(*(one() for _ in range(tasks)))
        stats["latencies"] = latencies.tobytes()
        return stats

    try:
        import uvloop

        result = uvloop.run(main())
    except ImportError:
        result = asyncio.run(main())
    out.put(result)


def python_load(
    target: str, port: int, session_id: str | None, version: str, modern: bool, concurrency: int, duration: int,
    procs: int, watch: dict[str, Proc], warmup: float = 1.0,
) -> Load:
    ctx = mp.get_context("spawn")
    out = ctx.Queue()
    spawn_allowance = 2.0 + 0.3 * procs
    start_at = time.monotonic() + spawn_allowance + warmup
    end_at = start_at + duration
    shares = [concurrency // procs + (1 if i < concurrency % procs else 0) for i in range(procs)]
    workers = [
        ctx.Process(target=_py_worker, args=(port, session_id, version, modern, n, start_at, end_at, i, out), daemon=True)
        for i, n in enumerate(shares) if n
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
    for r in results:
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
    _summarise(load, latencies)
    return load


# -- the run -------------------------------------------------------------------------------------------


@dataclass
class Settings:
    duration: int
    requests: int
    warmup: int
    concurrency: int
    client: str  # "wrk" or "python"
    wrk_threads: int
    client_procs: int
    upstream_protocol: str


def concurrent_load(s: Settings, target: str, port: int, sid: str | None, version: str, modern: bool,
                    watch: dict[str, Proc]) -> Load:
    if s.client == "wrk":
        return wrk_load(target, port, sid, version, modern, s.concurrency, s.duration, s.wrk_threads, watch)
    return python_load(target, port, sid, version, modern, s.concurrency, s.duration, s.client_procs, watch)


def measure(s: Settings, target: str, port: int, sid: str | None, version: str, modern: bool,
            watch: dict[str, Proc]) -> list[Load]:
    print(f"  {target}: concurrency 1, {s.requests} sequential calls ...", flush=True)
    c1 = sequential(target, port, sid, version, modern, s.requests, s.warmup, max(30.0, s.requests * 0.02), watch)
    print(f"  {target}: concurrency {s.concurrency}, {s.duration}s ...", flush=True)
    cn = concurrent_load(s, target, port, sid, version, modern, watch)
    return [c1, cn]


def gateway_log_findings(text: str) -> list[str]:
    """Lines of the gateway's log worth reporting: errors, warnings, tracebacks."""
    keep = []
    lines = text.splitlines()
    for i, line in enumerate(lines):
        if any(word in line for word in ("ERROR", "CRITICAL", "Traceback", "WARNING")):
            keep.append(line)
            if "Traceback" in line:
                keep.extend(lines[i + 1 : i + 30])
    return keep[:80]


def run_gateway(s: Settings, workdir: Path, upstream: Proc, upstream_port: int, workers: int,
                modern_too: bool, report: dict[str, Any]) -> list[Load]:
    label = f"gateway ({workers} worker{'s' if workers > 1 else ''})"
    info: dict[str, Any] = {"workers": workers, "errors": []}
    report["gateways"].append(info)
    loads: list[Load] = []
    print(f"starting {label} ...", flush=True)
    try:
        gateway, port, ready = start_gateway(workdir, upstream_port, workers, s.upstream_protocol)
    except GatewayFailed as exc:
        info["errors"].append(str(exc))
        exc.proc.stop()
        print(f"  FAILED: {exc}", flush=True)
        return loads
    try:
        info["readyz"] = ready
        info["rss_kb_idle"] = gateway.rss_kb()
        try:
            sid = handshake(port)
        except (RuntimeError, OSError) as exc:
            info["errors"].append(f"handshake: {exc}")
            print(f"  FAILED handshake: {exc}", flush=True)
            return loads
        status, text = probe_call(port, sid, LEGACY, False)
        if _answer_problem(status, text.encode()) is not None:
            info["errors"].append(f"first tools/call: HTTP {status} {text}")
            print(f"  first tools/call failed: HTTP {status} {text}", flush=True)
        watch = {"gateway": gateway, "upstream": upstream}
        loads += measure(s, label, port, sid, LEGACY, False, watch)
        info["rss_kb_after"] = gateway.rss_kb()
        if modern_too:
            loads += run_modern(s, port, upstream, upstream_port, gateway, report)
        if not gateway.alive():
            info["errors"].append(f"gateway exited during the run (code {gateway.popen.returncode})")
    finally:
        gateway.stop()
        info["shutdown"] = gateway.exit_note
        if "NOT" in gateway.exit_note:
            info["errors"].append(f"shutdown: {gateway.exit_note}")
        info["log_findings"] = gateway_log_findings(gateway.log_text())
    return loads


def run_modern(s: Settings, port: int, upstream: Proc, upstream_port: int, gateway: Proc,
               report: dict[str, Any]) -> list[Load]:
    status, text = probe_call(port, None, MODERN, True)
    modern: dict[str, Any] = {"probe_status": status, "probe_body": text}
    report["modern"] = modern
    if status == 400:
        modern["supported"] = False
        print(f"  2026-07-28 client: not supported by this gateway build (HTTP 400 {text})", flush=True)
        return []
    if _answer_problem(status, text.encode()) is not None:
        modern["supported"] = False
        modern["error"] = f"HTTP {status} {text}"
        print(f"  2026-07-28 client: unexpected answer HTTP {status} {text}", flush=True)
        return []
    modern["supported"] = True
    loads = measure(s, "direct upstream (2026-07-28)", upstream_port, None, MODERN, True, {"upstream": upstream})
    loads += measure(s, "gateway (1 worker, 2026-07-28)", port, None, MODERN, True,
                     {"gateway": gateway, "upstream": upstream})
    return loads


# -- report --------------------------------------------------------------------------------------------


def _mb(kb: int) -> str:
    return f"{kb / 1024:.1f} MB"


def print_report(loads: list[Load], report: dict[str, Any], s: Settings) -> None:
    print()
    print(f"tools/call echo, {s.requests} sequential calls at c=1; {s.duration}s at c={s.concurrency} "
          f"(client: {loads[1].client if len(loads) > 1 else '?'}); gateway->upstream era {s.upstream_protocol}")
    if report.get("client_note"):
        print(f"NOTE: {report['client_note']}")
    header = f"{'target':<32} {'c':>3} {'calls':>7} {'errors':>6} {'req/s':>8} {'p50 ms':>7} {'p90 ms':>7} " \
             f"{'p99 ms':>7} {'mean ms':>7} {'max ms':>7}  CPU us/call"
    print(header)
    print("-" * len(header))
    for x in loads:
        cpu = ", ".join(f"{k} {v:.0f}" for k, v in x.cpu_us_per_call.items())
        print(f"{x.target:<32} {x.concurrency:>3} {x.requests:>7} {x.errors:>6} {x.rps:>8.0f} {x.p50_ms:>7.3f} "
              f"{x.p90_ms:>7.3f} {x.p99_ms:>7.3f} {x.mean_ms:>7.3f} {x.max_ms:>7.2f}  {cpu}")
    print()
    by = {(x.target, x.concurrency): x for x in loads}
    summary: dict[str, Any] = {}
    for label, direct_label in _pairs(loads):
        d1, g1 = by.get((direct_label, 1)), by.get((label, 1))
        dn, gn = by.get((direct_label, s.concurrency)), by.get((label, s.concurrency))
        entry: dict[str, Any] = {}
        print(f"{label} vs {direct_label}:")
        if d1 and g1 and g1.requests:
            dp50, dp99 = g1.p50_ms - d1.p50_ms, g1.p99_ms - d1.p99_ms
            entry |= {"added_p50_ms": dp50, "added_p99_ms": dp99}
            print(f"  c=1   added latency p50 {dp50:+.3f} ms (budget +{BUDGET_P50_MS}) "
                  f"{'ok' if dp50 <= BUDGET_P50_MS else 'OVER BUDGET'}; "
                  f"p99 {dp99:+.3f} ms (budget +{BUDGET_P99_MS}) {'ok' if dp99 <= BUDGET_P99_MS else 'OVER BUDGET'}; "
                  f"mean {g1.mean_ms - d1.mean_ms:+.3f} ms")
        if dn and gn and dn.rps:
            ratio = gn.rps / dn.rps
            workers = int(label.split("(")[1].split()[0]) if "(" in label else 1
            per_worker = gn.ok / gn.duration_s / workers if gn.duration_s else 0.0
            entry |= {"throughput_ratio": ratio, "ok_rps_per_worker": per_worker}
            print(f"  c={s.concurrency}  throughput {gn.rps:.0f}/s = {ratio:.2f}x direct ({dn.rps:.0f}/s); "
                  f"{per_worker:.0f} good calls/s per worker (budget >= {BUDGET_RPS_PER_WORKER}) "
                  f"{'ok' if per_worker >= BUDGET_RPS_PER_WORKER else 'UNDER BUDGET'}; "
                  f"added p50 {gn.p50_ms - dn.p50_ms:+.2f} ms, p99 {gn.p99_ms - dn.p99_ms:+.2f} ms")
        summary[label] = entry
    report["summary"] = summary
    for info in report["gateways"]:
        w = info["workers"]
        idle, after = info.get("rss_kb_idle", {}), info.get("rss_kb_after", {})
        if after:
            parts = " + ".join(_mb(v) for v in after.values())
            print(f"RSS gateway --workers {w}: {_mb(sum(idle.values()))} after start, {_mb(sum(after.values()))} "
                  f"after the load ({len(after)} process{'es' if len(after) > 1 else ''}: {parts})")
        if info.get("shutdown"):
            print(f"    shutdown: gateway {info['shutdown']}")
    modern = report.get("modern")
    if modern is not None and not modern.get("supported"):
        print(f"2026-07-28 client: not supported by this gateway build "
              f"(HTTP {modern['probe_status']} {modern['probe_body']})")
    problems = [x for x in loads if x.errors or x.note]
    for x in problems:
        print(f"ERRORS {x.target} c={x.concurrency}: {x.errors} of {x.requests} answers bad "
              f"(http {x.http_errors} {x.statuses or ''}, json-rpc {x.rpc_errors}, socket {x.socket_errors}) {x.note}")
        for sample in x.bad_samples:
            print(f"    {sample}")
    for info in report["gateways"]:
        for err in info["errors"]:
            print(f"GATEWAY PROBLEM (--workers {info['workers']}): {err}")
        if info.get("log_findings"):
            print(f"gateway --workers {info['workers']} log (warnings/errors):")
            for line in info["log_findings"]:
                print(f"    {line}")
    print("\nThe machine is noisy: compare gateway against direct from the same run, not across runs.")


def _pairs(loads: list[Load]) -> list[tuple[str, str]]:
    pairs, seen = [], set()
    for x in loads:
        if x.target.startswith("gateway") and x.target not in seen:
            seen.add(x.target)
            modern = "2026-07-28" in x.target
            pairs.append((x.target, "direct upstream (2026-07-28)" if modern else "direct upstream"))
    return pairs


def compare_clients(s: Settings, workdir: Path) -> None:
    """Direct-upstream throughput with each load generator: the one that reaches highest is least in the way."""
    upstream, port = start_upstream(workdir)
    try:
        sid = handshake(port)
        rows = []
        watch = {"upstream": upstream}
        candidates: list[tuple[str, Any]] = []
        if shutil.which("wrk"):
            for t in (1, 2):
                candidates.append((f"wrk -t{t}", lambda t=t: wrk_load("direct", port, sid, LEGACY, False,
                                                                      s.concurrency, s.duration, t, watch)))
        for p in sorted({1, 2, max(2, os.cpu_count() or 2)}):
            candidates.append((f"aiohttp x{p}", lambda p=p: python_load("direct", port, sid, LEGACY, False,
                                                                        s.concurrency, s.duration, p, watch)))
        for name, fn in candidates:
            print(f"  {name} ...", flush=True)
            rows.append((name, fn()))
        print(f"\ndirect upstream, c={s.concurrency}, {s.duration}s each:")
        for name, x in rows:
            print(f"  {name:<14} {x.rps:>8.0f} req/s  p50 {x.p50_ms:.2f} ms  p99 {x.p99_ms:.2f} ms  "
                  f"upstream CPU {x.cpu_us_per_call.get('upstream', 0):.0f} us/call  errors {x.errors}")
    finally:
        upstream.stop()


def main() -> int:
    parser = argparse.ArgumentParser(description="Benchmark tools/call: direct upstream vs through mcp-gateway.")
    parser.add_argument("--duration", type=int, default=8, help="seconds of each concurrent load (default 8)")
    parser.add_argument("--requests", type=int, default=3000, help="sequential calls at concurrency 1 (default 3000)")
    parser.add_argument("--warmup", type=int, default=300, help="calls before each concurrency-1 measurement")
    parser.add_argument("--concurrency", type=int, default=32, help="concurrent calls in the throughput runs")
    parser.add_argument("--workers-run", action="store_true", help="also measure `--workers 2`")
    parser.add_argument("--modern", action="store_true", help="also measure a 2026-07-28 client (no session)")
    parser.add_argument("--upstream-protocol", default=LEGACY, choices=[LEGACY, MODERN, "auto"],
                        help="the era the gateway speaks to the upstream (default 2025-11-25)")
    parser.add_argument("--client", choices=["auto", "wrk", "python"], default="auto",
                        help="concurrent load generator (auto: wrk if installed)")
    parser.add_argument("--wrk-threads", type=int, default=2)
    parser.add_argument("--client-procs", type=int, default=max(2, os.cpu_count() or 2),
                        help="aiohttp client processes when wrk is not used")
    parser.add_argument("--compare-clients", action="store_true",
                        help="only measure each load generator against the direct upstream, then exit")
    parser.add_argument("--json", metavar="FILE", help="write all results as JSON")
    args = parser.parse_args()
    if not (1 <= args.duration <= 120 and 1 <= args.requests <= 200_000 and 1 <= args.concurrency <= 1024):
        parser.error("--duration 1..120, --requests 1..200000, --concurrency 1..1024")

    has_wrk = shutil.which("wrk") is not None
    client = args.client if args.client != "auto" else ("wrk" if has_wrk else "python")
    if client == "wrk" and not has_wrk:
        parser.error("--client wrk: wrk is not installed (apt-get install -y wrk)")
    s = Settings(args.duration, args.requests, args.warmup, args.concurrency, client, args.wrk_threads,
                 args.client_procs, args.upstream_protocol)
    report: dict[str, Any] = {
        "settings": asdict(s),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()},
        "gateways": [],
    }
    if client == "python":
        report["client_note"] = (
            ("wrk is not installed, so " if not has_wrk else "")
            + f"concurrent load comes from {s.client_procs} Python aiohttp processes, which on a small machine "
            "cap below the upstream's capacity: direct numbers are then client-bound and the gateway/direct "
            "throughput ratio looks better than it is. Install wrk (apt-get install -y wrk) for real numbers."
        )
        print(f"NOTE: {report['client_note']}", flush=True)

    with tempfile.TemporaryDirectory(prefix="mcp-bench-") as tmp:
        workdir = Path(tmp)
        if args.compare_clients:
            compare_clients(s, workdir)
            return 0
        started = time.monotonic()
        print("starting fast_upstream ...", flush=True)
        upstream, upstream_port = start_upstream(workdir)
        loads: list[Load] = []
        try:
            sid = handshake(upstream_port)
            loads += measure(s, "direct upstream", upstream_port, sid, LEGACY, False, {"upstream": upstream})
            loads += run_gateway(s, workdir, upstream, upstream_port, 1, args.modern, report)
            if args.workers_run:
                loads += run_gateway(s, workdir, upstream, upstream_port, 2, False, report)
        finally:
            upstream.stop()
        report["elapsed_s"] = time.monotonic() - started
    # Order the table: every c=1 row, then every concurrent row.
    loads.sort(key=lambda x: (x.concurrency, "2026-07-28" in x.target))
    print_report(loads, report, s)
    print(f"(total {report['elapsed_s']:.0f}s)")
    if args.json:
        report["loads"] = [asdict(x) | {"errors": x.errors} for x in loads]
        Path(args.json).write_text(json.dumps(report, indent=2))
        print(f"results written to {args.json}")
    failed = any(info["errors"] for info in report["gateways"]) or any(x.errors for x in loads)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
