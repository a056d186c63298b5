"""The store's invariants, each against a real etcd; nothing is written when a write is refused."""

from __future__ import annotations

import json
import random
from collections.abc import Callable

import pytest

from controller import validate
from controller.etcd import Txn
from controller.store import (
    Aborted,
    AlreadyExists,
    Corrupt,
    FailedPrecondition,
    InvalidArgument,
    LiveRecord,
    Mode,
    Nic,
    NotFound,
    Role,
    Store,
    StoreError,
    WriteContext,
    encode,
)
from controller.store.hosts import CASCADE_CHUNK
from controller.store.records import AliasRecord, HostRecord, PolicyRecord, decode


def spec(host: str, ifname: str, address: str, broadcast: str = "",
         destination: str = "") -> validate.AliasSpec:
    return validate.alias(host, ifname, address, broadcast, destination)


def refused(store: Store, error: type[StoreError], write: Callable[[], object],
            match: str = "") -> StoreError:
    """``write`` raises ``error`` (matching ``match``) and the store revision does not move."""
    before = store.revision()
    with pytest.raises(error, match=match) as caught:
        write()
    assert store.revision() == before, "a refused write changed the store"
    return caught.value


def keys_under(store: Store) -> dict[str, bytes]:
    return {kv.key[len(store.keys.root):]: kv.value
            for kv in store.etcd.get_prefix(store.keys.root).kvs}


def make_live(store: Store, *hosts: str) -> None:
    for host in hosts:
        store.etcd.txn(Txn().put(store.keys.live(host), encode(LiveRecord(host, "test"))))


def make_down(store: Store, host: str) -> None:
    store.etcd.txn(Txn().delete(store.keys.live(host)))


# --- hosts -------------------------------------------------------------------------------


def test_a_host_is_added_once(store: Store) -> None:
    revision = store.add_host("h1")
    assert store.get_host("h1").revision == revision
    refused(store, AlreadyExists, lambda: store.add_host("h1"), "h1.*already exists")


def test_unknown_hosts_are_not_found(store: Store) -> None:
    refused(store, NotFound, lambda: store.get_host("nope"), "nope")
    refused(store, NotFound, lambda: store.remove_host("nope"), "nope")
    refused(store, NotFound, lambda: store.put_alias(spec("nope", "eth1", "10.0.0.1/24")),
            "alias.host 'nope'")
    refused(store, NotFound, lambda: store.put_claim("10.9.0.0/16", "nope", "eth1"), "nope")
    refused(store, NotFound, lambda: store.list_aliases("nope"), "nope")


def test_expected_revision_makes_a_stale_write_aborted_with_the_current_revision(
        store: Store) -> None:
    created = store.add_host("h1")
    first = store.put_alias(spec("h1", "eth1", "10.0.0.1/24"), expected_revision=0)
    error = refused(store, Aborted, lambda: store.put_alias(
        spec("h1", "eth1", "10.0.0.1/16"), expected_revision=created), f"revision {first}")
    assert error.revision == first
    second = store.put_alias(spec("h1", "eth1", "10.0.0.1/16"), expected_revision=first)
    assert second > first
    error = refused(store, Aborted, lambda: store.add_host("h2", expected_revision=7),
                    "does not exist")
    assert error.revision == 0


def test_removing_a_host_with_aliases_or_claims_needs_cascade(store: Store) -> None:
    store.add_host("h1")
    store.put_alias(spec("h1", "eth1", "10.0.0.1/24"))
    store.put_claim("10.9.0.0/16", "h1", "eth1")
    refused(store, FailedPrecondition, lambda: store.remove_host("h1"),
            "1 alias and 1 prefix claim.*cascade")
    store.set_policy(Mode.MULTIPATH, "h1")
    store.remove_host("h1", cascade=True)
    assert keys_under(store) == {}, "the cascade left records behind"


def test_a_removed_host_takes_its_override_along(store: Store) -> None:
    store.add_host("h1")
    store.set_policy(Mode.REFUSE, "h1")
    store.remove_host("h1")
    assert keys_under(store) == {}


