"""router.ng.pcap: the classic pcap format, written for taps and read back by tshark."""

from __future__ import annotations

import io
import struct
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scapy.all import ICMP, IP, Ether, raw

from router.link.ifnet import AF_INET
from router.ng.pcap import (
    DLT_EN10MB,
    DLT_NULL,
    GLOBAL_HEADER_LEN,
    MAGIC_MICROSECONDS,
    MAGIC_NANOSECONDS,
    PcapReader,
    PcapWriter,
    null_header,
    split_timestamp,
)
from router.wire import Malformed

TSHARK = "/usr/bin/tshark"


def _icmp_echo_frame() -> bytes:
    return raw(
        Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02")
        / IP(src="10.0.0.1", dst="10.0.0.2")
        / ICMP(type=8, id=0x77, seq=3)
        / b"vrc-tap"
    )


def _tshark_fields(path: Path, *fields: str) -> list[list[str]]:
    """Decode ``path`` with tshark; fails (never skips) if tshark is missing or refuses it."""
    command = [TSHARK, "-r", str(path), "-T", "fields"]
    for name in fields:
        command += ["-e", name]
    done = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    return [line.split("\t") for line in done.stdout.splitlines()]


def test_global_header_is_pcap_2_4_with_snaplen_and_linktype() -> None:
    out = io.BytesIO()
    PcapWriter(out, DLT_EN10MB, snaplen=1500)
    head = out.getvalue()
    assert len(head) == GLOBAL_HEADER_LEN
    order = "<" if sys.byteorder == "little" else ">"
    assert struct.unpack(order + "IHHiIII", head) == (MAGIC_MICROSECONDS, 2, 4, 0, 0, 1500,
                                                      DLT_EN10MB)


def test_record_keeps_original_length_when_cut_to_snaplen() -> None:
    out = io.BytesIO()
    writer = PcapWriter(out, DLT_EN10MB, snaplen=20)
    writer.write(3.0, bytes(range(60)))
    out.seek(0)
    [record] = list(PcapReader(out))
    assert record.data == bytes(range(20))
    assert record.orig_len == 60


def test_timestamp_is_split_into_seconds_and_microseconds() -> None:
    assert split_timestamp(12.000_001_4) == (12, 1)
    assert split_timestamp(0.999_999_7) == (1, 0)  # rounding carries into the seconds
    with pytest.raises(ValueError):
        split_timestamp(-1.0)


def test_null_header_is_the_family_in_host_byte_order() -> None:
    assert null_header(AF_INET) == AF_INET.to_bytes(4, sys.byteorder)


def test_reader_accepts_the_other_byte_order_and_nanoseconds() -> None:
    order = ">" if sys.byteorder == "little" else "<"
    data = struct.pack(order + "IHHiIII", MAGIC_NANOSECONDS, 2, 4, 0, 0, 65535, DLT_NULL)
    payload = struct.pack(order + "I", AF_INET) + b"\x45"
    data += struct.pack(order + "IIII", 7, 500_000_000, len(payload), len(payload)) + payload
    reader = PcapReader(io.BytesIO(data))
    assert reader.swapped
    [record] = list(reader)
    assert record.timestamp == 7.5
    assert reader.family(record) == AF_INET


def test_reader_refuses_bad_magic_and_cut_records() -> None:
    with pytest.raises(Malformed):
        PcapReader(io.BytesIO(b"\x00" * GLOBAL_HEADER_LEN))
    out = io.BytesIO()
    PcapWriter(out, DLT_EN10MB).write(1.0, b"abcdef")
    cut = io.BytesIO(out.getvalue()[:-2])
    with pytest.raises(Malformed):
        list(PcapReader(cut))


def test_writer_refuses_non_positive_snaplen() -> None:
    with pytest.raises(ValueError):
        PcapWriter(io.BytesIO(), DLT_EN10MB, snaplen=0)


@settings(max_examples=60, deadline=None)
@given(
    frames=st.lists(
        st.tuples(st.integers(0, 2**31), st.integers(0, 999_999), st.binary(max_size=300)),
        max_size=8,
    ),
    snaplen=st.integers(1, 400),
)
def test_written_records_read_back_unchanged(
    frames: list[tuple[int, int, bytes]], snaplen: int
) -> None:
    out = io.BytesIO()
    writer = PcapWriter(out, DLT_NULL, snaplen)
    for seconds, micros, frame in frames:
        writer.write(seconds + micros / 1_000_000, frame)
    out.seek(0)
    reader = PcapReader(out)
    assert (reader.linktype, reader.snaplen) == (DLT_NULL, snaplen)
    back = list(reader)
    assert [r.data for r in back] == [f[:snaplen] for _, _, f in frames]
    assert [r.orig_len for r in back] == [len(f) for _, _, f in frames]
    assert [split_timestamp(r.timestamp) for r in back] == [(s, u) for s, u, _ in frames]


def test_tshark_decodes_ethernet_icmp_echo(tmp_path: Path) -> None:
    path = tmp_path / "ether.pcap"
    with path.open("wb") as out:
        PcapWriter(out, DLT_EN10MB).write(1.5, _icmp_echo_frame())
    rows = _tshark_fields(path, "frame.protocols", "eth.src", "ip.src", "ip.dst", "icmp.type",
                          "icmp.seq", "frame.time_epoch")
    assert len(rows) == 1
    protocols, src_mac, src, dst, icmp_type, seq, when = rows[0]
    assert protocols.startswith("eth:ethertype:ip:icmp")
    assert (src_mac, src, dst, icmp_type, seq) == ("02:00:00:00:00:01", "10.0.0.1",
                                                   "10.0.0.2", "8", "3")
    assert float(when) == 1.5


def test_tshark_decodes_null_family_header_and_ipv4(tmp_path: Path) -> None:
    path = tmp_path / "null.pcap"
    packet = raw(IP(src="10.9.0.1", dst="10.9.0.2", ttl=17) / ICMP(type=0))
    with path.open("wb") as out:
        PcapWriter(out, DLT_NULL).write(2.25, null_header(AF_INET) + packet)
    rows = _tshark_fields(path, "frame.protocols", "null.family", "ip.src", "ip.dst", "ip.ttl",
                          "icmp.type")
    assert rows == [["null:ip:icmp", str(AF_INET), "10.9.0.1", "10.9.0.2", "17", "0"]]
