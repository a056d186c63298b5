"""The key layout under the store's root (default ``/vrc/v1/``); docs/store.md describes it.

Every name that goes into a key is validated first (host ids are DNS names,
interface names have no ``/``, addresses are dotted quads), so a key splits
back into its parts unambiguously. Prefixes end in ``/`` so ``aliases/h1/``
never matches ``aliases/h10/``. An identity (``spiffe://vrc/admin/alice``) goes
into its ``access/`` key percent-encoded, so it is one path segment too.

The audit trail lives *beside* the root, not under it (``/vrc/v1-history/``
for the root ``/vrc/v1/``): snapshots and watches of the configuration never
read or see it, however long it grows.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import quote, unquote

DEFAULT_ROOT = "/vrc/v1/"


@dataclass(frozen=True, slots=True)
class Keys:
    root: str = DEFAULT_ROOT

    def __post_init__(self) -> None:
        if not self.root.startswith("/") or not self.root.endswith("/"):
            raise ValueError(f"store root {self.root!r}: must start and end with '/'")

    # -- desired configuration ------------------------------------------------------------

    def hosts(self) -> str:
        return f"{self.root}hosts/"

    def host(self, host: str) -> str:
        return f"{self.root}hosts/{host}"

    def aliases(self, host: str = "") -> str:
        return f"{self.root}aliases/{host}/" if host else f"{self.root}aliases/"

    def alias(self, host: str, address: str) -> str:
        """``address`` is the bare dotted quad: one alias per address on a host."""
        return f"{self.root}aliases/{host}/{address}"

    def claims(self, prefix: str = "") -> str:
        """Every claim, or every claim of ``prefix`` ("A/LEN")."""
        return f"{self.root}prefixes/{prefix}/" if prefix else f"{self.root}prefixes/"

    def claim(self, prefix: str, host: str, ifname: str) -> str:
        return f"{self.root}prefixes/{prefix}/{host}/{ifname}"

    def policy(self) -> str:
        return f"{self.root}policy"

    def overrides(self) -> str:
        return f"{self.root}policy/hosts/"

    def override(self, host: str) -> str:
        return f"{self.root}policy/hosts/{host}"

    # -- guards: invariants that span keys ------------------------------------------------

    def same_prefix_guards(self, host: str = "") -> str:
        return (f"{self.root}guards/same-prefix/{host}/" if host
                else f"{self.root}guards/same-prefix/")

    def same_prefix_guard(self, host: str, route: str) -> str:
        """``route`` is the prefix route key "A/LEN" (a point-to-point alias: "DEST/32")."""
        return f"{self.root}guards/same-prefix/{host}/{route}"

    def prefix_guards(self) -> str:
        return f"{self.root}guards/prefix/"

    def prefix_guard(self, prefix: str) -> str:
        return f"{self.root}guards/prefix/{prefix}"

    def claims_of(self, host: str) -> str:
        return f"{self.root}guards/claims-of/{host}"

    # -- access and the audit trail (docs/security.md) -----------------------------------

    def access_records(self) -> str:
        return f"{self.root}access/"

    def access(self, identity: str) -> str:
        return f"{self.root}access/{quote(identity, safe='')}"

    def identity_of(self, key: str) -> str:
        """The identity an ``access/`` key is about."""
        return unquote(key[len(self.access_records()):])

    def history(self) -> str:
        """The audit trail's prefix: next to the root (``/vrc/v1-history/``)."""
        return f"{self.root[:-1]}-history/"

    def history_at(self, at_ns: int, unique: str = "") -> str:
        """A history key: the write's time (ns, zero-padded so keys sort by time), then a
        suffix that keeps two writes in one nanosecond apart. With ``unique`` empty: the
        first key at ``at_ns`` (a range start)."""
        stamp = f"{self.history()}{max(at_ns, 0):020d}"
        return f"{stamp}-{unique}" if unique else stamp

    # -- written by the Sync side (issue 13); reserved here ------------------------------

    def statuses(self) -> str:
        return f"{self.root}status/"

    def status(self, host: str) -> str:
        return f"{self.root}status/{host}"

    def lives(self) -> str:
        return f"{self.root}live/"

    def live(self, host: str) -> str:
        return f"{self.root}live/{host}"

    # -- parsing --------------------------------------------------------------------------

    def kind_of(self, key: str) -> str:
        """The record family of ``key``: hosts, aliases, prefixes, policy, overrides,
        guards, status, live, access; "" for a key outside the root."""
        if not key.startswith(self.root):
            return ""
        rest = key[len(self.root):]
        if rest == "policy":
            return "policy"
        if rest.startswith("policy/hosts/"):
            return "overrides"
        head = rest.split("/", 1)[0]
        return head if head in {"hosts", "aliases", "prefixes", "guards", "status",
                                "live", "access"} else ""

    def parts(self, key: str) -> list[str]:
        """The names after the family: ``aliases/h1/10.0.0.1`` → ``["h1", "10.0.0.1"]``."""
        rest = key[len(self.root):]
        if rest.startswith("policy/hosts/"):
            return [rest[len("policy/hosts/"):]]
        return rest.split("/")[1:]
