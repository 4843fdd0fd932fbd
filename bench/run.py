#!/usr/bin/env python3
"""Side-by-side benchmark: Debian's IPaddr2 against haven's vip agent.

Both agents do the same work on a virtual address inside a throwaway network
namespace; the script reports median wall and CPU time per action, the
processes each action forks (counted with strace) and the ratio
IPaddr2/haven. See bench/README.md.

Standard library only (Python 3.11). Must run as root.
"""

from __future__ import annotations

import argparse
import ctypes
import json
import os
import platform
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DEFAULT_HAVEN = REPO / "target" / "release" / "haven"
OCF_ROOT = "/usr/lib/ocf"
IPADDR2 = Path(OCF_ROOT) / "resource.d" / "heartbeat" / "IPaddr2"
HAVEN_RUN_DIR = Path("/run/haven/vip")  # where vip keeps per-namespace state

NET_A = "198.51.100.1/24"
NET_B = "198.51.100.2/24"
VIP = "198.51.100.50"
VIP_PREFIX = "24"

CHILD_TIMEOUT = 30  # seconds, for every process this script starts
SETUP_TIMEOUT = 30

AGENTS = ("IPaddr2", "haven")
# (row name, OCF action, monitor interval in ms, expected exit code)
ACTIONS = {
    "meta-data": ("meta-data", 0, 0),
    "validate-all": ("validate-all", 0, 0),
    "probe": ("monitor", 0, 7),
    "monitor": ("monitor", 10000, 0),
    "start": ("start", 0, 0),
    "stop": ("stop", 0, 0),
}
# Rows with a target: haven forks nothing and costs at least 20x less CPU.
TARGET_ROWS = ("meta-data", "validate-all", "probe", "monitor")
CPU_RATIO_TARGET = 20.0

EXIT_SETUP = 2
EXIT_AGENT = 3
EXIT_TARGET = 1


class BenchError(Exception):
    """A failure that aborts the run with a message (no traceback)."""

    def __init__(self, msg: str, code: int = EXIT_SETUP):
        super().__init__(msg)
        self.code = code


class Interrupted(BaseException):
    """SIGTERM/SIGHUP turned into an exception so finally blocks run."""


def _raise_interrupted(signum, _frame):
    raise Interrupted(signal.Signals(signum).name)


def install_signal_handlers() -> None:
    for s in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(s, _raise_interrupted)
    signal.signal(signal.SIGINT, signal.default_int_handler)


def shield_cleanup() -> None:
    """From here on, finish cleaning up: further Ctrl-C/SIGTERM are ignored
    (every cleanup step is bounded by a timeout)."""
    for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(s, signal.SIG_IGN)


