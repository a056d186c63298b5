"""IPv4 fragmentation (``ip_fragment``, RFC 791): a datagram too big for the output MTU.

``Ipv4`` fragments what it forwards or originates when the datagram is larger
than the output interface's MTU and DF is clear; fragments addressed to the
router itself are put back together by ``router/ipv4/reassembly.py``.
"""

from __future__ import annotations

from router.wire import ipv4 as ip
from router.wire.ipv4 import Ipv4Header


def copied_options(options: bytes | bytearray | memoryview) -> bytes:
    """The options a non-first fragment carries: those with the copied flag (RFC 791)."""
    kept = bytearray()
    pos = 0
    while pos < len(options):
        kind = options[pos]
        if kind == 0:  # end of options
            break
        if kind == 1:  # no-operation, not copied
            pos += 1
            continue
        if pos + 1 >= len(options) or options[pos + 1] < 2:
            break  # malformed option list: keep what we have
        length = options[pos + 1]
        if kind & 0x80:
            kept += options[pos : pos + length]
        pos += length
    kept += bytes(-len(kept) % 4)
    return bytes(kept)


def fragment(packet: bytes | bytearray | memoryview, hdr: Ipv4Header, mtu: int) -> list[bytes]:
    """Split ``packet`` into fragments of at most ``mtu`` bytes (``ip_fragment``).

    Data goes in multiples of 8 bytes; the first fragment keeps every
    option, the others only the copied ones; a fragment of a fragment keeps
    the original offset and MF. Empty if ``mtu`` cannot carry 8 data bytes.
    """
    header_len = hdr.header_len
    head = bytes(packet[:header_len])
    later_options = copied_options(head[ip.MIN_HEADER_LEN :])
    payload = memoryview(packet)[header_len : hdr.total_length]
    base_offset = hdr.frag & ip.OFFSET_MASK
    last_has_mf = hdr.frag & ip.FLAG_MF
    pieces: list[bytes] = []
    pos = 0
    options = head[ip.MIN_HEADER_LEN :]
    while pos < len(payload):
        room = (mtu - ip.MIN_HEADER_LEN - len(options)) & ~7
        if room <= 0:
            return []
        chunk = payload[pos : pos + room]
        more = pos + len(chunk) < len(payload)
        frag = (hdr.frag & ip.FLAG_DF) | (base_offset + pos // 8)
        if more or last_has_mf:
            frag |= ip.FLAG_MF
        pieces.append(ip.emit(src=hdr.src, dst=hdr.dst, protocol=hdr.protocol, payload=chunk,
                              ttl=packet[ip.TTL_OFF], tos=hdr.tos, ident=hdr.ident, frag=frag,
                              options=options))
        pos += len(chunk)
        options = later_options
    return pieces
