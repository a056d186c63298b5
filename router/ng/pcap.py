"""The classic pcap file format: a writer for taps and a reader for tests.

A pcap file is a 24-byte global header (magic, version 2.4, time zone and
accuracy fields that are always zero, snapshot length, link type) followed
by one 16-byte record header per packet (seconds, microseconds, captured
length, original length) and the captured bytes. tshark, tcpdump and
Wireshark all read it.

The engine never opens files: the writer takes any binary file-like object
the agent or CLI hands it (an open file, ``io.BytesIO``, a pipe).

Two link types are used by vrc:

* ``DLT_EN10MB`` (1): Ethernet frames as they were on the wire.
* ``DLT_NULL`` (0): a 4-byte address family in the *host* byte order of the
  machine that wrote the file, then the network-layer packet. This is what
  the seed's ``ng_iface_bpftap`` prepends for ``ngN`` interfaces; readers
  tell the byte order apart by the value (families are small numbers).
"""

from __future__ import annotations

import struct
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO

from router.wire import Malformed

DLT_NULL = 0
DLT_EN10MB = 1

MAGIC_MICROSECONDS = 0xA1B2C3D4
MAGIC_NANOSECONDS = 0xA1B23C4D
VERSION_MAJOR = 2
VERSION_MINOR = 4
DEFAULT_SNAPLEN = 65535

GLOBAL_HEADER_LEN = 24
RECORD_HEADER_LEN = 16
NULL_HEADER_LEN = 4

# The writer uses the host's own byte order, like libpcap does; the reader
# accepts either.
_NATIVE = "<" if sys.byteorder == "little" else ">"
_GLOBAL = struct.Struct(_NATIVE + "IHHiIII")
_RECORD = struct.Struct(_NATIVE + "IIII")
_FAMILY = struct.Struct(_NATIVE + "I")


def null_header(family: int) -> bytes:
    """The DLT_NULL pseudo-header: the address family as 4 bytes in host order."""
    return _FAMILY.pack(family)


def split_timestamp(now: float) -> tuple[int, int]:
    """Seconds and microseconds of an engine time, rounded to the microsecond."""
    if now < 0:
        raise ValueError(f"negative timestamp {now!r}")
    micros = round(now * 1_000_000)
    return divmod(micros, 1_000_000)


class PcapWriter:
    """Write a pcap stream of one link type into a binary file-like object.

    The global header is written at construction, so an empty capture is
    still a valid file. Frames longer than ``snaplen`` are cut to it; the
    record keeps the original length, as a capture does.
    """

    __slots__ = ("_out", "linktype", "records", "snaplen")

    def __init__(self, out: BinaryIO, linktype: int, snaplen: int = DEFAULT_SNAPLEN) -> None:
        if snaplen <= 0:
            raise ValueError(f"snaplen must be positive, not {snaplen}")
        self._out = out
        self.linktype = linktype
        self.snaplen = snaplen
        self.records = 0
        out.write(_GLOBAL.pack(MAGIC_MICROSECONDS, VERSION_MAJOR, VERSION_MINOR, 0, 0,
                               snaplen, linktype))

    def write(self, timestamp: float, frame: bytes | bytearray | memoryview,
              orig_len: int | None = None) -> None:
        """Append one record; ``orig_len`` defaults to the frame's own length."""
        seconds, micros = split_timestamp(timestamp)
        captured = bytes(frame[: self.snaplen])
        length = len(frame) if orig_len is None else max(orig_len, len(captured))
        self._out.write(_RECORD.pack(seconds, micros, len(captured), length))
        self._out.write(captured)
        self.records += 1

    def flush(self) -> None:
        self._out.flush()


@dataclass(frozen=True, slots=True)
class PcapRecord:
    """One packet read back from a pcap stream."""

    timestamp: float
    data: bytes
    orig_len: int


class PcapReader:
    """Read a pcap stream: ``linktype``, ``snaplen``, then iterate the records.

    Both byte orders and both timestamp resolutions (micro- and nanoseconds)
    are accepted. A stream that ends inside a header or a record is
    ``Malformed``.
    """

    __slots__ = ("_in", "_record", "_scale", "byteorder", "linktype", "snaplen", "swapped")

    def __init__(self, src: BinaryIO) -> None:
        self._in = src
        head = _read_exact(src, GLOBAL_HEADER_LEN, "global header")
        order, self._scale = _byte_order_and_scale(head[:4])
        self.byteorder = order  # the writer's: struct prefix "<" or ">"
        self.swapped = order != _NATIVE
        fields = struct.unpack(order + "IHHiIII", head)
        if (fields[1], fields[2]) != (VERSION_MAJOR, VERSION_MINOR):
            raise Malformed(f"pcap version {fields[1]}.{fields[2]}")
        self.snaplen = fields[5]
        self.linktype = fields[6]
        self._record = struct.Struct(order + "IIII")

    def __iter__(self) -> Iterator[PcapRecord]:
        while True:
            head = self._in.read(RECORD_HEADER_LEN)
            if not head:
                return
            if len(head) < RECORD_HEADER_LEN:
                raise Malformed("pcap record header cut short")
            seconds, fraction, caplen, orig_len = self._record.unpack(head)
            data = _read_exact(self._in, caplen, "pcap record data")
            yield PcapRecord(seconds + fraction / self._scale, data, orig_len)

    def family(self, record: PcapRecord) -> int:
        """The address family of a DLT_NULL record, in the writer's byte order."""
        if len(record.data) < NULL_HEADER_LEN:
            raise Malformed("DLT_NULL record shorter than its family header")
        family: int = struct.unpack(self.byteorder + "I", record.data[:NULL_HEADER_LEN])[0]
        return family


def _byte_order_and_scale(magic: bytes) -> tuple[str, int]:
    for order in ("<", ">"):
        value = struct.unpack(order + "I", magic)[0]
        if value == MAGIC_MICROSECONDS:
            return order, 1_000_000
        if value == MAGIC_NANOSECONDS:
            return order, 1_000_000_000
    raise Malformed(f"not a pcap stream (magic {magic.hex()})")


def _read_exact(src: BinaryIO, size: int, what: str) -> bytes:
    data = src.read(size)
    if len(data) != size:
        raise Malformed(f"{what} cut short")
    return data
