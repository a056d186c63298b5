"""An agent's hello and ACK never outgrow what the controller accepts (agents/sync/wire.py).

The controller refuses a Sync message over its receive limit, and would refuse
the same message at every redial: the agent cuts its lists to fit instead,
the least important first.
"""

from __future__ import annotations

from agents.sync.wire import MAX_REPORT_BYTES, fit_lists
from vrc.v1 import controller_pb2 as pb


def _item(n: int) -> pb.SyncItem:
    address = f"10.{n // 65536 % 256}.{n // 256 % 256}.{n % 256}"
    return pb.SyncItem(key=f"alias/eth1/{address}",
                       alias=pb.Alias(host="h1", ifname="eth1", address=f"{address}/32"))


def _error(n: int) -> pb.SyncItemError:
    return pb.SyncItemError(key=f"alias/eth2/10.1.{n // 256}.{n % 256}", code="EEXIST",
                            message="configured locally through the Agent API" * 2)


def test_a_message_under_the_limit_is_left_whole() -> None:
    ack = pb.SyncAck(version=7, errors=[_error(n) for n in range(10)])
    assert fit_lists(ack, ("local_items", "drift", "errors")) == 0
    assert len(ack.errors) == 10


def test_local_items_go_before_failed_items_and_the_message_fits() -> None:
    ack = pb.SyncAck(version=7, errors=[_error(n) for n in range(100)],
                     local_items=[_item(n) for n in range(300)])
    limit = ack.ByteSize() - 5_000
    dropped = fit_lists(ack, ("local_items", "drift", "errors"), limit)
    assert ack.ByteSize() <= limit
    assert len(ack.errors) == 100  # the failed items are all still there
    assert dropped == 300 - len(ack.local_items) > 0
    assert [i.key for i in ack.local_items] == [_item(n).key for n in range(len(ack.local_items))]


def test_failed_items_are_cut_last_and_only_as_far_as_needed() -> None:
    ack = pb.SyncAck(version=7, errors=[_error(n) for n in range(1000)],
                     local_items=[_item(n) for n in range(10)])
    limit = ack.ByteSize() // 2
    fit_lists(ack, ("local_items", "drift", "errors"), limit)
    assert ack.ByteSize() <= limit
    assert not ack.local_items
    assert ack.ByteSize() > limit - 2 * _error(999).ByteSize()  # no more cut than needed


def test_a_hello_with_a_hundred_thousand_local_items_fits_the_controllers_limit() -> None:
    hello = pb.SyncHello(host_id="h1", local_items=[_item(n) for n in range(100_000)])
    assert hello.ByteSize() > MAX_REPORT_BYTES
    dropped = fit_lists(hello, ("local_items",))
    assert hello.ByteSize() <= MAX_REPORT_BYTES < 4 * 1024 * 1024
    assert dropped == 100_000 - len(hello.local_items) and len(hello.local_items) > 30_000
