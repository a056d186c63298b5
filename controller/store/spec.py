"""A checked alias as the store takes it, and the IPv4 arithmetic on it."""

from __future__ import annotations

from dataclasses import dataclass

ALL_ONES = 0xFFFFFFFF


@dataclass(frozen=True, slots=True)
class AliasSpec:
    """A checked alias: integers for the addresses, None where a field was not given."""

    host: str
    ifname: str
    address: int
    plen: int
    broadcast: int | None = None
    destination: int | None = None

    @property
    def mask(self) -> int:
        return plen_mask(self.plen)

    @property
    def subnet(self) -> int:
        return self.address & self.mask


def plen_mask(plen: int) -> int:
    return (ALL_ONES << (32 - plen)) & ALL_ONES


def ntoa(value: int) -> str:
    return ".".join(str((value >> shift) & 0xFF) for shift in (24, 16, 8, 0))
