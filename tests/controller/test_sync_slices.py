"""The pure middle of the Sync pipeline: desired state -> per-host slices -> per-batch deltas.

Records go in as the etcd layer delivers them (Change objects with the
store's JSON encoding), so these tests need no etcd: the store is tested
against a real etcd in its own tests.
"""

from __future__ import annotations

import itertools

from controller.etcd import Change, ChangeKind, KeyValue
from controller.store import (
    AliasRecord,
    ClaimRecord,
    HostRecord,
    Keys,
    LiveRecord,
    Mode,
    PolicyRecord,
    encode,
)
from controller.sync.desired import DesiredState
from controller.sync.slices import HostDelta, Slices
from vrc.v1 import types_pb2 as tpb

KEYS = Keys()


class Feed:
    """Builds changes with increasing revisions, as a watch would deliver them."""

    def __init__(self) -> None:
        self.revision = itertools.count(100)
        self.last = 0

    def put(self, key: str, record: object, lease: int = 0) -> Change:
        self.last = next(self.revision)
        return Change(ChangeKind.PUT, key, encode(record), self.last, self.last, lease)

    def delete(self, key: str) -> Change:
        self.last = next(self.revision)
        return Change(ChangeKind.DELETE, key, b"", self.last)

    def host(self, host: str) -> Change:
        return self.put(KEYS.host(host), HostRecord(host))

    def alias(self, host: str, ifname: str, address: str) -> Change:
        ip, _, plen = address.partition("/")
        net = ".".join(ip.split(".")[:3]) + ".0"
        return self.put(KEYS.alias(host, ip),
                        AliasRecord(host, ifname, address, route=f"{net}/{plen}"))

    def up(self, host: str) -> Change:
        return self.put(KEYS.live(host), LiveRecord(host, "c1"), lease=7)

    def claim(self, prefix: str, host: str, ifname: str) -> Change:
        return self.put(KEYS.claim(prefix, host, ifname), ClaimRecord(prefix, host, ifname))


def chain() -> tuple[Feed, Slices]:
    """h1 -(10.0.12/24)- h2 -(10.0.23/24)- h3, and h3 claims 10.99.0.0/24 on eth9."""
    feed = Feed()
    changes = [
        feed.host("h1"), feed.host("h2"), feed.host("h3"),
        feed.alias("h1", "eth1", "10.0.12.1/24"), feed.alias("h2", "eth1", "10.0.12.2/24"),
        feed.alias("h2", "eth2", "10.0.23.2/24"), feed.alias("h3", "eth1", "10.0.23.3/24"),
        feed.alias("h3", "eth9", "10.99.0.1/24"), feed.claim("10.99.0.0/24", "h3", "eth9"),
        feed.up("h1"), feed.up("h2"), feed.up("h3"),
    ]
    state = DesiredState()
    state.apply(changes)
    state.revision = feed.last
    return feed, Slices(state)


def route_of(slices: Slices, host: str, prefix: str) -> tuple[list[tuple[str, str, str]], int]:
    route = slices.slice_of(host)[f"route/{prefix}"].message.route
    return [(h.gateway, h.ifname, h.via_host) for h in route.next_hops], route.hops


def by_host(deltas: list[HostDelta]) -> dict[str, HostDelta]:
    return {d.host: d for d in deltas}


def test_a_slice_holds_the_hosts_aliases_its_policy_and_its_routes() -> None:
    _, slices = chain()
    assert sorted(slices.slice_of("h1")) == ["alias/eth1/10.0.12.1", "policy",
                                             "route/10.99.0.0/24"]
    assert route_of(slices, "h1", "10.99.0.0/24") == ([("10.0.12.2", "eth1", "h2")], 2)
    assert route_of(slices, "h2", "10.99.0.0/24") == ([("10.0.23.3", "eth2", "h3")], 1)
    assert "route/10.99.0.0/24" not in slices.slice_of("h3")  # the owner reaches it directly
    assert slices.slice_of("h2")["policy"].message.policy == tpb.POLICY_ALLOW
    alias = slices.slice_of("h3")["alias/eth9/10.99.0.1"].message.alias
    assert (alias.host, alias.ifname, alias.address) == ("h3", "eth9", "10.99.0.1/24")