def test_a_cascade_with_many_claims_removes_them_all_within_etcd_limits(store: Store) -> None:
    store.add_host("h1")
    store.add_host("h2")
    count = CASCADE_CHUNK * 2 + 5
    for index in range(count):
        store.put_claim(f"10.{index}.0.0/16", "h1", "eth1")
    store.put_claim("10.0.0.0/16", "h2", "eth1")  # shared with another host: stays
    store.remove_host("h1", cascade=True)
    left = keys_under(store)
    assert set(left) == {"hosts/h2", "prefixes/10.0.0.0/16/h2/eth1", "guards/prefix/10.0.0.0/16",
                         "guards/claims-of/h2"}
    assert json.loads(left["guards/prefix/10.0.0.0/16"])["claims"] == [
        {"host": "h2", "ifname": "eth1"}]


def test_configuration_is_never_on_a_lease(store: Store) -> None:
    store.add_host("h1")
    store.put_alias(spec("h1", "eth1", "10.0.0.1/24"))
    store.put_claim("10.9.0.0/16", "h1", "eth1")
    store.set_policy(Mode.ALLOW, "h1")
    kvs = store.etcd.get_prefix(store.keys.root).kvs
    assert kvs and all(kv.lease == 0 for kv in kvs)


# --- aliases -----------------------------------------------------------------------------


def test_one_alias_per_address_on_a_host(store: Store) -> None:
    store.add_host("h1")
    store.put_alias(spec("h1", "eth1", "10.0.0.1/24"))
    refused(store, AlreadyExists, lambda: store.put_alias(spec("h1", "eth2", "10.0.0.1/24")),
            "already an alias of eth1")
    store.add_host("h2")
    store.put_alias(spec("h2", "eth2", "10.0.0.1/24"))  # another host: fine


def test_putting_the_same_alias_again_writes_nothing(store: Store) -> None:
    store.add_host("h1")
    revision = store.put_alias(spec("h1", "eth1", "10.0.0.1/24"))
    assert store.put_alias(spec("h1", "eth1", "10.0.0.1/24")) == revision
    assert store.revision() == revision


def test_replacing_an_alias_moves_it_between_guards(store: Store) -> None:
    store.add_host("h1")
    store.put_alias(spec("h1", "eth1", "10.0.0.1/24"))
    store.put_alias(spec("h1", "eth1", "10.0.0.1/16"))
    keys = keys_under(store)
    assert "guards/same-prefix/h1/10.0.0.0/24" not in keys
    assert json.loads(keys["guards/same-prefix/h1/10.0.0.0/16"])["members"] == [
        {"address": "10.0.0.1", "ifname": "eth1"}]


def test_refuse_allows_one_alias_per_prefix_on_a_host_whatever_the_interface(
        store: Store) -> None:
    store.add_host("h1")
    store.set_policy(Mode.REFUSE)
    store.put_alias(spec("h1", "eth1", "10.0.0.1/24"))
    refused(store, AlreadyExists, lambda: store.put_alias(spec("h1", "eth2", "10.0.0.2/24")),
            "already routed by 10.0.0.1 on eth1")
    refused(store, AlreadyExists, lambda: store.put_alias(spec("h1", "eth1", "10.0.0.3/24")),
            "already routed by 10.0.0.1 on eth1")
    store.put_alias(spec("h1", "eth2", "10.0.1.2/24"))  # another prefix
    store.add_host("h2")
    store.put_alias(spec("h2", "eth1", "10.0.0.2/24"))  # another host


def test_point_to_point_aliases_compare_by_destination(store: Store) -> None:
    store.add_host("h1")
    store.set_policy(Mode.REFUSE)
    store.put_alias(spec("h1", "ng0", "10.1.0.1/24", destination="10.1.0.2"))
    store.put_alias(spec("h1", "ng1", "10.1.0.3/24", destination="10.1.0.4"))  # other dest
    refused(store, AlreadyExists, lambda: store.put_alias(
        spec("h1", "ng2", "10.1.0.5/24", destination="10.1.0.2")), "10.1.0.2/32")
    refused(store, AlreadyExists, lambda: store.put_alias(spec("h1", "eth1", "10.1.0.2/32")),
            "10.1.0.2/32")


