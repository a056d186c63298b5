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

Steps 2 and 3, and the ``tc`` drop, outlive the process. So the NIC's state
before any change is recorded first (:mod:`agents.nicrecord`), and
:func:`restore` puts a NIC back from that record: at a clean stop, at the next
start after a crash (:func:`restore_previous`), or with ``vrc-agent
--restore-nics``.
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
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from agents.nicrecord import NicClaim, NicOriginal, RecordError, RunDir, TcOriginal

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


def _other_filters(ifname: str) -> bool:
    """Whether the NIC's clsact holds filters (someone else's) in either direction."""
    return any(_run("tc", "filter", "show", "dev", ifname, hook, check=False).stdout.strip()
               for hook in ("ingress", "egress"))


def read_original(ifname: str, proc_sys: Path = PROC_SYS) -> NicOriginal:
    """What isolation would change on ``ifname``, as it is now (nothing is changed)."""
    try:
        ifindex = socket.if_nametoindex(ifname)
    except OSError as error:
        raise IsolationError(f"{ifname}: {error.strerror or error}") from None
    sysctl = _ipv6_sysctl(ifname, proc_sys)
    disable_ipv6 = sysctl.read_text().strip() if sysctl.exists() else None
    return NicOriginal(ifname, ifindex, _arp_disabled(ifname), disable_ipv6)


def gone_reason(original: NicOriginal) -> str | None:
    """Why a recorded NIC cannot be restored (it is gone or was replaced), or None."""
    try:
        ifindex = socket.if_nametoindex(original.ifname)
    except OSError:
        return "the NIC no longer exists"
    if ifindex != original.ifindex:
        return (f"the NIC was replaced (ifindex {ifindex}, recorded {original.ifindex}): "
                "a new NIC has the kernel's defaults")
    return None


def restore(original: NicOriginal, proc_sys: Path = PROC_SYS) -> list[str]:
    """Put ``original.ifname`` back as ``original`` says; returns the errors (never raises).

    Idempotent: each setting is compared with the record and only changed if
    it differs, so restoring twice, or a NIC the agent never got to change,
    is harmless. The TCX drop needs nothing: it went with its descriptor.
    ``proc_sys`` is where the sysctl tree is mounted.
    """
    ifname = original.ifname
    errors: list[str] = []

    def attempt(action: Callable[[], None]) -> None:
        try:
            action()
        except (IsolationError, OSError) as exc:
            errors.append(str(exc))

    if original.tc is not None:
        had_clsact = original.tc.had_clsact
        attempt(lambda: _remove_tc_drop(ifname, had_clsact))
    attempt(lambda: _restore_arp(ifname, original.arp_off))
    if original.disable_ipv6 is not None:
        attempt(lambda: _restore_ipv6(ifname, str(original.disable_ipv6), proc_sys))
    return errors


def _remove_tc_drop(ifname: str, had_clsact: bool) -> None:
    if has_drop_filter(ifname):
        _run("tc", "filter", "del", "dev", ifname, "ingress", "pref", str(FILTER_PREF))
    if not had_clsact and _has_clsact(ifname) and not _other_filters(ifname):
        _run("tc", "qdisc", "del", "dev", ifname, "clsact")


def _restore_arp(ifname: str, arp_off: bool) -> None:
    if _arp_disabled(ifname) != arp_off:
        _run("ip", "link", "set", "dev", ifname, "arp", "off" if arp_off else "on")


def _restore_ipv6(ifname: str, value: str, proc_sys: Path) -> None:
    sysctl = _ipv6_sysctl(ifname, proc_sys)
    try:
        if sysctl.exists() and sysctl.read_text().strip() != value:
            sysctl.write_text(value)
    except OSError as exc:
        raise IsolationError(f"restore disable_ipv6 on {ifname}: {exc}") from None


Save = Callable[[NicOriginal], None]


@dataclass(slots=True)
class Isolation:
    """One isolated NIC: what it was like before, and the TCX link that drops for us."""

    ifname: str
    original: NicOriginal
    method: DropMethod | None = None
    tcx_link_fd: int = -1
    removed: bool = False
    proc_sys: Path = PROC_SYS

    def remove(self) -> list[str]:
        """Undo isolation: back to ``original``; returns the errors (never raises)."""
        if self.removed:
            return []
        self.removed = True
        if self.tcx_link_fd >= 0:
            with contextlib.suppress(OSError):
                os.close(self.tcx_link_fd)
            self.tcx_link_fd = -1
        return restore(self.original, self.proc_sys)


def isolate(ifname: str, methods: Sequence[DropMethod] = tuple(DropMethod),
            proc_sys: Path = PROC_SYS, save: Save | None = None) -> Isolation:
    """Apply the three steps to ``ifname``; on failure undo what was done and raise.

    ``save`` is called with the NIC's original state before anything is
    changed, and again (with ``tc`` set) before the tc fallback changes
    anything, so a record of it exists whenever the NIC differs from it.
    ``methods`` are tried in order for the ingress drop; the first that
    works is recorded in ``Isolation.method``. ``proc_sys`` is where the
    sysctl tree is mounted.
    """
    original = read_original(ifname, proc_sys)
    remember: Save = save if save is not None else (lambda _original: None)
    remember(original)
    state = Isolation(ifname, original, proc_sys=proc_sys)
    try:
        _drop_ingress(state, methods, remember)
        if not original.arp_off:
            _run("ip", "link", "set", "dev", ifname, "arp", "off")
        if original.disable_ipv6 not in (None, "1"):
            _ipv6_sysctl(ifname, proc_sys).write_text("1")
    except BaseException:
        with contextlib.suppress(Exception):
            state.remove()
        raise
    return state