def test_an_alias_change_on_one_host_reaches_only_that_host() -> None:
    feed, slices = chain()
    change = feed.alias("h1", "eth7", "192.168.7.1/32")
    deltas, _ = slices.step([change], feed.last)
    assert [(d.host, [i.key for i in d.upserts], d.removals) for d in deltas] == [
        ("h1", ["alias/eth7/192.168.7.1"], ())]
    assert deltas[0].version == feed.last
    assert slices.changed_at["h1"] == feed.last and slices.changed_at["h2"] < feed.last


def test_the_same_batch_again_changes_nothing() -> None:
    feed, slices = chain()
    change = feed.alias("h1", "eth7", "192.168.7.1/32")
    slices.step([change], feed.last)
    again, _ = slices.step([change], feed.last)
    assert again == []


def test_a_cluster_policy_change_reaches_every_host_once() -> None:
    feed, slices = chain()
    deltas, _ = slices.step([feed.put(KEYS.policy(), PolicyRecord(Mode.MULTIPATH))], feed.last)
    assert sorted(d.host for d in deltas) == ["h1", "h2", "h3"]
    assert all([i.key for i in d.upserts] == ["policy"] for d in deltas)
    override = feed.put(KEYS.override("h2"), PolicyRecord(Mode.REFUSE, "h2"))
    deltas, _ = slices.step([override], feed.last)
    assert [(d.host, d.upserts[0].message.policy) for d in deltas] == [
        ("h2", tpb.POLICY_REFUSE)]


def test_a_host_going_down_reroutes_the_others_and_keeps_its_own_routes() -> None:
    feed, slices = chain()
    before = slices.slice_of("h2")["route/10.99.0.0/24"]
    deltas, _ = slices.step([feed.delete(KEYS.live("h2"))], feed.last)
    changed = by_host(deltas)
    assert changed["h1"].removals == ("route/10.99.0.0/24",)  # no path left around h2
    assert "h2" not in changed  # down: nothing sent, its routes kept
    assert slices.slice_of("h2")["route/10.99.0.0/24"] == before
    deltas, _ = slices.step([feed.up("h2")], feed.last)
    changed = by_host(deltas)
    assert [i.key for i in changed["h1"].upserts] == ["route/10.99.0.0/24"]
    assert "h2" not in changed  # its routes never changed


def test_a_removed_host_loses_its_whole_slice() -> None:
    feed, slices = chain()
    deltas, _ = slices.step([feed.delete(KEYS.alias("h1", "10.0.12.1")),
                             feed.delete(KEYS.host("h1"))], feed.last)
    gone = by_host(deltas)["h1"]
    assert set(gone.removals) == {"alias/eth1/10.0.12.1", "policy", "route/10.99.0.0/24"}
    assert slices.slice_of("h1") == {}


def test_a_new_host_gets_its_policy_and_aliases() -> None:
    feed, slices = chain()
    deltas, _ = slices.step([feed.host("h4"), feed.alias("h4", "eth1", "10.0.34.4/24")],
                            feed.last)
    assert sorted(i.key for i in by_host(deltas)["h4"].upserts) == [
        "alias/eth1/10.0.34.4", "policy"]


def test_fingerprints_change_with_content_and_only_with_it() -> None:
    feed, slices = chain()
    first = slices.slice_of("h1")["alias/eth1/10.0.12.1"].fingerprint
    slices.step([feed.alias("h1", "eth1", "10.0.12.1/24")], feed.last)  # rewritten, same
    assert slices.slice_of("h1")["alias/eth1/10.0.12.1"].fingerprint == first
    deltas, _ = slices.step([feed.alias("h1", "eth1", "10.0.12.1/25")], feed.last)
    assert slices.slice_of("h1")["alias/eth1/10.0.12.1"].fingerprint != first
    assert deltas and deltas[0].host == "h1"


# --- the property: incremental steps agree with a fresh load -----------------------------

from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

HOSTS = ("h1", "h2", "h3", "h4", "h5")
# a ring h1-h2-h3-h4-h1 of /24 segments, h5 hanging off h1, and a stub net per host
SEGMENTS = {("h1", "h2"): "10.0.12", ("h2", "h3"): "10.0.23", ("h3", "h4"): "10.0.34",
            ("h4", "h1"): "10.0.41", ("h5", "h1"): "10.0.15"}
