"""Keep the host kernel's IP stack off the NICs the agent drives.

Without this the kernel sees every frame the agent sees: it answers ARP and
pings for addresses it has, forwards what it would route, sends ICMP errors,
and spends CPU on every frame (measured: it halves the agent's throughput).

What ``isolate`` does on one data-plane NIC, and ``Isolation.remove`` undoes:

1. drop every received frame at the ingress hook (``sch_handle_ingress``).
   AF_PACKET taps are served in ``__netif_receive_skb_core`` *before* that
   hook, so the agent's receive ring still gets every frame while the
   kernel's protocol handlers (ARP, IPv4, IPv6) get none. Two ways:

   * ``tcx`` (Linux >= 6.6, preferred): a two-instruction eBPF program
     (``r0 = TC_ACT_SHOT; exit``) attached with a BPF link to
     ``BPF_TCX_INGRESS``. The link lives as long as the agent holds its file
     descriptor, so the kernel removes the filter even if the agent is
     killed with SIGKILL: a crashed agent never leaves a black-holed NIC.
   * ``tc`` (older kernels): a ``clsact`` qdisc (only if the NIC has none)
     with ``matchall action drop`` at a preference of our own; needs
     ``cls_matchall`` and ``act_gact`` and is removed explicitly at stop.

2. ``arp off`` on the NIC (the kernel stops sending ARP on it);
3. ``net.ipv6.conf.<nic>.disable_ipv6 = 1`` (no router solicitations, DAD,
   MLD reports from the kernel).

Management traffic is untouched because it runs on NICs the agent does not
take: never give the agent the NIC you reach the host through.
"""

from __future__ import annotations

import contextlib
import ctypes
import enum
import os
import platform
import socket
import struct
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

# tc filter preference reserved for vrc's drop filter; removed by this exact value.
FILTER_PREF = 49001
# Where the kernel's sysctl tree is. A container's /proc/sys is read-only; the
# DaemonSet mounts the node's /proc/sys/net elsewhere and says where (--proc-sys).
PROC_SYS = Path("/proc/sys")
TC_TIMEOUT = 10.0


class IsolationError(RuntimeError):
    """A tc/ip/bpf step failed; the message carries the command and the reason."""


class DropMethod(enum.Enum):
    TCX = "tcx"
    TC = "tc"


# --- eBPF through the bpf(2) system call (uapi/linux/bpf.h) ---
_SYS_BPF = {"x86_64": 321, "aarch64": 280, "armv7l": 386, "riscv64": 280, "ppc64le": 361}
BPF_PROG_LOAD = 5
BPF_LINK_CREATE = 28
BPF_PROG_TYPE_SCHED_CLS = 3
BPF_TCX_INGRESS = 46
TC_ACT_SHOT = 2
BPF_ATTR_SIZE = 128
# struct bpf_insn { u8 code; u8 dst:4, src:4; s16 off; s32 imm }
_BPF_INSN = struct.Struct("<BBhi")
_DROP_PROGRAM = _BPF_INSN.pack(0xB7, 0, 0, TC_ACT_SHOT) + _BPF_INSN.pack(0x95, 0, 0, 0)
# bpf_attr for BPF_PROG_LOAD: prog_type, insn_cnt, insns ptr, license ptr; name @48.
_PROG_LOAD = struct.Struct("=IIQQ")
_PROG_NAME_AT = 48
# bpf_attr for BPF_LINK_CREATE: prog_fd, target_ifindex, attach_type, flags.
_LINK_CREATE = struct.Struct("=IIII")


def _bpf(cmd: int, attr: ctypes.Array[ctypes.c_char]) -> int:
    number = _SYS_BPF.get(platform.machine())
    if number is None:
        raise IsolationError(f"bpf(2): unknown system call number on {platform.machine()}")
    libc = ctypes.CDLL(None, use_errno=True)
    fd = int(libc.syscall(number, cmd, attr, BPF_ATTR_SIZE))
    if fd < 0:
        err = ctypes.get_errno()
        raise IsolationError(f"bpf(2) command {cmd}: {os.strerror(err)}")
    return fd


def attach_tcx_drop(ifname: str) -> int:
    """Load the drop program and link it to ``ifname``'s TCX ingress; returns the link fd.

    Closing the returned descriptor detaches the program.
    """
    insns = ctypes.create_string_buffer(_DROP_PROGRAM, len(_DROP_PROGRAM))
    license_ = ctypes.create_string_buffer(b"GPL")
    attr = ctypes.create_string_buffer(BPF_ATTR_SIZE)
    _PROG_LOAD.pack_into(
        attr, 0, BPF_PROG_TYPE_SCHED_CLS, len(_DROP_PROGRAM) // _BPF_INSN.size,
        ctypes.addressof(insns), ctypes.addressof(license_),
    )  # fmt: skip
    struct.pack_into("8s", attr, _PROG_NAME_AT, b"vrc_drop")
    prog_fd = _bpf(BPF_PROG_LOAD, attr)
    try:
        link_attr = ctypes.create_string_buffer(BPF_ATTR_SIZE)
        ifindex = socket.if_nametoindex(ifname)
        _LINK_CREATE.pack_into(link_attr, 0, prog_fd, ifindex, BPF_TCX_INGRESS, 0)
        return _bpf(BPF_LINK_CREATE, link_attr)
    finally:
        os.close(prog_fd)  # the link keeps its own reference to the program


