#!/usr/bin/env python3
"""Health-check scale of haven's director: N real servers (N = 100, 1000,
10000) answering on loopback addresses inside a throwaway network
namespace, one round of negotiate (HTTP) checks, wall time, CPU and peak
memory of the checker. ldirectord needs IPVS (ipvsadm) to run at all; where
the kernel has none, the row says so instead of a number.

Usage (as root, after cargo build --release):
    python3 bench/director.py [--haven PATH] [--sizes 100,1000,10000] [--check]
"""

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from lab_helpers import BenchError, ip, require_tools

ROOT = Path(__file__).resolve().parent.parent
PORT = 8080
WALL_TARGET_S = 1.0
RSS_TARGET_MIB = 50.0

NGINX_CONF = """
worker_processes 2;
pid {dir}/nginx.pid;
error_log {dir}/error.log;
events {{ worker_connections 4096; }}
http {{
  access_log off;
  client_body_temp_path {dir};
  proxy_temp_path {dir};
  fastcgi_temp_path {dir};
  uwsgi_temp_path {dir};
  scgi_temp_path {dir};
  server {{
    listen {port} reuseport backlog=4096;
    location / {{ return 200 "still alive\\n"; }}
  }}
}}
"""


def addr(i: int) -> str:
    # 127.1.0.1 ... : every real server its own loopback address.
    return f"127.{1 + i // 62500}.{(i // 250) % 250}.{i % 250 + 1}"


def config(n: int) -> str:
    lines = ["checktimeout = 5", "negotiatetimeout = 5", "virtual = 198.51.100.10:80"]
    lines += [f"\treal = {addr(i)}:{PORT} masq" for i in range(n)]
    lines += ["\tservice = http", '\trequest = "index.html"', '\treceive = "still alive"']
    return "\n".join(lines) + "\n"


def run_round(ns: str, haven: str, cfg: Path) -> tuple[float, float, float, str]:
    """Wall seconds (as the checker reports), CPU seconds, peak RSS MiB."""
    p = subprocess.Popen(["ip", "netns", "exec", ns, haven, "director", "round", "--config", str(cfg)],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    _, status, ru = os.wait4(p.pid, 0)
    out = p.stdout.read() if p.stdout else ""
    err = p.stderr.read() if p.stderr else ""
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"haven director round failed: {err.strip()}")
    # "round: N real servers checked in S s, U up"
    words = out.split()
    wall = float(words[words.index("in") + 1])
    return wall, ru.ru_utime + ru.ru_stime, ru.ru_maxrss / 1024.0, out.strip()


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--haven", default=str(ROOT / "target/release/haven"))
    ap.add_argument("--sizes", default="100,1000,10000")
    ap.add_argument("--check", action="store_true", help="exit 1 when the 10,000 target is missed")
    args = ap.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("run as root (network namespaces)")
    try:
        require_tools((("ip", "iproute2"), ("nginx", "nginx-light")))
    except BenchError as e:
        raise SystemExit(str(e))
    if not Path(args.haven).exists():
        raise SystemExit(f"{args.haven} does not exist: cargo build --release first")
    sizes = [int(s) for s in args.sizes.split(",")]
    ns = f"hvbench-dir-{os.getpid()}"
    tmp = Path(tempfile.mkdtemp(prefix="hvbench-dir-"))
    nginx = None
    ip("netns", "add", ns)
    missed = []
    try:
        ip("-n", ns, "link", "set", "lo", "up")
        (tmp / "nginx.conf").write_text(NGINX_CONF.format(dir=tmp, port=PORT))
        nginx = subprocess.Popen(["ip", "netns", "exec", ns, "nginx", "-c", str(tmp / "nginx.conf"), "-g", "daemon off;"],
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        time.sleep(0.5)
        ipvs = Path("/proc/net/ip_vs").exists()
        print(f"kernel: {os.uname().release}; real servers: one nginx on 0.0.0.0:{PORT} answering every 127.x.y.z address")
        print(f"{'real servers':>12} {'round wall s':>13} {'CPU s':>8} {'peak RSS MiB':>13} {'ldirectord':>24}")
        for n in sizes:
            cfg = tmp / f"bench-{n}.cf"
            cfg.write_text(config(n))
            wall, cpu, rss, line = run_round(ns, args.haven, cfg)
            if f"{n} up" not in line:
                raise SystemExit(f"not every real server passed: {line}")
            other = "needs IPVS (absent here)" if not ipvs else "not measured"
            print(f"{n:>12} {wall:>13.3f} {cpu:>8.3f} {rss:>13.1f} {other:>24}")
            if n == 10000 and (wall >= WALL_TARGET_S or rss >= RSS_TARGET_MIB):
                missed.append(f"10,000 real servers: {wall:.3f} s, {rss:.1f} MiB")
        print(f"target: 10,000 real servers in under {WALL_TARGET_S:.0f} s per round, under {RSS_TARGET_MIB:.0f} MiB resident")
        print("TARGET MISSED: " + "; ".join(missed) if missed else "target met" if 10000 in sizes else "")
    finally:
        if nginx is not None:
            try:
                os.killpg(nginx.pid, 15)
            except ProcessLookupError:
                pass
            nginx.wait(timeout=10)
        ip("netns", "del", ns, check=False)
        shutil.rmtree(tmp, ignore_errors=True)
    return 1 if (missed and args.check) else 0


if __name__ == "__main__":
    sys.exit(main())