ALIASES = [(a, f"eth{n + 1}{net[-1]}", f"{net}.{HOSTS.index(a) + 1}/24")
           for (x, y), net in SEGMENTS.items() for n, a in enumerate((x, y))]
ALIASES += [(h, "eth9", f"10.9{i}.0.1/24") for i, h in enumerate(HOSTS)]
CLAIMS = [(f"10.9{i}.0.0/24", h, "eth9") for i, h in enumerate(HOSTS)]


def _op(feed: Feed, kind: str, index: int) -> Change:
    if kind == "alias+":
        host, ifname, address = ALIASES[index % len(ALIASES)]
        return feed.alias(host, ifname, address)
    if kind == "alias~":  # the same address moved to another interface of its host
        host, ifname, address = ALIASES[index % len(ALIASES)]
        return feed.alias(host, "eth8" if ifname != "eth8" else "eth7", address)
    if kind == "alias-":
        host, _, address = ALIASES[index % len(ALIASES)]
        return feed.delete(KEYS.alias(host, address.split("/")[0]))
    if kind == "up":
        return feed.up(HOSTS[index % len(HOSTS)])
    if kind == "down":
        return feed.delete(KEYS.live(HOSTS[index % len(HOSTS)]))
    if kind == "claim+":
        return feed.claim(*CLAIMS[index % len(CLAIMS)])
    if kind == "claim-":
        prefix, host, ifname = CLAIMS[index % len(CLAIMS)]
        return feed.delete(KEYS.claim(prefix, host, ifname))
    mode = (Mode.ALLOW, Mode.MULTIPATH, Mode.REFUSE)[index % 3]
    return feed.put(KEYS.policy(), PolicyRecord(mode))


ops = st.lists(st.lists(st.tuples(
    st.sampled_from(["alias+", "alias~", "alias-", "up", "down", "claim+", "claim-",
                     "policy"]),
    st.integers(0, 40)), min_size=1, max_size=4), min_size=1, max_size=12)


@settings(max_examples=300)
@given(batches=ops)
def test_slices_kept_by_steps_equal_the_slices_of_a_fresh_load(
        batches: list[list[tuple[str, int]]]) -> None:
    feed = Feed()
    start = [feed.host(h) for h in HOSTS]  # the whole cluster up and configured, then changes
    start += [feed.alias(*alias) for alias in ALIASES]
    start += [feed.claim(*claim) for claim in CLAIMS] + [feed.up(h) for h in HOSTS]
    state = DesiredState()
    state.apply(start)
    state.revision = feed.last
    slices = Slices(state)
    for batch in batches:
        slices.step([_op(feed, kind, index) for kind, index in batch], feed.last)
    fresh = Slices(DesiredState.load(_kvs(slices.state), feed.last))
    for host in HOSTS:
        kept = {k: i.fingerprint for k, i in slices.slice_of(host).items()}
        wanted = {k: i.fingerprint for k, i in fresh.slice_of(host).items()}
        if not slices.state.is_up(host):  # a down host keeps the routes it had
            kept = {k: v for k, v in kept.items() if not k.startswith("route/")}
            wanted = {k: v for k, v in wanted.items() if not k.startswith("route/")}
        assert kept == wanted, host


def _kvs(state: DesiredState) -> list[KeyValue]:
    """The state as the key-values a fresh list would return."""
    out: list[KeyValue] = []
    for host, record in state.hosts.items():
        out.append(KeyValue(KEYS.host(host), encode(record), 1, 1, 1))
    for aliases in state.aliases.values():
        for key, (alias, revision) in aliases.items():
            out.append(KeyValue(key, encode(alias), revision, revision, 1))
    for key, (claim, created) in state.claims.items():
        out.append(KeyValue(key, encode(claim), created, created, 1))
    if state.policy is not None:
        out.append(KeyValue(KEYS.policy(), encode(PolicyRecord(state.policy)),
                            state.policy_revision, state.policy_revision, 1))
    for host, live in state.live.items():
        out.append(KeyValue(KEYS.live(host), encode(live.record), 1, 1, 1, live.lease))
    return out
