"""Where a gateway worker spends its CPU under load: py-spy samples the gateway while wrk drives
`tools/call` at concurrency 32, then the hottest functions are printed by own time and by inclusive time.

    pip install py-spy && apt-get install -y wrk
    python bench/profile.py [--tracing] [--policy] [--seconds 10] [--top 40] [--native] [--gil]

Same processes as `run.py` (fast upstream, generated config, 127.0.0.1 only, everything stopped at the end).
py-spy's sampling slows the worker a little; read shares, not absolute speed.
"""

from __future__ import annotations

import argparse
import collections
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from client import LEGACY, handshake
from loadgen import wrk_load
from procs import start_gateway, start_otlp_receiver, start_upstream
from run import write_policy


def _frame(text: str) -> str:
    # py-spy raw frames look like "function (path/to/file.py:123)": keep function and file, drop the line.
    name, _, where = text.partition(" (")
    return f"{name} ({where.split(':', 1)[0].rsplit('/', 2)[-1]})" if where else name


def summarise(raw: Path, top: int) -> None:
    own: collections.Counter[str] = collections.Counter()
    inclusive: collections.Counter[str] = collections.Counter()
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = [_frame(f) for f in stack.split(";")]
        total += count
        own[frames[-1]] += count
        for frame in set(frames):
            inclusive[frame] += count
    if not total:
        print("py-spy recorded no samples")
        return
    for title, counter in (("own time", own), ("inclusive time", inclusive)):
        print(f"\n{title} ({total} samples)")
        for frame, count in counter.most_common(top):
            print(f"  {100 * count / total:5.1f}%  {frame}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tracing", action="store_true", help="tracing on, OTLP/HTTP to a discarding sink")
    parser.add_argument("--policy", action="store_true", help="the realistic policy of run.py --policy-run")
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--top", type=int, default=40)
    parser.add_argument("--native", action="store_true", help="also sample C frames (py-spy --native)")
    parser.add_argument(
        "--gil", action="store_true", help="only the thread holding the GIL (py-spy --gil): CPU, not waits"
    )
    args = parser.parse_args()
    if not shutil.which("py-spy") or not shutil.which("wrk"):
        print("needs py-spy (pip install py-spy) and wrk (apt-get install wrk)")
        return 2
    workdir = Path(tempfile.mkdtemp(prefix="mcp-gw-profile-"))
    started = []
    try:
        upstream, upstream_port = start_upstream(workdir)
        started.append(upstream)
        traces = None
        if args.tracing:
            sink, traces = start_otlp_receiver(workdir)
            started.append(sink)
        policy_dir = write_policy(workdir) if args.policy else None
        gateway, port, _ = start_gateway(workdir, upstream_port, 1, LEGACY, None, policy_dir, traces)
        started.append(gateway)
        sid = handshake(port)
        raw = workdir / "profile.txt"
        argv = ["py-spy", "record", "--format", "raw", "--rate", "250", "--duration", str(args.seconds)]
        argv += ["--output", str(raw), "--pid", str(gateway.pid), *(["--native"] if args.native else [])]
        argv += ["--gil"] if args.gil else []
        print(f"profiling the gateway (pid {gateway.pid}) for {args.seconds}s under wrk -c32 ...", flush=True)
        spy = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        time.sleep(0.5)
        load = wrk_load("gateway", port, sid, LEGACY, False, 32, args.seconds, 1, {"gateway": gateway}, warmup=0)
        _, err = spy.communicate(timeout=args.seconds + 60)
        if spy.returncode != 0:
            print(f"py-spy failed: {err.decode(errors='replace')[-1000:]}")
            return 1
        print(f"{load.ok} good answers of {load.requests}, {load.rps:.0f}/s while sampled")
        summarise(raw, args.top)
        return 0
    finally:
        for proc in reversed(started):
            proc.stop()


if __name__ == "__main__":
    raise SystemExit(main())
