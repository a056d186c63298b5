"""Two real vrc-controller processes on one etcd, racing hundreds of times: guards hold.

Each round fires two conflicting writes at the same moment, one through each
controller (a barrier releases both threads together). Whatever the
interleaving, exactly one may pass: the guard key each write compares makes
the other's transaction fail, and its retry sees the winner.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor

import grpc
import pytest

from tests.controller.processes import ControllerProcess, controllers
from tests.etcd import TestEtcd
from vrc.v1 import controller_pb2 as pb
from vrc.v1 import controller_pb2_grpc
from vrc.v1 import types_pb2 as tpb

ROUNDS = 200
TIMEOUT = 30


@pytest.fixture
def pair(private_etcd: TestEtcd) -> Iterator[list[ControllerProcess]]:
    with controllers(2, private_etcd.url) as running:
        yield running


def stubs(pair: list[ControllerProcess]) -> list[controller_pb2_grpc.ControllerStub]:
    return [controller_pb2_grpc.ControllerStub(c.channel()) for c in pair]


def race(first: Callable[[], object], second: Callable[[], object]
         ) -> list[grpc.StatusCode]:
    """Run both at once; the status code of each (OK when it returned)."""
    barrier = threading.Barrier(2)

    def run(call: Callable[[], object]) -> grpc.StatusCode:
        barrier.wait(TIMEOUT)
        try:
            call()
        except grpc.RpcError as error:
            return error.code()
        return grpc.StatusCode.OK

    with ThreadPoolExecutor(2) as pool:
        return [f.result() for f in [pool.submit(run, first), pool.submit(run, second)]]


def test_same_prefix_aliases_under_refuse_never_both_pass(
        pair: list[ControllerProcess]) -> None:
    a, b = stubs(pair)
    a.AddHost(pb.AddHostRequest(id="h1"), timeout=TIMEOUT)
    b.SetPolicy(pb.SetClusterPolicyRequest(same_prefix=tpb.POLICY_REFUSE), timeout=TIMEOUT)
    outcomes = []
    for round_ in range(ROUNDS):
        net = f"10.{round_ // 250}.{round_ % 250}"
        outcomes.append(race(
            lambda net=net: a.PutAlias(pb.PutAliasRequest(alias=pb.Alias(
                host="h1", ifname="eth1", address=f"{net}.1/24")), timeout=TIMEOUT),
            lambda net=net: b.PutAlias(pb.PutAliasRequest(alias=pb.Alias(
                host="h1", ifname="eth2", address=f"{net}.2/24")), timeout=TIMEOUT)))
    assert all(sorted(o, key=str) == sorted([grpc.StatusCode.OK,
                                             grpc.StatusCode.ALREADY_EXISTS], key=str)
               for o in outcomes), [o for o in outcomes if grpc.StatusCode.OK not in o
                                    or o.count(grpc.StatusCode.OK) != 1][:5]
    aliases = a.ListAliases(pb.ListAliasesRequest(host="h1"), timeout=TIMEOUT).aliases
    per_prefix: dict[str, int] = {}
    for alias in aliases:
        prefix = alias.address.rsplit(".", 1)[0]
        per_prefix[prefix] = per_prefix.get(prefix, 0) + 1
    assert len(per_prefix) == ROUNDS and set(per_prefix.values()) == {1}


def test_competing_prefix_claims_under_refuse_never_both_pass(
        pair: list[ControllerProcess]) -> None:
    a, b = stubs(pair)
    for host in ("h1", "h2"):
        a.AddHost(pb.AddHostRequest(id=host), timeout=TIMEOUT)
    a.SetPolicy(pb.SetClusterPolicyRequest(same_prefix=tpb.POLICY_REFUSE), timeout=TIMEOUT)
    outcomes = []
    for round_ in range(ROUNDS):
        prefix = f"10.{round_ // 250}.{round_ % 250}.0/24"
        outcomes.append(race(
            lambda prefix=prefix: a.PutPrefix(pb.PutPrefixRequest(
                prefix=prefix, host="h1", ifname="eth1"), timeout=TIMEOUT),
            lambda prefix=prefix: b.PutPrefix(pb.PutPrefixRequest(
                prefix=prefix, host="h2", ifname="eth1"), timeout=TIMEOUT)))
    assert all(o.count(grpc.StatusCode.OK) == 1 and
               o.count(grpc.StatusCode.ALREADY_EXISTS) == 1 for o in outcomes)
    claims = b.ListPrefixes(pb.ListPrefixesRequest(), timeout=TIMEOUT).claims
    assert len(claims) == ROUNDS and len({c.prefix for c in claims}) == ROUNDS


def test_switching_to_refuse_and_a_conflicting_alias_never_both_pass(
        pair: list[ControllerProcess]) -> None:
    a, b = stubs(pair)
    a.AddHost(pb.AddHostRequest(id="h1"), timeout=TIMEOUT)
    rounds = ROUNDS // 2
    for round_ in range(rounds):
        net = f"10.{round_ // 250}.{round_ % 250}"
        a.SetPolicy(pb.SetClusterPolicyRequest(same_prefix=tpb.POLICY_ALLOW), timeout=TIMEOUT)
        a.PutAlias(pb.PutAliasRequest(alias=pb.Alias(host="h1", ifname="eth1",
                                                     address=f"{net}.1/24")), timeout=TIMEOUT)
        policy, alias = race(
            lambda: a.SetPolicy(pb.SetClusterPolicyRequest(same_prefix=tpb.POLICY_REFUSE),
                                timeout=TIMEOUT),
            lambda net=net: b.PutAlias(pb.PutAliasRequest(alias=pb.Alias(
                host="h1", ifname="eth2", address=f"{net}.2/24")), timeout=TIMEOUT))
        assert not (policy == alias == grpc.StatusCode.OK), f"round {round_}: both passed"
        assert grpc.StatusCode.OK in (policy, alias), f"round {round_}: neither passed"
        if alias == grpc.StatusCode.OK:  # remove the second so the next round starts clean
            a.DeleteAlias(pb.DeleteClusterAliasRequest(host="h1", ifname="eth2",
                                                       address=f"{net}.2"), timeout=TIMEOUT)
        a.DeleteAlias(pb.DeleteClusterAliasRequest(host="h1", ifname="eth1",
                                                   address=f"{net}.1"), timeout=TIMEOUT)