def test_a_registered_host_knows_its_interfaces(store: Store) -> None:
    store.report_host("h1", [Nic("eth0", "02:00:00:00:00:01", 1500),
                             Nic("ng0", "", 1500, point_to_point=True)])
    refused(store, NotFound, lambda: store.put_alias(spec("h1", "eth9", "10.0.0.1/24")),
            "eth9.*reported: eth0, ng0")
    refused(store, InvalidArgument, lambda: store.put_alias(spec("h1", "ng0", "10.0.0.1/24")),
            "point-to-point.*EDESTADDRREQ")
    refused(store, InvalidArgument, lambda: store.put_alias(
        spec("h1", "eth0", "10.0.0.1/24", destination="10.0.0.2")), "not point-to-point")
    refused(store, NotFound, lambda: store.put_claim("10.9.0.0/16", "h1", "eth9"), "eth0, ng0")
    store.put_alias(spec("h1", "ng0", "10.0.0.1/24", destination="10.0.0.2"))


def test_a_host_added_ahead_of_its_agent_takes_any_interface_name(store: Store) -> None:
    store.add_host("h1")
    store.put_alias(spec("h1", "whatever0", "10.0.0.1/24"))
    assert store.get_host("h1").record == HostRecord("h1")


def test_deleting_an_alias_names_what_is_there(store: Store) -> None:
    store.add_host("h1")
    store.put_alias(spec("h1", "eth1", "10.0.0.1/24"))
    ip = validate.ipv4("a", "10.0.0.1")
    refused(store, NotFound, lambda: store.delete_alias("h1", "eth2", ip), "is on eth1")
    refused(store, NotFound, lambda: store.delete_alias("h1", "eth1", ip, 16),
            "has 10.0.0.1/24")
    refused(store, NotFound, lambda: store.delete_alias("h1", "eth1", ip + 1), "no such alias")
    store.delete_alias("h1", "eth1", ip, 24)
    assert keys_under(store) == {"hosts/h1": keys_under(store)["hosts/h1"]}


# --- the policy --------------------------------------------------------------------------


def test_switching_to_refuse_is_refused_while_aliases_break_it(store: Store) -> None:
    store.add_host("h1")
    store.put_alias(spec("h1", "eth1", "10.0.0.1/24"))
    store.put_alias(spec("h1", "eth2", "10.0.0.2/24"))
    refused(store, FailedPrecondition, lambda: store.set_policy(Mode.REFUSE),
            r"host h1 has 10\.0\.0\.1 \(eth1\) and 10\.0\.0\.2 \(eth2\) on prefix 10\.0\.0\.0/24")
    refused(store, FailedPrecondition, lambda: store.set_policy(Mode.REFUSE, "h1"), "h1")
    store.set_policy(Mode.ALLOW, "h1")  # h1 keeps allow: the cluster may refuse
    store.set_policy(Mode.REFUSE)
    assert store.get_policy("h1").effective is Mode.ALLOW
    refused(store, FailedPrecondition, lambda: store.set_policy(None, "h1", clear=True),
            "10.0.0.2")
    store.delete_alias("h1", "eth2", validate.ipv4("a", "10.0.0.2"))
    store.set_policy(None, "h1", clear=True)
    view = store.get_policy("h1")
    assert view.mode is Mode.REFUSE and view.effective is Mode.REFUSE and view.overrides == {}


def test_switching_to_refuse_is_refused_while_a_prefix_has_two_claimants(store: Store) -> None:
    for host in ("h1", "h2"):
        store.add_host(host)
        store.put_claim("10.9.0.0/16", host, "eth1")
    refused(store, FailedPrecondition, lambda: store.set_policy(Mode.REFUSE),
            "10.9.0.0/16 is claimed by h1/eth1 and h2/eth1")