def log(msg: str) -> None:
    print(f"bench: {msg}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------
# Outer process: namespaces, then re-exec inside namespace a.
# --------------------------------------------------------------------------


def ip(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    try:
        r = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=SETUP_TIMEOUT)
    except subprocess.TimeoutExpired:
        raise BenchError(f"`ip {' '.join(args)}` timed out after {SETUP_TIMEOUT}s")
    if check and r.returncode != 0:
        raise BenchError(f"`ip {' '.join(args)}` failed ({r.returncode}): {r.stderr.strip()}")
    return r


class Namespaces:
    """Two throwaway namespaces joined by a veth pair; removed on close()."""

    def __init__(self) -> None:
        pid = os.getpid()
        self.a = f"hvbench-{pid}-a"
        self.b = f"hvbench-{pid}-b"
        # Interface names are limited to 15 characters.
        self.veth_a = f"hvb{pid}a"[:15]
        self.veth_b = f"hvb{pid}b"[:15]
        self.created: list[str] = []

    def setup(self) -> None:
        existing = ip("netns", "list").stdout.split()
        for ns in (self.a, self.b):
            if ns in existing:
                raise BenchError(f"network namespace {ns} already exists; not touching it")
        for ns in (self.a, self.b):
            ip("netns", "add", ns)
            self.created.append(ns)
        # Created directly inside a with its peer in b: the root namespace's
        # interfaces are never touched.
        ip("-n", self.a, "link", "add", self.veth_a, "type", "veth", "peer", "name", self.veth_b, "netns", self.b)
        ip("-n", self.a, "addr", "add", NET_A, "dev", self.veth_a)
        ip("-n", self.b, "addr", "add", NET_B, "dev", self.veth_b)
        for ns, dev in ((self.a, self.veth_a), (self.b, self.veth_b)):
            ip("-n", ns, "link", "set", "lo", "up")
            ip("-n", ns, "link", "set", dev, "up")

    def kill_leftovers(self) -> list[int]:
        """Kill every process still inside our namespaces (all started by this run)."""
        killed: list[int] = []
        for ns in self.created:
            r = ip("netns", "pids", ns, check=False)
            pids = [int(p) for p in r.stdout.split() if p.isdigit() and int(p) != os.getpid()]
            for sig in (signal.SIGTERM, signal.SIGKILL):
                alive = []
                for p in pids:
                    try:
                        os.kill(p, sig)
                        alive.append(p)
                    except ProcessLookupError:
                        pass
                if not alive:
                    break
                killed.extend(p for p in alive if p not in killed)
                deadline = time.monotonic() + 2
                while time.monotonic() < deadline and any(_pid_alive(p) for p in alive):
                    time.sleep(0.05)
                pids = [p for p in alive if _pid_alive(p)]
        return killed

    def close(self) -> None:
        try:
            stray = self.kill_leftovers()
            if stray:
                log(f"killed {len(stray)} leftover process(es) in the bench namespaces: {stray}")
        finally:
            for ns in reversed(self.created):
                r = ip("netns", "delete", ns, check=False)
                if r.returncode != 0:
                    log(f"could not delete network namespace {ns}: {r.stderr.strip()}")
            self.created.clear()


def _pid_alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return False


def preflight(haven: Path) -> None:
    if os.geteuid() != 0:
        raise BenchError("must run as root (it creates network namespaces)")
    if not haven.is_file() or not os.access(haven, os.X_OK):
        raise BenchError(f"haven binary not found at {haven}; build it with `cargo build --release` or pass --haven PATH")
    if not IPADDR2.is_file():
        raise BenchError(f"{IPADDR2} not found; install Debian's resource-agents package")
    for tool, pkg in (("ip", "iproute2"), ("strace", "strace")):
        if shutil.which(tool) is None:
            raise BenchError(f"`{tool}` not found; install it with `apt-get install -y {pkg}`")


def package_version(pkg: str) -> str | None:
    try:
        r = subprocess.run(["dpkg-query", "-W", "-f", "${Version}", pkg], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return r.stdout.strip() or None if r.returncode == 0 else None


def outer(args: argparse.Namespace) -> int:
    haven = Path(args.haven).resolve() if args.haven else DEFAULT_HAVEN
    preflight(haven)
    ns = Namespaces()
    inner_proc: subprocess.Popen | None = None
    with tempfile.TemporaryDirectory(prefix="hvbench-") as tmp:
        results_file = Path(tmp) / "results.json"
        try:
            ns.setup()
            cmd = [
                "ip", "netns", "exec", ns.a,
                sys.executable, str(Path(__file__).resolve()), "--inner",
                "--haven", str(haven),
                "--iterations", str(args.iterations),
                "--nic", ns.veth_a,
                "--results", str(results_file),
            ]  # fmt: skip
            budget = 120 + 15 * args.iterations
            log(f"namespaces {ns.a}/{ns.b} ready; measuring {args.iterations} iterations per action and agent")
            inner_proc = subprocess.Popen(cmd)
            try:
                rc = inner_proc.wait(timeout=budget)
            except subprocess.TimeoutExpired:
                raise BenchError(f"the measurement did not finish within {budget}s")
            inner_proc = None
            if rc != 0:
                return rc
            data = json.loads(results_file.read_text())
        finally:
            shield_cleanup()
            if inner_proc is not None and inner_proc.poll() is None:
                inner_proc.terminate()
                try:
                    inner_proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    inner_proc.kill()
                    inner_proc.wait(timeout=10)
            ns.close()

    data["resource_agents_version"] = package_version("resource-agents")
    missed = report(data)
    if args.json:
        Path(args.json).write_text(json.dumps(data, indent=2) + "\n")
        log(f"wrote {args.json}")
    if args.check and missed:
        log(f"--check: target missed on {', '.join(missed)}")
        return EXIT_TARGET
    return 0


def fmt_ratio(r: float | None) -> str:
    if r is None:
        return "n/a"
    return f"{r:.1f}x"


def report(data: dict) -> list[str]:
    print(f"kernel:      {data['kernel']}")
    print(f"iterations:  {data['iterations']} per action and agent (medians; forks from one extra strace run)")
    ra = data.get("resource_agents_version")
    print(f"IPaddr2:     {data['ipaddr2']}" + (f" (resource-agents {ra})" if ra else ""))
    print(f"haven:       {data['haven']} (vip)")
    print()
    head1 = f"{'':<13} {'wall ms (median)':^26} {'CPU ms user+sys (median)':^26} {'forks':^15}"
    head2 = f"{'action':<13} {'IPaddr2':>8} {'haven':>8} {'ratio':>8} {'IPaddr2':>8} {'haven':>8} {'ratio':>8} {'IPaddr2':>7} {'haven':>7}  target"
    print(head1)
    print(head2)
    print("-" * len(head2) + "-" * 14)
    missed: list[str] = []
    for name, row in data["actions"].items():
        a, h = row["IPaddr2"], row["haven"]
        if row["target"]:
            verdict = "target met" if row["target_met"] else "TARGET MISSED"
            if row["target_met"] and row["cpu_ratio"] < CPU_RATIO_TARGET:
                verdict = f"forks met; CPU ratio unreachable here (exec floor allows {row['reachable_ratio']:.1f}x)"
            if not row["target_met"]:
                missed.append(name)
        else:
            verdict = "(no target)"
        print(
            f"{name:<13} {a['wall_ms']:>8.2f} {h['wall_ms']:>8.2f} {fmt_ratio(row['wall_ratio']):>8} "
            f"{a['cpu_ms']:>8.2f} {h['cpu_ms']:>8.2f} {fmt_ratio(row['cpu_ratio']):>8} "
            f"{a['forks']:>7} {h['forks']:>7}  {verdict}"
        )
    print()
    f = data["exec_floor"]
    print(f"exec floor:  {f['command']} took {f['wall_ms']:.2f} ms wall, {f['cpu_ms']:.2f} ms CPU (median; any exec costs this here)")
    print(f"target (meta-data, validate-all, probe, monitor): haven forks 0 processes and CPU ratio >= {CPU_RATIO_TARGET:.0f}x")
    return missed


# --------------------------------------------------------------------------
# Inner process: runs inside namespace a and spawns the agents directly.
# --------------------------------------------------------------------------


@dataclass
class Run:
    rc: int
    wall_ms: float
    cpu_ms: float


@dataclass
class Stats:
    wall: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)
    forks: int | None = None


class Spawner:
    """posix_spawn + wait4: the child's own rusage plus that of the
    descendants it reaped, with a per-child timeout via SIGALRM."""

    def __init__(self, tmp: Path) -> None:
        self.devnull = os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC)
        self.out_path = tmp / "stdout"
        self.err_path = tmp / "stderr"
        self.out = os.open(self.out_path, os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
        self.err = os.open(self.err_path, os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
        self.current: int | None = None
        self.timed_out = False
        signal.signal(signal.SIGALRM, self._on_alarm)

    def _on_alarm(self, _signum, _frame) -> None:
        if self.current is not None:
            self.timed_out = True
            try:
                os.killpg(self.current, signal.SIGKILL)
            except ProcessLookupError:
                pass

    def run(self, argv: list[str], env: dict[str, str], timeout: float = CHILD_TIMEOUT) -> Run:
        for fd in (self.out, self.err):
            os.ftruncate(fd, 0)
            os.lseek(fd, 0, os.SEEK_SET)
        actions = [
            (os.POSIX_SPAWN_DUP2, self.devnull, 0),
            (os.POSIX_SPAWN_DUP2, self.out, 1),
            (os.POSIX_SPAWN_DUP2, self.err, 2),
        ]
        self.timed_out = False
        signal.setitimer(signal.ITIMER_REAL, timeout)
        try:
            t0 = time.perf_counter()
            # setsid: the child leads its own process group, so a timeout can
            # kill it and whatever it started, and Ctrl-C does not reach it.
            pid = os.posix_spawn(argv[0], argv, env, file_actions=actions, setsid=True)
            self.current = pid
            _, status, ru = os.wait4(pid, 0)
            t1 = time.perf_counter()
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
            self.current = None
        if self.timed_out:
            raise BenchError(f"{' '.join(argv)} did not finish within {timeout}s (killed)\n{self.stderr_tail()}", EXIT_AGENT)
        return Run(os.waitstatus_to_exitcode(status), (t1 - t0) * 1e3, (ru.ru_utime + ru.ru_stime) * 1e3)

    def stderr_tail(self, limit: int = 4000) -> str:
        try:
            text = self.err_path.read_text(errors="replace")
        except OSError:
            return ""
        return text[-limit:]

    def kill_current(self) -> None:
        if self.current is not None:
            try:
                os.killpg(self.current, signal.SIGKILL)
                os.waitpid(self.current, 0)
            except (ProcessLookupError, ChildProcessError):
                pass
            self.current = None


FORK_SYSCALLS = ("fork", "vfork", "clone", "clone3")
_LINE = re.compile(r"^(\d+)\s+(.*)$")
_CALL = re.compile(r"^(fork|vfork|clone|clone3)\((.*)\)\s+=\s+(-?\d+)\b")
_UNFINISHED = re.compile(r"^(fork|vfork|clone|clone3)\((.*?)\s*<unfinished \.\.\.>$")
_RESUMED = re.compile(r"^<\.\.\. (fork|vfork|clone|clone3) resumed>(.*)$")


def count_forks(trace: str) -> int:
    """Successful process creations in `strace -f -o` output, threads excluded."""
    pending: dict[str, str] = {}
    n = 0
    for raw in trace.splitlines():
        m = _LINE.match(raw.strip())
        if not m:
            continue
        tid, rest = m.groups()
        u = _UNFINISHED.match(rest)
        if u:
            pending[tid] = f"{u.group(1)}({u.group(2)}"
            continue
        r = _RESUMED.match(rest)
        if r:
            start = pending.pop(tid, f"{r.group(1)}(")
            rest = start + r.group(2)
        c = _CALL.match(rest)
        if not c:
            continue
        _name, call_args, ret = c.groups()
        if int(ret) <= 0 or "CLONE_THREAD" in call_args:
            continue
        n += 1
    return n


class Inner:
    def __init__(self, args: argparse.Namespace, tmp: Path) -> None:
        self.tmp = tmp
        self.iterations = args.iterations
        self.nic = args.nic
        self.haven = Path(args.haven)
        link = tmp / "vip"
        link.symlink_to(self.haven)
        self.argv0 = {"IPaddr2": str(IPADDR2), "haven": str(link)}
        rsctmp = tmp / "rsctmp"
        rsctmp.mkdir()
        # Identical environment for both agents. run_arping=false is IPaddr2's
        # default and turns off haven's duplicate-address probe: equal work.
        self.base_env = {
            "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            "LANG": "C",
            "OCF_ROOT": OCF_ROOT,
            "HA_RSCTMP": str(rsctmp),
            "OCF_RESOURCE_INSTANCE": "bench_vip",
            "OCF_RESKEY_ip": VIP,
            "OCF_RESKEY_cidr_netmask": VIP_PREFIX,
            "OCF_RESKEY_nic": self.nic,
            "OCF_RESKEY_run_arping": "false",
            "OCF_RESKEY_CRM_meta_timeout": "20000",
        }
        self.spawner = Spawner(tmp)
        self.stats = {row: {agent: Stats() for agent in AGENTS} for row in ACTIONS}
        # Reference: what exec'ing a trivial binary costs on this machine.
        self.true = shutil.which("true") or "/bin/true"
        self.floor = Stats()

    def env(self, interval: int) -> dict[str, str]:
        return {**self.base_env, "OCF_RESKEY_CRM_meta_interval": str(interval)}

    def check_rc(self, agent: str, row: str, rc: int, expect: int, how: str = "") -> None:
        if rc != expect:
            action, interval, _ = ACTIONS[row]
            raise BenchError(
                f"{agent} {row} (action {action}, interval {interval}){how} exited {rc}, expected {expect}\n"
                f"--- {agent} stderr ---\n{self.spawner.stderr_tail()}",
                EXIT_AGENT,
            )

    def once(self, agent: str, row: str, timed: bool = True) -> None:
        action, interval, expect = ACTIONS[row]
        r = self.spawner.run([self.argv0[agent], action], self.env(interval))
        reap_orphans()
        self.check_rc(agent, row, r.rc, expect)
        if timed:
            s = self.stats[row][agent]
            s.wall.append(r.wall_ms)
            s.cpu.append(r.cpu_ms)

    def traced(self, agent: str, row: str) -> None:
        action, interval, expect = ACTIONS[row]
        trace = self.tmp / f"strace-{agent}-{row}"
        argv = [
            shutil.which("strace") or "strace", "-f", "-qq",
            "-e", "trace=" + ",".join(FORK_SYSCALLS),
            "-o", str(trace),
            self.argv0[agent], action,
        ]  # fmt: skip
        r = self.spawner.run(argv, self.env(interval))
        reap_orphans()
        self.check_rc(agent, row, r.rc, expect, " under strace")
        self.stats[row][agent].forks = count_forks(trace.read_text(errors="replace"))

    def address_present(self) -> bool:
        r = subprocess.run(
            ["ip", "-o", "-4", "addr", "show", "dev", self.nic],
            capture_output=True, text=True, timeout=CHILD_TIMEOUT,
        )  # fmt: skip
        return f" {VIP}/" in r.stdout

    def cycle(self, agent: str, timed: bool = True) -> None:
        """probe (down) -> start -> monitor (up) -> stop: one state cycle."""
        for row in ("probe", "start", "monitor", "stop"):
            self.once(agent, row, timed)

    def measure(self) -> None:
        if self.address_present():
            raise BenchError(f"{VIP} is already on {self.nic} before the run")
        # Warm-up (page cache, first exec): every action once, not timed;
        # it also checks every exit code before anything is measured.
        for agent in AGENTS:
            self.once(agent, "meta-data", timed=False)
            self.once(agent, "validate-all", timed=False)
            self.cycle(agent, timed=False)
        # Fork counts: one extra run of each action under strace.
        for agent in AGENTS:
            for row in ("meta-data", "validate-all", "probe", "start", "monitor", "stop"):
                self.traced(agent, row)
        if self.address_present():
            raise BenchError(f"{VIP} is still on {self.nic} after the stop runs")
        # Timed runs, agents interleaved; which agent goes first alternates.
        for i in range(self.iterations):
            order = AGENTS if i % 2 == 0 else AGENTS[::-1]
            for row in ("meta-data", "validate-all"):
                for agent in order:
                    self.once(agent, row)
            for agent in order:
                self.cycle(agent)
            r = self.spawner.run([self.true], self.env(0))
            self.floor.wall.append(r.wall_ms)
            self.floor.cpu.append(r.cpu_ms)
        if self.address_present():
            raise BenchError(f"{VIP} is still on {self.nic} after the last stop")

    def results(self) -> dict:
        out: dict = {
            "kernel": platform.release(),
            "iterations": self.iterations,
            "ipaddr2": str(IPADDR2),
            "haven": str(self.haven),
            "parameters": {k: v for k, v in self.base_env.items() if k.startswith("OCF_RESKEY_") or k == "OCF_RESOURCE_INSTANCE"},
            "exec_floor": {
                "command": self.true,
                "wall_ms": statistics.median(self.floor.wall),
                "cpu_ms": statistics.median(self.floor.cpu),
            },
            "actions": {},
        }
        for row in ACTIONS:
            per = {}
            for agent in AGENTS:
                s = self.stats[row][agent]
                per[agent] = {
                    "wall_ms": statistics.median(s.wall),
                    "cpu_ms": statistics.median(s.cpu),
                    "forks": s.forks,
                    "wall_ms_samples": [round(x, 4) for x in s.wall],
                    "cpu_ms_samples": [round(x, 4) for x in s.cpu],
                }
            a, h = per["IPaddr2"], per["haven"]
            # rusage has microsecond resolution: a 0 median means < 1 us.
            wall_ratio = a["wall_ms"] / h["wall_ms"] if h["wall_ms"] > 0 else None
            cpu_ratio = a["cpu_ms"] / max(h["cpu_ms"], 0.001)
            target = row in TARGET_ROWS
            met = None
            # The best ratio any program could reach: IPaddr2's cost over the
            # cost of exec'ing /usr/bin/true. When even that is below the
            # target, the ratio target is unreachable on this machine; it is
            # reported as such and only the fork count is enforced.
            floor = statistics.median(self.floor.cpu) if self.floor.cpu else 0.0
            reachable = a["cpu_ms"] / max(floor, 0.001)
            if target:
                ratio_ok = cpu_ratio >= CPU_RATIO_TARGET or reachable < CPU_RATIO_TARGET
                met = h["forks"] == 0 and ratio_ok
            out["actions"][row] = {
                **per,
                "wall_ratio": wall_ratio,
                "cpu_ratio": cpu_ratio,
                "target": target,
                "target_met": met,
                "reachable_ratio": reachable,
            }
        return out

    def cleanup(self) -> None:
        self.spawner.kill_current()


PR_SET_CHILD_SUBREAPER = 36


def become_subreaper() -> bool:
    """Adopt what the agents leave in the background (IPaddr2's send_arp,
    vip's announcer) so it can be reaped and, at the end, accounted for."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def reap_orphans() -> None:
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


def my_children() -> dict[int, str]:
    me = os.getpid()
    out = {}
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            stat = (d / "stat").read_text()
            fields = stat.rsplit(")", 1)[1].split()
            if int(fields[1]) != me or fields[0] == "Z":
                continue
            cmd = (d / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
        except (OSError, IndexError, ValueError):
            continue
        out[int(d.name)] = cmd
    return out


def finish_children(grace: float = 5.0) -> dict[int, str]:
    """Wait for leftover background processes to end; kill what remains.
    Returns those that had to be killed."""
    deadline = time.monotonic() + grace
    while True:
        reap_orphans()
        left = my_children()
        if not left or time.monotonic() >= deadline:
            break
        time.sleep(0.05)
    for pid in left:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    time.sleep(0.05)
    reap_orphans()
    return left


def own_netns_inode() -> int:
    return os.stat("/proc/self/ns/net").st_ino


def inner(args: argparse.Namespace) -> int:
    # vip keeps state in /run/haven/vip/net-<netns inode>; ours is throwaway.
    state_dir = HAVEN_RUN_DIR / f"net-{own_netns_inode()}"
    preexisting = [d for d in (HAVEN_RUN_DIR.parent, HAVEN_RUN_DIR) if d.exists()]
    subreaper = become_subreaper()
    with tempfile.TemporaryDirectory(prefix="hvbench-inner-") as tmp:
        bench = Inner(args, Path(tmp))
        try:
            bench.measure()
            results = bench.results()
        finally:
            shield_cleanup()
            bench.cleanup()
            if subreaper:
                killed = finish_children()
                for pid, cmd in killed.items():
                    log(f"killed a process still running 5 s after the last action: {pid} {cmd}")
            shutil.rmtree(state_dir, ignore_errors=True)
            for d in (HAVEN_RUN_DIR, HAVEN_RUN_DIR.parent):
                if d not in preexisting:
                    try:
                        d.rmdir()
                    except OSError:
                        pass
    results["subreaper"] = subreaper
    Path(args.results).write_text(json.dumps(results))
    return 0


# --------------------------------------------------------------------------


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description="Benchmark Debian's IPaddr2 against haven's vip agent, side by side, in throwaway network namespaces.",
    )
    p.add_argument("--haven", help=f"haven binary (default: {DEFAULT_HAVEN})")
    p.add_argument("--iterations", type=int, default=30, help="timed runs per action and agent (default: 30)")
    p.add_argument("--check", action="store_true", help="exit 1 if a target is missed")
    p.add_argument("--json", metavar="FILE", help="also write the numbers as JSON to FILE")
    # Internal: the re-executed measuring process inside namespace a.
    p.add_argument("--inner", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--nic", help=argparse.SUPPRESS)
    p.add_argument("--results", help=argparse.SUPPRESS)
    a = p.parse_args(argv)
    if not 1 <= a.iterations <= 10000:
        p.error("--iterations must be between 1 and 10000")
    if a.inner and not (a.nic and a.results and a.haven):
        p.error("--inner needs --nic, --results and --haven")
    return a


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    install_signal_handlers()
    try:
        return inner(args) if args.inner else outer(args)
    except BenchError as e:
        print(f"bench: error: {e}", file=sys.stderr)
        return e.code
    except (KeyboardInterrupt, Interrupted) as e:
        print(f"bench: interrupted{f' ({e})' if str(e) else ''}; cleaned up", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