def _run(*argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    try:
        proc = subprocess.run(
            argv, capture_output=True, text=True, timeout=TC_TIMEOUT, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise IsolationError(f"{' '.join(argv)}: {exc}") from exc
    if check and proc.returncode != 0:
        raise IsolationError(f"{' '.join(argv)}: {proc.stderr.strip() or proc.returncode}")
    return proc


def _ipv6_sysctl(ifname: str, proc_sys: Path = PROC_SYS) -> Path:
    return proc_sys / "net/ipv6/conf" / ifname / "disable_ipv6"


def _has_clsact(ifname: str) -> bool:
    out = _run("tc", "qdisc", "show", "dev", ifname).stdout
    return any(line.startswith("qdisc clsact") for line in out.splitlines())


def _arp_disabled(ifname: str) -> bool:
    out = _run("ip", "-o", "link", "show", "dev", ifname).stdout
    flags = out.split("<", 1)[1].split(">", 1)[0].split(",") if "<" in out else []
    return "NOARP" in flags


def has_drop_filter(ifname: str) -> bool:
    """True while vrc's ingress drop filter is installed on ``ifname``."""
    out = _run("tc", "filter", "show", "dev", ifname, "ingress", check=False).stdout
    return f"pref {FILTER_PREF} " in out


@dataclass(slots=True)
class Isolation:
    """What was changed on one NIC, so that ``remove`` restores exactly that."""

    ifname: str
    method: DropMethod | None = None
    tcx_link_fd: int = -1
    added_clsact: bool = False
    added_filter: bool = False
    turned_arp_off: bool = False
    previous_ipv6: str | None = None
    removed: bool = False
    proc_sys: Path = PROC_SYS

    def remove(self) -> list[str]:
        """Undo every step that was applied; returns the errors (never raises)."""
        if self.removed:
            return []
        self.removed = True
        errors: list[str] = []
        if self.tcx_link_fd >= 0:
            with contextlib.suppress(OSError):
                os.close(self.tcx_link_fd)
            self.tcx_link_fd = -1
        steps: list[tuple[bool, Sequence[str]]] = [
            (
                self.added_filter and not self.added_clsact,
                ("tc", "filter", "del", "dev", self.ifname, "ingress", "pref", str(FILTER_PREF)),
            ),
            (self.added_clsact, ("tc", "qdisc", "del", "dev", self.ifname, "clsact")),
            (self.turned_arp_off, ("ip", "link", "set", "dev", self.ifname, "arp", "on")),
        ]
        for wanted, argv in steps:
            if wanted:
                try:
                    _run(*argv)
                except IsolationError as exc:
                    errors.append(str(exc))
        if self.previous_ipv6 is not None:
            try:
                _ipv6_sysctl(self.ifname, self.proc_sys).write_text(self.previous_ipv6)
            except OSError as exc:
                errors.append(f"restore disable_ipv6 on {self.ifname}: {exc}")
        return errors


def isolate(ifname: str, methods: Sequence[DropMethod] = tuple(DropMethod),
            proc_sys: Path = PROC_SYS) -> Isolation:
    """Apply the three steps to ``ifname``; on failure undo what was done and raise.

    ``methods`` are tried in order for the ingress drop; the first that works
    is recorded in ``Isolation.method``. ``proc_sys`` is where the sysctl tree
    is mounted.
    """
    state = Isolation(ifname, proc_sys=proc_sys)
    try:
        _drop_ingress(state, methods)
        if not _arp_disabled(ifname):
            _run("ip", "link", "set", "dev", ifname, "arp", "off")
            state.turned_arp_off = True
        sysctl = _ipv6_sysctl(ifname, proc_sys)
        if sysctl.exists():
            previous = sysctl.read_text().strip()
            if previous != "1":
                sysctl.write_text("1")
                state.previous_ipv6 = previous
    except BaseException:
        with contextlib.suppress(Exception):
            state.remove()
        raise
    return state


def _drop_ingress(state: Isolation, methods: Sequence[DropMethod]) -> None:
    failures: list[str] = []
    for method in methods:
        try:
            if method is DropMethod.TCX:
                state.tcx_link_fd = attach_tcx_drop(state.ifname)
            else:
                _add_tc_drop(state)
        except IsolationError as exc:
            failures.append(f"{method.value}: {exc}")
            continue
        state.method = method
        return
    raise IsolationError(f"cannot drop ingress on {state.ifname}: {'; '.join(failures)}")


def _add_tc_drop(state: Isolation) -> None:
    ifname = state.ifname
    if not _has_clsact(ifname):
        _run("tc", "qdisc", "add", "dev", ifname, "clsact")
        state.added_clsact = True
    try:
        _run(
            "tc", "filter", "add", "dev", ifname, "ingress", "pref", str(FILTER_PREF),
            "protocol", "all", "matchall", "action", "drop",
        )  # fmt: skip
    except IsolationError:
        if state.added_clsact:
            _run("tc", "qdisc", "del", "dev", ifname, "clsact", check=False)
            state.added_clsact = False
        raise
    state.added_filter = True


@dataclass(slots=True)
class IsolationSet:
    """Isolation of several NICs, removed together (in reverse order)."""

    applied: list[Isolation] = field(default_factory=list)
    proc_sys: Path = PROC_SYS

    def add(self, ifname: str, methods: Sequence[DropMethod] = tuple(DropMethod)) -> Isolation:
        state = isolate(ifname, methods, self.proc_sys)
        self.applied.append(state)
        return state

    def remove(self) -> list[str]:
        errors: list[str] = []
        for state in reversed(self.applied):
            errors.extend(state.remove())
        self.applied.clear()
        return errors