def test_policy_overrides_are_per_host(store: Store) -> None:
    store.add_host("h1")
    store.add_host("h2")
    revision = store.set_policy(Mode.REFUSE, "h1")
    assert store.get_policy("h1").revision == revision
    store.put_alias(spec("h2", "eth1", "10.0.0.1/24"))
    store.put_alias(spec("h2", "eth2", "10.0.0.2/24"))  # h2 follows the cluster's allow
    store.put_alias(spec("h1", "eth1", "10.0.0.1/24"))
    refused(store, AlreadyExists, lambda: store.put_alias(spec("h1", "eth2", "10.0.0.2/24")),
            "refuse")
    refused(store, NotFound, lambda: store.set_policy(Mode.ALLOW, "h9"), "h9")
    refused(store, InvalidArgument, lambda: store.set_policy(None, clear=True), "host")


# --- prefix claims -----------------------------------------------------------------------


def test_refuse_allows_one_claimant_per_prefix(store: Store) -> None:
    store.set_policy(Mode.REFUSE)
    for host in ("h1", "h2"):
        store.add_host(host)
    store.put_claim("10.9.0.0/16", "h1", "eth1")
    refused(store, AlreadyExists, lambda: store.put_claim("10.9.0.0/16", "h2", "eth1"),
            "already claimed by h1/eth1")


def test_claim_roles_follow_the_policy_and_liveness(store: Store) -> None:
    for host in ("h1", "h2", "h3"):
        store.add_host(host)
        store.put_claim("10.9.0.0/16", host, "eth1")

    def roles() -> dict[str, Role]:
        return {c.record.host: c.role for c in store.list_claims("10.9.0.0/16").items}

    assert roles() == {"h1": Role.DOWN, "h2": Role.DOWN, "h3": Role.DOWN}
    make_live(store, "h1", "h2", "h3")
    assert roles() == {"h1": Role.OWNER, "h2": Role.STANDBY, "h3": Role.STANDBY}
    make_down(store, "h1")  # the hand-over goes to the oldest live standby
    assert roles() == {"h1": Role.DOWN, "h2": Role.OWNER, "h3": Role.STANDBY}
    store.delete_claims("10.9.0.0/16", "h2")
    assert roles() == {"h1": Role.DOWN, "h3": Role.OWNER}
    store.set_policy(Mode.MULTIPATH)
    make_live(store, "h1")
    assert roles() == {"h1": Role.OWNER, "h3": Role.OWNER}


def test_deleting_claims_that_do_not_exist_is_not_found(store: Store) -> None:
    store.add_host("h1")
    store.put_claim("10.9.0.0/16", "h1", "eth1")
    refused(store, NotFound, lambda: store.delete_claims("10.9.0.0/16", "h2"), "by h2")
    refused(store, NotFound, lambda: store.delete_claims("10.8.0.0/16"), "anyone")
    store.delete_claims("10.9.0.0/16")
    assert set(keys_under(store)) == {"hosts/h1"}


# --- the write loop ----------------------------------------------------------------------


def test_a_write_hook_adds_to_the_same_transaction(store: Store) -> None:
    seen: list[WriteContext] = []

    def audit(txn: Txn, context: WriteContext) -> None:
        seen.append(context)
        txn.put(store.keys.root + "audit/last", context.subject.encode())

    store.hooks.append(audit)
    store.add_host("h1")
    revision = store.put_alias(spec("h1", "eth1", "10.0.0.1/24"))
    kv, _ = store.etcd.get(store.keys.root + "audit/last")
    assert kv is not None and kv.mod_revision == revision
    assert kv.value == b"alias 10.0.0.1/24 on h1/eth1"
    assert seen[-1].operation == "put_alias"
    assert seen[-1].previous[store.keys.alias("h1", "10.0.0.1")] is None


def test_a_lost_race_is_read_again_and_retried(store: Store) -> None:
    store.add_host("h1")
    raced = []

    def competitor(txn: Txn, context: WriteContext) -> None:
        if not raced:  # change a key the write read, between its read and its commit
            raced.append(store.etcd.txn(Txn().put(
                store.keys.alias("h1", "10.0.0.1"), encode(AliasRecord(
                    "h1", "eth2", "10.0.0.1/24", route="10.0.0.0/24")))).revision)

    store.hooks.append(competitor)
    with pytest.raises(AlreadyExists, match="already an alias of eth2"):
        store.put_alias(spec("h1", "eth1", "10.0.0.1/24"))
    assert store.stats.lost_races == 1
    assert store.revision() == raced[0], "the losing plan was applied after all"


