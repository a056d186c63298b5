"""The Internet checksum and its RFC 1624 incremental update."""

from __future__ import annotations

import struct

from hypothesis import given, settings
from hypothesis import strategies as st
from scapy.layers.inet import IP
from scapy.utils import checksum as scapy_checksum

from router.wire.checksum import (
    TTL_DECREMENT_CHECKSUM,
    checksum_after_ttl_decrement,
    internet_checksum,
    ones_complement_sum,
    update_checksum,
)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200))
def test_internet_checksum_matches_scapy(data: bytes) -> None:
    assert internet_checksum(data) == scapy_checksum(data)


def test_checksum_of_header_with_its_checksum_is_zero() -> None:
    header = bytes(IP(src="10.0.0.1", dst="10.0.0.2", ttl=9))[:20]
    assert internet_checksum(header) == 0


def test_odd_length_is_padded_with_a_zero_byte() -> None:
    assert internet_checksum(b"\x12\x34\x56") == internet_checksum(b"\x12\x34\x56\x00")


def test_all_zero_buffer_sums_to_zero_and_nonzero_never_does() -> None:
    assert ones_complement_sum(bytes(20)) == 0
    assert ones_complement_sum(b"\xff\xff") == 0xFFFF
    assert ones_complement_sum(b"\x00\x01\xff\xfe") == 0xFFFF  # negative zero kept


def test_initial_partial_sum_is_added() -> None:
    whole = b"\x01\x02\x03\x04\x05\x06"
    assert internet_checksum(whole[2:], ones_complement_sum(whole[:2])) == internet_checksum(
        whole
    )


@settings(max_examples=300, deadline=None)
@given(
    st.binary(min_size=20, max_size=20),
    st.sampled_from([1, 2, 3, 4, 6, 7, 8, 9]),
    st.integers(0, 0xFFFF),
)
def test_incremental_update_equals_full_recomputation(
    raw: bytes, word: int, new: int
) -> None:
    header = bytearray(raw)
    header[0] |= 0x40  # word 0 stays non-zero: never an all-zero header
    header[10:12] = b"\x00\x00"
    header[10:12] = struct.pack("!H", internet_checksum(header))
    checksum = struct.unpack_from("!H", header, 10)[0]
    old = struct.unpack_from("!H", header, word * 2)[0]
    struct.pack_into("!H", header, word * 2, new)
    updated = update_checksum(checksum, old, new)
    header[10:12] = b"\x00\x00"
    assert updated == internet_checksum(header)


@settings(max_examples=300, deadline=None)
@given(st.integers(2, 255), st.integers(0, 255), st.binary(min_size=8, max_size=8))
def test_ttl_decrement_table_equals_full_recomputation(ttl: int, proto: int, addrs: bytes) -> None:
    packet = bytes(IP(ttl=ttl, proto=proto, src="0.0.0.0", dst="0.0.0.0"))
    header = bytearray(packet[:20])
    header[12:20] = addrs
    header[10:12] = b"\x00\x00"
    header[10:12] = struct.pack("!H", internet_checksum(header))
    before = struct.unpack_from("!H", header, 10)[0]
    header[8] = ttl - 1
    header[10:12] = b"\x00\x00"
    assert checksum_after_ttl_decrement(before) == internet_checksum(header)


def test_ttl_decrement_never_gives_negative_zero() -> None:
    # RFC 1141's HC + 0x0100 turns 0xFEFF into 0xFFFF; RFC 1624 gives 0x0000.
    assert checksum_after_ttl_decrement(0xFEFF) == 0x0000
    assert 0xFFFF not in TTL_DECREMENT_CHECKSUM[:0xFFFF]


def test_ttl_decrement_table_is_the_closed_form() -> None:
    assert all(TTL_DECREMENT_CHECKSUM[hc] == (hc + 0x0100) % 0xFFFF for hc in range(0x10000))
