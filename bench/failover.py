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
each agent's share of the failover against the 1% line (issue 16; for the
instance agent its own cost, the start less its service's startup, which
the agent logs as "ready in N ms"; both are printed), which node was the
DC before the poweroff, and the phases of
the failover from
the survivors' Corosync and Pacemaker logs (token loss, consensus, the
controller's reaction, its CIB re-query, fencing, the recovery transition,
the client's retry), and tears the lab down. The variants alternate run by
run, so both see the same machine; besides the medians, each round's pair
(one run of each, back to back) is compared, and the part the agents can
change (recovery transition and client retry) is printed apart from
Corosync's and Pacemaker's phases, whose run-to-run noise is larger than
the agents' difference.

Standard library only (Python 3.11). Must run as root. See bench/README.md.
"""

from __future__ import annotations

import argparse
import datetime
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


# The instance agent logs each service's startup (its exec to its probe
# passing): "service http started (pid 123, ready in 150 ms)". Pacemaker
# copies the agent's stderr into the node's log.
READY = re.compile(r"service \S+ started \(pid \d+, ready in (\d+) ms\)")
SERVICE = "web"
# Every agent's start at most this share of the failover (issue 16).
LINE = 0.01


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


LAB_NODES = Path("/var/lib/haven-lab/nodes")
# (phase name, the log line that ends it), in failover order; each phase
# runs from the previous one's end (the first from the poweroff).
MARKS = [
    ("token loss", re.compile(r"A processor failed, forming new configuration")),
    ("consensus", re.compile(r"A new membership .* was formed\. Members left")),
    # The DC's controller asks for a scheduler run (after a DC election
    # and join when the lost node was the DC).
    ("controller reacts", re.compile(r"State transition \S+ -> S_POLICY_ENGINE")),
    # The scheduler decides to fence. In between, the controller queries
    # the CIB for the scheduler's input; when its own node-state updates
    # for the lost node are still in flight (nearly always: they go to
    # every node, the query is local), pacemaker-controld sleeps a fixed
    # second and asks again (do_pe_invoke_callback, "Re-asking for the
    # CIB: N other peer updates still pending", debug level). No option
    # governs it (see README: lab timings).
    ("CIB re-query", re.compile(r"Cluster node lab1 will be fenced")),
    ("fencing", re.compile(r"Operation '\w+' targeting lab1 by \S+ for .*: OK")),
    ("recovery transition", re.compile(r"Result of start operation for web on lab[23]: ok")),
]
PHASES = [m[0] for m in MARKS] + ["client retry"]
STAMP = re.compile(r"^(\w{3} +\d+ \d\d:\d\d:\d\d(?:\.\d+)?)")


def stamp(line: str, year: int) -> float | None:
    m = STAMP.match(line)
    if not m:
        return None
    text = m.group(1)
    fmt = "%Y %b %d %H:%M:%S.%f" if "." in text else "%Y %b %d %H:%M:%S"
    try:
        return datetime.datetime.strptime(f"{year} {' '.join(text.split())}", fmt).timestamp()
    except ValueError:
        return None


def phases(t0: float, answered: float) -> dict[str, float]:
    """Seconds per phase, from the survivors' logs (first occurrence after t0)."""
    year = datetime.datetime.now().year
    seen: dict[str, float] = {}
    for node in ("lab2", "lab3"):
        for log in (LAB_NODES / node / "log-corosync" / "corosync.log", LAB_NODES / node / "log-pacemaker" / "pacemaker.log"):
            try:
                lines = log.read_text(errors="replace").splitlines()
            except OSError:
                continue
            for line in lines:
                t = stamp(line, year)
                # Log stamps may have whole seconds only: keep the second of t0.
                if t is None or t < int(t0):
                    continue
                for name, pattern in MARKS:
                    if pattern.search(line) and (name not in seen or t < seen[name]):
                        seen[name] = t
    out: dict[str, float] = {}
    prev = t0
    for name, _ in MARKS:
        if name in seen:
            end = max(seen[name], prev)
            out[name] = end - prev
            prev = end
    out["client retry"] = max(answered - prev, 0.0)
    return out


def current_dc(haven: Path) -> str:
    """The DC's name before the poweroff, printed with each run: losing the
    DC adds an election to the controller's reaction."""
    for node in ("lab2", "lab3", "lab1"):
        out = lab(haven, "exec", node, "--", "crm_mon", "--output-as=xml", check=False)
        try:
            dc = ET.fromstring(out).find("summary/current_dc")
        except ET.ParseError:
            continue
        if dc is not None and dc.get("name"):
            return dc.get("name", "?")
    return "?"


