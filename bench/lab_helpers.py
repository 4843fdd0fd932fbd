"""Helpers every bench script shares: bounded setup commands, throwaway
network namespaces (a single one or a veth-joined pair), a loop-device
image, signal-safe cleanup, ending the process groups a script started,
/proc CPU and peak-RSS readings, and reaping what agents leave in the
background. The one copy for bench/ (the Rust
tests have theirs in tests/integration/common.rs: two languages, so two
copies at most, never one per script)."""

from __future__ import annotations

import ctypes
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SETUP_TIMEOUT = 30  # seconds, for every setup or cleanup command
EXIT_SETUP = 2


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


_deferred: list[int] = []


def _defer(signum, _frame):
    _deferred.append(signum)


def shield_cleanup() -> None:
    """From here on, finish cleaning up: further Ctrl-C/SIGTERM are held
    back (every cleanup step is bounded by a timeout)."""
    for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(s, _defer)


def end_shield() -> None:
    """Cleanup done: handle signals again, and act on one that came during it."""
    install_signal_handlers()
    if _deferred:
        signum = _deferred[0]
        _deferred.clear()
        if signum == signal.SIGINT:
            raise KeyboardInterrupt
        raise Interrupted(signal.Signals(signum).name)


def log(msg: str) -> None:
    print(f"bench: {msg}", file=sys.stderr, flush=True)


def command(argv: list[str], check: bool = True, timeout: float = SETUP_TIMEOUT,
            input: str | None = None) -> subprocess.CompletedProcess:
    """Run a setup or cleanup command (`input` on its stdin, else nothing);
    BenchError when it fails or hangs."""
    stdin = {"input": input} if input is not None else {"stdin": subprocess.DEVNULL}
    try:
        r = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, **stdin)
    except subprocess.TimeoutExpired:
        raise BenchError(f"`{' '.join(argv)}` timed out after {timeout}s")
    except OSError as e:
        raise BenchError(f"`{' '.join(argv)}` could not run: {e}")
    if check and r.returncode != 0:
        raise BenchError(f"`{' '.join(argv)}` failed ({r.returncode}): {r.stderr.strip()}")
    return r


def ip(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    try:
        r = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=SETUP_TIMEOUT)
    except subprocess.TimeoutExpired:
        raise BenchError(f"`ip {' '.join(args)}` timed out after {SETUP_TIMEOUT}s")
    if check and r.returncode != 0:
        raise BenchError(f"`ip {' '.join(args)}` failed ({r.returncode}): {r.stderr.strip()}")
    return r


class Namespaces:
    """Two throwaway namespaces joined by a veth pair, addresses `net_a` and
    `net_b` on its ends; removed on close()."""

    def __init__(self, net_a: str, net_b: str) -> None:
        self.net_a = net_a
        self.net_b = net_b
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
        ip("-n", self.a, "addr", "add", self.net_a, "dev", self.veth_a)
        ip("-n", self.b, "addr", "add", self.net_b, "dev", self.veth_b)
        for ns, dev in ((self.a, self.veth_a), (self.b, self.veth_b)):
            ip("-n", ns, "link", "set", "lo", "up")
            ip("-n", ns, "link", "set", dev, "up")

    def kill_leftovers(self) -> list[int]:
        """Kill every process still inside our namespaces (all started by this run)."""
        return kill_namespace_processes(self.created)

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


def kill_namespace_processes(namespaces: list[str]) -> list[int]:
    """SIGTERM, then SIGKILL after 2 s, every process inside `namespaces`
    (throwaway namespaces this run created, so every process in them is
    one this run started); returns those signalled."""
    killed: list[int] = []
    for ns in namespaces:
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
            while time.monotonic() < deadline and any(pid_alive(p) for p in alive):
                time.sleep(0.05)
            pids = [p for p in alive if pid_alive(p)]
    return killed


class Namespace:
    """One throwaway network namespace with lo up (no link to anything);
    `exec(argv)` runs argv inside it; close() ends what still runs in it
    and removes it."""

    def __init__(self, tag: str) -> None:
        self.name = f"hvbench-{tag}-{os.getpid()}"
        self.created = False

    def setup(self) -> None:
        if self.name in ip("netns", "list").stdout.split():
            raise BenchError(f"network namespace {self.name} already exists; not touching it")
        ip("netns", "add", self.name)
        self.created = True
        ip("-n", self.name, "link", "set", "lo", "up")

    def exec(self, *argv: str) -> list[str]:
        return ["ip", "netns", "exec", self.name, *argv]

    def close(self) -> None:
        if not self.created:
            return
        try:
            stray = kill_namespace_processes([self.name])
            if stray:
                log(f"killed {len(stray)} leftover process(es) in {self.name}: {stray}")
        finally:
            r = ip("netns", "delete", self.name, check=False)
            if r.returncode != 0:
                log(f"could not delete network namespace {self.name}: {r.stderr.strip()}")
            self.created = False


