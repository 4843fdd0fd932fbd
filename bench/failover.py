#!/usr/bin/env python3
"""Failover benchmark: the same lab scenario with the agents haven replaces
(ocf:heartbeat:IPaddr2 + ocf:heartbeat:Filesystem) and with haven's (vip +
filesystem), under a real Pacemaker + Corosync cluster (`haven lab`).

Each run brings up a three-node lab (examples/lab-web-heartbeat.toml or
examples/lab-web.toml: volume, address, web server in one group on lab1),
powers lab1 off, and measures the time from the poweroff to the first
successful HTTP request of the lab's client through the VIP (`haven lab
fail lab1 poweroff --measure`). Then it reads the start time of each agent
on the new node from Pacemaker's operation history (exec-time), to show
each agent's share of the failover, and tears the lab down. The variants
alternate run by run, so both see the same machine. Medians are printed.

Standard library only (Python 3.11). Must run as root. See bench/README.md.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
VIP = "198.51.100.100:80"
VARIANTS = [
    ("IPaddr2+Filesystem", REPO / "examples" / "lab-web-heartbeat.toml"),
    ("haven", REPO / "examples" / "lab-web.toml"),
]
GROUP = ["web-fs", "web-ip", "web"]


def lab(haven: Path, *args: str, check: bool = True, timeout: float = 180) -> str:
    p = subprocess.run([str(haven), "lab", *args], capture_output=True, text=True, timeout=timeout)
    if check and p.returncode != 0:
        raise RuntimeError(f"haven lab {' '.join(args)} failed:\n{p.stdout}{p.stderr}")
    return p.stdout


def start_times(haven: Path, node: str) -> dict[str, float] | None:
    """exec-time (ms) of the last successful start of each group member on node."""
    out = lab(haven, "exec", node, "--", "crm_mon", "--output-as=xml", "--include=operations", check=False)
    try:
        root = ET.fromstring(out)
    except ET.ParseError:
        return None
    times: dict[str, float] = {}
    for n in root.iter("node"):
        if n.get("name") != node:
            continue
        for rh in n.iter("resource_history"):
            for op in rh.iter("operation_history"):
                if op.get("task") == "start" and op.get("rc") == "0":
                    ms = re.match(r"(\d+)ms", op.get("exec-time", ""))
                    if ms:
                        times[rh.get("id", "")] = float(ms.group(1))
    return times if all(r in times for r in GROUP) else None


def one_run(haven: Path, description: Path) -> tuple[float, dict[str, float]]:
    lab(haven, "down")
    try:
        lab(haven, "up", str(description))
        out = lab(haven, "fail", "lab1", "poweroff", "--measure", VIP)
        m = re.search(r"again ([0-9.]+) s after", out)
        if not m:
            raise RuntimeError(f"no measurement in: {out}")
        failover = float(m.group(1))
        # The new node's start history (bounded wait: it is written when
        # the last start ends, which the client already saw).
        deadline = time.monotonic() + 30
        shares: dict[str, float] | None = None
        while shares is None and time.monotonic() < deadline:
            for node in ("lab2", "lab3"):
                shares = start_times(haven, node)
                if shares:
                    break
            else:
                time.sleep(0.3)
        return failover, shares or {}
    finally:
        lab(haven, "down", check=False)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=3, help="runs per variant (default 3)")
    ap.add_argument("--haven", type=Path, default=REPO / "target" / "release" / "haven")
    args = ap.parse_args()
    if os.geteuid() != 0:
        print("bench/failover.py: run as root", file=sys.stderr)
        return 1
    if not args.haven.exists():
        print(f"bench/failover.py: {args.haven} is missing: cargo build --release", file=sys.stderr)
        return 1
    results: dict[str, list[tuple[float, dict[str, float]]]] = {name: [] for name, _ in VARIANTS}
    for i in range(args.runs):
        for name, description in VARIANTS:
            failover, shares = one_run(args.haven, description)
            results[name].append((failover, shares))
            detail = " ".join(f"{r}={shares.get(r, float('nan')):.0f}ms" for r in GROUP)
            print(f"run {i + 1}/{args.runs} {name:<20} poweroff -> answer {failover:6.2f} s   starts: {detail}", flush=True)
    print()
    print(f"{'agents':<20} {'failover (median)':>18} " + " ".join(f"{r + ' start':>16}" for r in GROUP))
    medians: dict[str, float] = {}
    for name, _ in VARIANTS:
        runs = results[name]
        med = statistics.median(f for f, _ in runs)
        medians[name] = med
        cells = []
        for r in GROUP:
            vals = [s[r] for _, s in runs if r in s]
            if vals:
                ms = statistics.median(vals)
                cells.append(f"{ms:7.0f} ms {100 * ms / 1000 / med:4.1f}%")
            else:
                cells.append(f"{'n/a':>16}")
        print(f"{name:<20} {med:16.2f} s " + " ".join(f"{c:>16}" for c in cells))
    ref, ours = medians[VARIANTS[0][0]], medians[VARIANTS[1][0]]
    print(f"\nratio {VARIANTS[0][0]}/haven: {ref / ours:.2f} (failover time, median of {args.runs} runs each)")
    print("The rest of the failover is Pacemaker's: corosync token loss (1 s), fencing, the new transition.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