def test_a_write_that_loses_every_race_is_aborted(store: Store) -> None:
    store.add_host("h1")
    store.max_attempts = 3

    def always(txn: Txn, context: WriteContext) -> None:
        store.etcd.txn(Txn().put(store.keys.policy(), encode(PolicyRecord(Mode.ALLOW))))

    store.hooks.append(always)
    with pytest.raises(Aborted, match="3 times"):
        store.put_alias(spec("h1", "eth1", "10.0.0.1/24"))
    assert store.stats.lost_races == 3


def test_a_record_vrc_did_not_write_is_corrupt_naming_its_key(store: Store) -> None:
    store.etcd.txn(Txn().put(store.keys.host("h1"), b"{not json"))
    with pytest.raises(Corrupt, match="hosts/h1"):
        store.get_host("h1")
    with pytest.raises(Corrupt, match="schema"):
        decode(HostRecord, "k", b'{"schema":"vrc.v1.alias","id":"x"}')


def test_guards_always_agree_with_the_records_they_guard(store: Store) -> None:
    """A seeded random run of writes, then every guard recomputed from scratch."""
    rng = random.Random(12)
    hosts = ["h1", "h2", "h3"]
    for host in hosts:
        store.add_host(host)
    for _ in range(150):
        host = rng.choice(hosts)
        action = rng.random()
        with_error = (AlreadyExists, NotFound, FailedPrecondition)
        try:
            if action < 0.45:
                store.put_alias(spec(host, rng.choice(["eth1", "eth2"]),
                                     f"10.0.{rng.randrange(3)}.{rng.randrange(1, 6)}/"
                                     f"{rng.choice([24, 16])}"))
            elif action < 0.6:
                store.delete_alias(host, rng.choice(["eth1", "eth2"]),
                                   validate.ipv4("a", f"10.0.{rng.randrange(3)}."
                                                      f"{rng.randrange(1, 6)}"))
            elif action < 0.8:
                store.put_claim(f"10.{rng.randrange(4)}.0.0/16", host, rng.choice(["a", "b"]))
            elif action < 0.9:
                store.delete_claims(f"10.{rng.randrange(4)}.0.0/16", host)
            else:
                store.set_policy(rng.choice(list(Mode)), rng.choice(["", host]))
        except with_error:
            pass
    check_guards(store)


def check_guards(store: Store) -> None:
    keys = {k: json.loads(v) for k, v in keys_under(store).items()}
    same: dict[str, list[dict[str, str]]] = {}
    for key, value in keys.items():
        if key.startswith("aliases/"):
            guard = f"guards/same-prefix/{value['host']}/{value['route']}"
            same.setdefault(guard, []).append({"address": value["address"].split("/")[0],
                                               "ifname": value["ifname"]})
    stored_same = {k: v["members"] for k, v in keys.items()
                   if k.startswith("guards/same-prefix/")}
    assert {k: sorted(v, key=lambda d: sorted(d.items())) for k, v in stored_same.items()} == {
        k: sorted(v, key=lambda d: sorted(d.items())) for k, v in same.items()}
    prefix: dict[str, list[dict[str, str]]] = {}
    mine: dict[str, list[dict[str, str]]] = {}
    for key, value in keys.items():
        if key.startswith("prefixes/"):
            prefix.setdefault(f"guards/prefix/{value['prefix']}", []).append(
                {"host": value["host"], "ifname": value["ifname"]})
            mine.setdefault(f"guards/claims-of/{value['host']}", []).append(
                {"prefix": value["prefix"], "ifname": value["ifname"]})
    for expected, family in ((prefix, "guards/prefix/"), (mine, "guards/claims-of/")):
        stored = {k: v["claims"] for k, v in keys.items() if k.startswith(family)}
        assert {k: sorted(v, key=lambda d: sorted(d.items())) for k, v in stored.items()} == {
            k: sorted(v, key=lambda d: sorted(d.items())) for k, v in expected.items()}