def _drop_ingress(state: Isolation, methods: Sequence[DropMethod], remember: Save) -> None:
    failures: list[str] = []
    for method in methods:
        try:
            if method is DropMethod.TCX:
                state.tcx_link_fd = attach_tcx_drop(state.ifname)
            else:
                if state.original.tc is None:
                    state.original.tc = TcOriginal(had_clsact=_has_clsact(state.ifname))
                    remember(state.original)
                _add_tc_drop(state.ifname, state.original.tc.had_clsact)
        except IsolationError as exc:
            failures.append(f"{method.value}: {exc}")
            continue
        state.method = method
        return
    raise IsolationError(f"cannot drop ingress on {state.ifname}: {'; '.join(failures)}")


def _add_tc_drop(ifname: str, had_clsact: bool) -> None:
    if not had_clsact:
        _run("tc", "qdisc", "add", "dev", ifname, "clsact")
    try:
        _run(
            "tc", "filter", "add", "dev", ifname, "ingress", "pref", str(FILTER_PREF),
            "protocol", "all", "matchall", "action", "drop",
        )  # fmt: skip
    except IsolationError:
        if not had_clsact:
            _run("tc", "qdisc", "del", "dev", ifname, "clsact", check=False)
        raise


@dataclass(slots=True)
class RestoreReport:
    """What restoring a previous run's records did."""

    restored: list[str] = field(default_factory=list)  # NICs put back
    dropped: list[str] = field(default_factory=list)  # records of NICs gone or replaced
    busy: list[str] = field(default_factory=list)  # held by a running agent: left alone
    failed: dict[str, list[str]] = field(default_factory=dict)  # record kept

    @property
    def ok(self) -> bool:
        return not self.failed


def restore_previous(run_dir: RunDir, proc_sys: Path = PROC_SYS) -> RestoreReport:
    """Restore every NIC that an agent of this namespace left isolated (a stale record)."""
    report = RestoreReport()
    for ifname in run_dir.recorded():
        with run_dir.stale(ifname) as found:
            if found is None:
                if run_dir.record_path(ifname).exists():
                    report.busy.append(ifname)
                continue
            claim, original = found
            if gone_reason(original) is not None:
                report.dropped.append(ifname)
                claim.release()
                continue
            errors = restore(original, proc_sys)
            if errors:
                report.failed[ifname] = errors
                claim.release(keep_record=True)
            else:
                report.restored.append(ifname)
                claim.release()
    run_dir.tidy()
    return report


@dataclass(slots=True)
class IsolationSet:
    """Isolation of several NICs, removed together (in reverse order).

    With a ``run_dir`` each NIC is claimed (locked) and its original state
    recorded before it is changed; removing restores it and deletes the record.
    """

    run_dir: RunDir | None = None
    applied: list[Isolation] = field(default_factory=list)
    _claims: dict[str, NicClaim] = field(default_factory=dict)
    proc_sys: Path = PROC_SYS

    def add(self, ifname: str, methods: Sequence[DropMethod] = tuple(DropMethod)) -> Isolation:
        claim = self._claim(ifname)
        saved: list[NicOriginal] = []

        def save(original: NicOriginal) -> None:
            if claim is not None:
                claim.save(original)
            saved.append(original)

        try:
            state = isolate(ifname, methods, self.proc_sys, save)
        except BaseException:
            if claim is not None:
                # isolate undid its changes; keep the record if that did not work out
                left = restore(saved[-1], self.proc_sys) if saved else []
                claim.release(keep_record=bool(left))
            raise
        self.applied.append(state)
        if claim is not None:
            self._claims[ifname] = claim
        return state

    def _claim(self, ifname: str) -> NicClaim | None:
        if self.run_dir is None:
            return None
        claim = self.run_dir.claim(ifname)
        try:
            leftover = self.run_dir.read(ifname)
        except BaseException:
            claim.release(keep_record=True)
            raise
        if leftover is not None:
            claim.release(keep_record=True)
            raise RecordError(
                f"--interface {ifname}: {self.run_dir.record_path(ifname)} holds the NIC's "
                "state from a previous run that could not be restored; fix what the log "
                "said and run vrc-agent --restore-nics")
        return claim

    def remove(self) -> list[str]:
        errors: list[str] = []
        for state in reversed(self.applied):
            failed = state.remove()
            errors.extend(failed)
            claim = self._claims.pop(state.ifname, None)
            if claim is not None:
                claim.release(keep_record=bool(failed))
        self.applied.clear()
        if self.run_dir is not None:
            self.run_dir.tidy()
        return errors
