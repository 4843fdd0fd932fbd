#!/usr/bin/env python3
"""`haven generate` at scale: a 200-node, 1,000-service RHCS description
(one IPMI board per node, ordered and restricted failover domains of three
nodes, services of an address and an LSB script) through --check and every
output format. Prints the time of each step and the size of each output;
the targets (under 1 s per format, a CIB under 2 MB) are printed with a
verdict, not asserted (DESIGN: performance is measured, never asserted).

The description is the one tests/integration/generate.rs builds
(scale_description); keep the two in step.
"""
from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def description(nodes: int, services: int) -> str:
    t = ['[cluster]\nname = "scale"\nstacks = ["pacemaker", "rhcs"]\n']
    for n in range(1, nodes + 1):
        t.append(f'\n[[node]]\nname = "node{n}"\n')
    for n in range(1, nodes + 1):
        t.append(
            f'\n[[fencing.device]]\nid = "ipmi{n}"\nagent = "fence_ipmilan"\nhosts = ["node{n}"]\n'
            f'params = {{ ip = "203.0.113.{n % 250 + 1}", username = "fence" }}\n'
        )
    domains = nodes // 2
    for d in range(domains):
        members = ", ".join(
            f'{{ name = "node{(d * 2 + k) % nodes + 1}", priority = {k + 1} }}' for k in range(3)
        )
        t.append(
            f'\n[[failover_domain]]\nname = "dom{d}"\nordered = true\nrestricted = true\nnodes = [{members}]\n'
        )
    for i in range(services):
        t.append(
            f'\n[[resource]]\nid = "ip{i}"\nagent = "ocf:haven:vip"\n'
            f'params = {{ ip = "2001:db8::{i + 1:x}", cidr_netmask = 64 }}\n\n'
            f'[[resource]]\nid = "app{i}"\nagent = "lsb:app{i}"\n\n'
            f'[[service]]\nname = "svc{i}"\ndomain = "dom{i % domains}"\nrecovery = "relocate"\n'
            f'resources = ["ip{i}", "app{i}"]\n'
        )
    return "".join(t)


def timed(argv: list[str], runs: int) -> tuple[float, int]:
    """Median wall time of `runs` runs, and the size of the output."""
    times, size = [], 0
    for _ in range(runs):
        start = time.perf_counter()
        out = subprocess.run(argv, check=True, capture_output=True, timeout=120)
        times.append(time.perf_counter() - start)
        size = len(out.stdout)
    return statistics.median(times), size


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--haven", type=Path, default=ROOT / "target/release/haven")
    p.add_argument("--nodes", type=int, default=200)
    p.add_argument("--services", type=int, default=1000)
    p.add_argument("--runs", type=int, default=3)
    a = p.parse_args()
    haven = a.haven if a.haven.exists() else ROOT / "target/debug/haven"
    with tempfile.TemporaryDirectory(prefix="haven-gen-bench-") as tmp:
        toml = Path(tmp) / "scale.toml"
        toml.write_text(description(a.nodes, a.services))
        print(f"generate bench: {a.nodes} nodes, {a.services} services ({toml.stat().st_size} bytes of TOML), {haven}")
        # First run: installed agents' meta-data looked up (and cached for
        # the process); every later number is with the cache warm.
        rows = [("--check", [str(haven), "generate", "--check", str(toml)])]
        for fmt in ["cib", "crm", "pcs", "cluster.conf"]:
            rows.append((fmt, [str(haven), "generate", "--format", fmt, str(toml)]))
        worst, cib_size = 0.0, 0
        for name, argv in rows:
            secs, size = timed(argv, a.runs)
            worst = max(worst, secs)
            if name == "cib":
                cib_size = size
            print(f"  {name:13} {secs * 1000:8.1f} ms  {size / 1e6:6.2f} MB")
        print(f"  slowest step {worst * 1000:.0f} ms (target < 1000 ms): {'ok' if worst < 1 else 'SLOW'}")
        print(f"  CIB {cib_size / 1e6:.2f} MB (target < 2 MB): {'ok' if cib_size < 2e6 else 'TOO BIG'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