def service_startup(node: str, t0: float) -> float | None:
    """ms the instance's services took to get ready in the start on `node`
    after t0 (the sum over its services), from the agent's log lines."""
    year = datetime.datetime.now().year
    try:
        lines = (LAB_NODES / node / "log-pacemaker" / "pacemaker.log").read_text(errors="replace").splitlines()
    except OSError:
        return None
    total = None
    for line in lines:
        t = stamp(line, year)
        m = READY.search(line)
        if m and t is not None and t >= int(t0):
            total = (total or 0.0) + float(m.group(1))
    return total


def one_run(haven: Path, description: Path) -> tuple[float, dict[str, float], dict[str, float], str]:
    lab(haven, "down")
    try:
        lab(haven, "up", str(description))
        dc = current_dc(haven)
        t0 = time.time()
        out = lab(haven, "fail", "lab1", "poweroff", "--measure", VIP)
        m = re.search(r"again ([0-9.]+) s after", out)
        if not m:
            raise RuntimeError(f"no measurement in: {out}")
        failover = float(m.group(1))
        # The new node's start history (bounded wait: it is written when
        # the last start ends, which the client already saw).
        deadline = time.monotonic() + 30
        shares: dict[str, float] | None = None
        node = None
        while shares is None and time.monotonic() < deadline:
            for node in ("lab2", "lab3"):
                shares = start_times(haven, node)
                if shares:
                    break
            else:
                time.sleep(0.3)
        shares = shares or {}
        service = service_startup(node, t0) if shares and node else None
        if service is not None and SERVICE in shares:
            # The instance agent's own cost: its start less the time its
            # service took to get ready (the service's, not the agent's).
            shares[SERVICE + " service"] = service
            shares[SERVICE + " agent"] = max(shares[SERVICE] - service, 0.0)
        return failover, shares, phases(t0, t0 + failover), dc
    finally:
        lab(haven, "down", check=False)


def verdicts(results: dict[str, list[tuple[float, dict[str, float], dict[str, float]]]], medians: dict[str, float]) -> None:
    """Each agent's start against the line: at most 1% of the failover
    (median start / median failover). For the instance, the agent's own
    cost is judged; its service's startup is printed beside it."""
    print()
    for name, _ in VARIANTS:
        med = medians[name]
        print(f"{name}: each start against {100 * LINE:.0f}% of the failover ({1000 * LINE * med:.0f} ms of {med:.2f} s)")
        rows = [(r, r) for r in GROUP if r != SERVICE]
        rows += [(SERVICE + " agent", f"{SERVICE} (agent alone)"), (SERVICE + " service", f"{SERVICE}'s service startup")]
        rows.append((SERVICE, f"{SERVICE} (agent + service)"))
        for key, label in rows:
            vals = [s[key] for _, s, _ in results[name] if key in s]
            if not vals:
                print(f"    {label:<28} n/a")
                continue
            ms = statistics.median(vals)
            share = ms / 1000 / med
            if key == SERVICE + " service" or key == SERVICE:
                verdict = "the service's own startup, not an agent's" if key != SERVICE else "includes the service"
            else:
                verdict = "ok" if share <= LINE else "OVER the 1% line"
            print(f"    {label:<28} {ms:7.0f} ms {100 * share:5.2f}%   {verdict}")


# The phases the agents decide: the new node's starts, then the client's
# next try. The others are Corosync's and Pacemaker's.
AGENT_PHASES = ("recovery transition", "client retry")


