"""The processes a benchmark run starts: the fast upstream and the gateway, with RSS and CPU accounting.

Everything here binds 127.0.0.1 only, waits with a deadline, and stops what it started by pid.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from client import HOST  # the only address the benchmark ever binds or calls

BENCH = Path(__file__).resolve().parent
_NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # loopback never goes via a proxy


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

    def cpu_ticks(self) -> dict[int, int]:
        """CPU time (user + system, clock ticks) of each process of the tree."""
        return {pid: _cpu_ticks(pid) for pid in self.tree()}

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


def start_auth_server(workdir: Path) -> tuple[Proc, str]:
    """The test suite's OAuth server (tests/support/oauth_server.py): it issues the JWT the load sends."""
    proc = Proc(
        "oauth",
        [sys.executable, str(BENCH.parent / "tests" / "support" / "oauth_server.py"), "--port", "0"],
        workdir / "oauth.log",
        capture_stdout=True,
    )
    assert proc.popen.stdout is not None
    line = proc.popen.stdout.readline().decode()
    if not line.startswith("READY"):
        proc.stop()
        raise SystemExit(f"oauth_server did not start:\n{proc.log_text()[-2000:]}")
    return proc, line.split()[1]


def start_gateway(
    workdir: Path,
    upstream_port: int,
    workers: int,
    protocol: str,
    issuer: str | None = None,
    policy_dir: Path | None = None,
    traces: str | None = None,
) -> tuple[Proc, int, str]:
    """Start `mcp-gateway serve` and wait for /readyz 200. Returns (process, port, readyz body).
    `traces`: an OTLP/HTTP endpoint to send spans to (tracing on)."""
    port = _free_port()
    suffix = ("-jwt" if issuer else "") + ("-policy" if policy_dir else "") + ("-traced" if traces else "")
    config = workdir / f"gateway-w{workers}{suffix}.yaml"
    auth = f"auth:\n  issuers:\n    - issuer: {issuer}" if issuer else "auth:\n  allow_anonymous: true"
    if policy_dir is not None:
        auth += f"\npolicies:\n  dir: {policy_dir}"
    if traces is not None:
        auth += f"\ntelemetry:\n  tracing: {{exporter: otlp-http, endpoint: '{traces}'}}"
    config.write_text(
        f"""server:
  host: {HOST}
  port: {port}
  drain_timeout: 2
{auth}
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
            raise GatewayFailed(
                f"gateway exited with code {proc.popen.returncode} before /readyz:\n{proc.log_text()[-3000:]}", proc
            )
        try:
            with _NO_PROXY.open(f"http://{HOST}:{port}/readyz", timeout=2) as response:
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


def start_otlp_receiver(workdir: Path) -> tuple[Proc, str]:
    """An OTLP sink (bench/otlp_sink.py) as a process: where traced runs send spans. It discards them, as a
    collector on another machine would cost this box nothing."""
    port = _free_port()
    argv = [sys.executable, str(BENCH / "otlp_sink.py"), "--port", str(port)]
    proc = Proc("otlp-sink", argv, workdir / "otlp-sink.log")
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if "READY" in proc.log_text():
            return proc, f"http://{HOST}:{port}"
        if not proc.alive():
            break
        time.sleep(0.1)
    proc.stop()
    raise RuntimeError(f"the OTLP receiver did not start:\n{proc.log_text()[-2000:]}")