def stop_group(p: subprocess.Popen, grace: float) -> None:
    """End a process this script started in its own session (and its
    process group): SIGTERM, SIGKILL after `grace` seconds."""
    if p.poll() is not None:
        return
    try:
        os.killpg(p.pid, signal.SIGTERM)
        p.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        os.killpg(p.pid, signal.SIGKILL)
        p.wait(timeout=10)
    except ProcessLookupError:
        pass


TICK = os.sysconf("SC_CLK_TCK")


def proc_cpu_s(pid: int) -> float:
    """utime+stime+cutime+cstime of a live process (its own CPU and that of
    the children it waited for), in seconds."""
    text = Path(f"/proc/{pid}/stat").read_text()
    fields = text[text.rindex(")") + 2 :].split()
    return sum(int(f) for f in fields[11:15]) / TICK


def proc_hwm_mib(pid: int) -> float:
    """Peak resident set (VmHWM) of a live process, in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024.0
    return 0.0


class LoopImage:
    """A `mib` MiB ext4 image in a fresh directory under `parent`, attached
    to a loop device, with an empty mount point next to it; all removed on
    close(). Nothing is ever mounted in this (the host's) mount namespace."""

    def __init__(self, mib: int, parent: Path) -> None:
        self.mib = mib
        self.parent = parent
        self.dir: Path | None = None
        self.image: Path | None = None
        self.mount_point: Path | None = None
        self.device: str | None = None

    def setup(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix=f"hvbench-{os.getpid()}-fs-", dir=self.parent)).resolve()
        self.image = self.dir / "fs.img"
        with open(self.image, "wb") as f:
            f.truncate(self.mib << 20)
        command(["mkfs.ext4", "-q", "-F", str(self.image)])
        self.mount_point = self.dir / "mnt"
        self.mount_point.mkdir()
        r = command(["losetup", "--find", "--show", str(self.image)])
        self.device = r.stdout.strip()
        if not self.device.startswith("/dev/"):
            raise BenchError(f"losetup --find --show printed {self.device!r}, not a device")

    def attached(self) -> list[str]:
        """Loop devices backed by our image (also one attached by a losetup
        that timed out before printing its name)."""
        if self.image is None:
            return []
        r = command(["losetup", "--associated", str(self.image)], check=False)
        return [line.split(":", 1)[0] for line in r.stdout.splitlines() if line.startswith("/dev/")]

    def close(self) -> None:
        try:
            for dev in self.attached():
                r = command(["losetup", "--detach", dev], check=False)
                if r.returncode != 0:
                    log(f"could not detach {dev}: {r.stderr.strip()}")
            left = self.attached()
            if left:
                log(f"{', '.join(left)} still attached to {self.image} (detached once no longer in use)")
        finally:
            if self.dir is not None:
                shutil.rmtree(self.dir, ignore_errors=True)
                if self.dir.exists():
                    log(f"could not remove {self.dir}")
            self.dir = self.image = self.mount_point = self.device = None


def pid_alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return False


def require_tools(tools: tuple[tuple[str, str], ...]) -> None:
    for tool, pkg in tools:
        if shutil.which(tool) is None:
            raise BenchError(f"`{tool}` not found; install it with `apt-get install -y {pkg}`")


def unescape(field: str) -> str:
    """Undo mountinfo's octal escapes (space, tab, newline, backslash)."""
    out = bytearray()
    raw = field.encode()
    i = 0
    while i < len(raw):
        digits = raw[i + 1 : i + 4]
        if raw[i] == 0x5C and len(digits) == 3 and all(0x30 <= d <= 0x37 for d in digits) and int(digits, 8) <= 0xFF:
            out.append(int(digits, 8))
            i += 4
        else:
            out.append(raw[i])
            i += 1
    return out.decode(errors="replace")


def mount_points() -> set[str]:
    """Mount points in this process's mount namespace."""
    with open("/proc/self/mountinfo") as f:
        return {unescape(line.split()[4]) for line in f if line.strip()}


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