def paired(results: dict[str, list[tuple[float, dict[str, float], dict[str, float]]]]) -> None:
    """Round by round (the two variants ran back to back, on the same
    load): the failover difference, and the agents' part of each run."""
    ref, ours = VARIANTS[0][0], VARIANTS[1][0]
    pairs = list(zip(results[ref], results[ours]))
    diffs = [o[0] - r[0] for r, o in pairs]
    wins = sum(d < 0 for d in diffs)
    print()
    print(f"per round, haven - {ref}: median {statistics.median(diffs):+.2f} s "
          f"(min {min(diffs):+.2f}, max {max(diffs):+.2f}); haven faster in {wins} of {len(diffs)} rounds")
    for name, _ in VARIANTS:
        part = [sum(ph.get(p, 0.0) for p in AGENT_PHASES) for _, _, ph in results[name]]
        rest = [f - a for (f, _, _), a in zip(results[name], part)]
        print(f"{name:<20} agents' part (recovery transition + client retry) median {statistics.median(part):.2f} s, "
              f"Corosync + Pacemaker before it median {statistics.median(rest):.2f} s "
              f"(min {min(rest):.2f}, max {max(rest):.2f})")
        # Bimodal: ~0.01-0.05 s when the controller's updates landed before
        # its query's answer, one second more when it slept.
        slept = sum(ph.get("CIB re-query", 0.0) > 0.5 for _, _, ph in results[name])
        print(f"{'':<20} the controller's fixed 1 s CIB re-query (phase > 0.5 s) in {slept} of {len(results[name])} runs")
    # Which runs drew the re-query is luck, and it moves a run by a second:
    # the medians split by it (every run is in one of the two).
    for label, hit in (("with", True), ("without", False)):
        cells = []
        for name, _ in VARIANTS:
            vals = [f for f, _, ph in results[name] if (ph.get("CIB re-query", 0.0) > 0.5) == hit]
            cells.append(f"{name} {statistics.median(vals):.2f} s ({len(vals)} runs)" if vals else f"{name} n/a (0 runs)")
        print(f"failover median, runs {label} the 1 s re-query: " + ", ".join(cells))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    # 7: with 5, one slow token loss (it varies by ~0.2 s on a loaded
    # machine) moved a median by more than the agents' whole difference.
    ap.add_argument("--runs", type=int, default=7, help="runs per variant (default 7)")
    ap.add_argument("--haven", type=Path, default=REPO / "target" / "release" / "haven")
    args = ap.parse_args()
    if os.geteuid() != 0:
        print("bench/failover.py: run as root", file=sys.stderr)
        return 1
    if not args.haven.exists():
        print(f"bench/failover.py: {args.haven} is missing: cargo build --release", file=sys.stderr)
        return 1
    results: dict[str, list[tuple[float, dict[str, float], dict[str, float]]]] = {name: [] for name, _ in VARIANTS}
    dc_lost: dict[str, int] = {name: 0 for name, _ in VARIANTS}
    for i in range(args.runs):
        for name, description in VARIANTS:
            failover, shares, phase, dc = one_run(args.haven, description)
            results[name].append((failover, shares, phase))
            dc_lost[name] += dc == "lab1"
            detail = " ".join(f"{r}={shares.get(r, float('nan')):.0f}ms" for r in GROUP)
            detail += f" ({SERVICE}: agent {shares.get(SERVICE + ' agent', float('nan')):.0f}ms"
            detail += f" + service startup {shares.get(SERVICE + ' service', float('nan')):.0f}ms)"
            steps = " ".join(f"{p}={phase[p]:.2f}" for p in PHASES if p in phase)
            print(f"run {i + 1}/{args.runs} {name:<20} poweroff -> answer {failover:6.2f} s   starts: {detail}", flush=True)
            print(f"    phases (s): {steps}   (DC before the poweroff: {dc})", flush=True)
    print()
    print(f"{'agents':<20} {'failover (median)':>18} " + " ".join(f"{r + ' start':>16}" for r in GROUP))
    medians: dict[str, float] = {}
    for name, _ in VARIANTS:
        runs = results[name]
        med = statistics.median(f for f, _, _ in runs)
        medians[name] = med
        cells = []
        for r in GROUP:
            vals = [s[r] for _, s, _ in runs if r in s]
            if vals:
                ms = statistics.median(vals)
                cells.append(f"{ms:7.0f} ms {100 * ms / 1000 / med:4.1f}%")
            else:
                cells.append(f"{'n/a':>16}")
        print(f"{name:<20} {med:16.2f} s " + " ".join(f"{c:>16}" for c in cells))
    print()
    print(f"{'phase (median s)':<20} " + " ".join(f"{n:>20}" for n, _ in VARIANTS))
    for p in PHASES:
        cells = []
        for name, _ in VARIANTS:
            vals = [ph[p] for _, _, ph in results[name] if p in ph]
            cells.append(f"{statistics.median(vals):20.2f}" if vals else f"{'n/a':>20}")
        print(f"{p:<20} " + " ".join(cells))
    paired(results)
    verdicts(results, medians)
    print()
    for name, _ in VARIANTS:
        print(f"{name}: the powered-off node was the DC in {dc_lost[name]} of {args.runs} runs")
    ref, ours = medians[VARIANTS[0][0]], medians[VARIANTS[1][0]]
    verdict = "haven faster" if ours < ref else "haven NOT faster"
    print(f"\nratio {VARIANTS[0][0]}/haven: {ref / ours:.2f} (failover time, median of {args.runs} runs each): {verdict}")
    print("The phases before the recovery transition are Corosync's and Pacemaker's (see README: lab timings).")
    return 0


if __name__ == "__main__":
    sys.exit(main())
