"""Every bad input through the API: the right status, the field and value named, nothing written."""

from __future__ import annotations

from collections.abc import Callable

import grpc
import pytest

from controller import validate
from controller.daemon import Controller
from controller.store import InvalidArgument
from vrc.v1 import controller_pb2 as pb
from vrc.v1 import controller_pb2_grpc

T = 10
INVALID = grpc.StatusCode.INVALID_ARGUMENT
NOT_FOUND = grpc.StatusCode.NOT_FOUND
Stub = controller_pb2_grpc.ControllerStub
Call = Callable[[Stub], object]


def put_alias(address: str, host: str = "h1", ifname: str = "eth1", **extra: str) -> Call:
    return lambda s: s.PutAlias(pb.PutAliasRequest(alias=pb.Alias(
        host=host, ifname=ifname, address=address, **extra)), timeout=T)


def put_prefix(prefix: str, host: str = "h1", ifname: str = "eth1") -> Call:
    return lambda s: s.PutPrefix(pb.PutPrefixRequest(prefix=prefix, host=host, ifname=ifname),
                                 timeout=T)


CASES: list[tuple[str, Call, grpc.StatusCode, str, str]] = [
    # (case, call, status, field, text in the message)
    ("host id empty", lambda s: s.AddHost(pb.AddHostRequest(id=""), timeout=T), INVALID,
     "id", "is required"),
    ("host id upper case", lambda s: s.AddHost(pb.AddHostRequest(id="Host1"), timeout=T),
     INVALID, "id", "'Host1': not a host id"),
    ("host id leading dash", lambda s: s.AddHost(pb.AddHostRequest(id="-h"), timeout=T),
     INVALID, "id", "not a host id"),
    ("host id underscore", lambda s: s.AddHost(pb.AddHostRequest(id="a_b"), timeout=T),
     INVALID, "id", "not a host id"),
    ("host id label over 63", lambda s: s.AddHost(pb.AddHostRequest(id="a" * 64), timeout=T),
     INVALID, "id", "not a host id"),
    ("host id non-ASCII", lambda s: s.AddHost(pb.AddHostRequest(id="hé"), timeout=T),
     INVALID, "id", "'h\\xe9'"),
    ("host id too long", lambda s: s.AddHost(pb.AddHostRequest(id="a." * 200), timeout=T),
     INVALID, "id", "longer than 253"),
    ("alias without length", put_alias("10.0.0.1"), INVALID, "alias.address", "A/LEN"),
    ("alias /33", put_alias("10.0.0.1/33"), INVALID, "alias.address", "1..32"),
    ("alias /0", put_alias("10.0.0.1/0"), INVALID, "alias.address", "/0"),
    ("alias superscript length", put_alias("10.9.9.1/²"), INVALID, "alias.address",
     "ASCII digits"),
    ("alias Arabic-Indic octet", put_alias("10.0.0.\u0661/24"), INVALID, "alias.address",
     "not an IPv4 address"),
    ("alias leading zero", put_alias("010.0.0.1/24"), INVALID, "alias.address",
     "no leading zeros"),
    ("alias octet over 255", put_alias("256.0.0.1/24"), INVALID, "alias.address", "over 255"),
    ("alias three octets", put_alias("10.0.1/24"), INVALID, "alias.address",
     "not an IPv4 address"),
    ("alias 0.0.0.0", put_alias("0.0.0.0/8"), INVALID, "alias.address", "this network"),
    ("alias loopback", put_alias("127.0.0.1/8"), INVALID, "alias.address", "loopback"),
    ("alias multicast", put_alias("224.0.0.1/24"), INVALID, "alias.address", "multicast"),
    ("alias limited broadcast", put_alias("255.255.255.255/32"), INVALID, "alias.address",
     "limited broadcast"),
    ("alias network address", put_alias("10.0.0.0/24"), INVALID, "alias.address",
     "network address"),
    ("alias broadcast address", put_alias("10.0.0.255/24"), INVALID, "alias.address",
     "broadcast address"),
    ("broadcast outside the subnet", put_alias("10.0.0.1/24", broadcast="10.0.1.255"),
     INVALID, "alias.broadcast", "not in the alias's subnet"),
    ("broadcast not an address", put_alias("10.0.0.1/24", broadcast="x"), INVALID,
     "alias.broadcast", "not an IPv4 address"),
    ("destination multicast", put_alias("10.0.0.1/24", destination="239.1.1.1"), INVALID,
     "alias.destination", "multicast"),
    ("broadcast and destination", put_alias("10.0.0.1/24", broadcast="10.0.0.255",
                                            destination="10.0.0.2"), INVALID,
     "alias.destination", "not both"),
    ("interface empty", put_alias("10.0.0.1/24", ifname=""), INVALID, "alias.ifname",
     "is required"),
    ("interface with a slash", put_alias("10.0.0.1/24", ifname="eth/0"), INVALID,
     "alias.ifname", "not an interface name"),
    ("interface too long", put_alias("10.0.0.1/24", ifname="e" * 16), INVALID,
     "alias.ifname", "longer than 15"),
    ("alias on an unknown host", put_alias("10.0.0.1/24", host="h9"), NOT_FOUND,
     "alias.host", "no such host"),
    ("prefix host bits", put_prefix("10.0.0.1/24"), INVALID, "prefix", "host bits set"),
    ("prefix /0", put_prefix("0.0.0.0/0"), INVALID, "prefix", "/0"),
    ("prefix multicast", put_prefix("224.0.0.0/4"), INVALID, "prefix", "multicast"),
    ("prefix loopback", put_prefix("127.0.0.0/8"), INVALID, "prefix", "loopback"),
    ("prefix without host", put_prefix("10.9.0.0/16", host=""), INVALID, "host",
     "is required"),
    ("prefix unknown host", put_prefix("10.9.0.0/16", host="h9"), NOT_FOUND, "host",
     "no such host"),
    ("policy unspecified", lambda s: s.SetPolicy(pb.SetClusterPolicyRequest(), timeout=T),
     INVALID, "same_prefix", "POLICY_REFUSE"),
    ("policy unknown number", lambda s: s.SetPolicy(pb.SetClusterPolicyRequest(
        same_prefix=99), timeout=T), INVALID, "same_prefix", "'99'"),
    ("clear without host", lambda s: s.SetPolicy(pb.SetClusterPolicyRequest(clear=True),
                                                 timeout=T), INVALID, "clear", "needs a host"),
    ("override of an unknown host", lambda s: s.SetPolicy(pb.SetClusterPolicyRequest(
        same_prefix=1, host="h9"), timeout=T), NOT_FOUND, "host", "no such host"),
    ("delete alias bad address", lambda s: s.DeleteAlias(pb.DeleteClusterAliasRequest(
        host="h1", ifname="eth1", address="10.0.0"), timeout=T), INVALID, "address",
     "not an IPv4 address"),
    ("delete prefix interface without host", lambda s: s.DeletePrefix(pb.DeletePrefixRequest(
        prefix="10.9.0.0/16", ifname="eth1"), timeout=T), INVALID, "ifname", "needs its host"),
    ("list aliases of an unknown host", lambda s: s.ListAliases(pb.ListAliasesRequest(
        host="h9"), timeout=T), NOT_FOUND, "host", "no such host"),
]


@pytest.mark.parametrize(("case", "call", "status", "field", "text"), CASES,
                         ids=[c[0] for c in CASES])
def test_bad_input_is_refused_naming_the_field_and_nothing_is_written(
        stub: Stub, controller: Controller, case: str, call: Call, status: grpc.StatusCode,
        field: str, text: str) -> None:
    stub.AddHost(pb.AddHostRequest(id="h1"), timeout=T)
    assert controller.store is not None
    before = controller.store.revision()
    with pytest.raises(grpc.RpcError) as caught:
        call(stub)
    error = caught.value
    trailers = dict(error.trailing_metadata())
    assert (error.code(), trailers["vrc-field"]) == (status, field), error.details()
    assert error.details().startswith(field), error.details()
    assert text in error.details()
    assert trailers["vrc-value"].isascii()
    assert controller.store.revision() == before, "a refused request wrote to etcd"


def test_a_long_bad_value_is_echoed_bounded(stub: Stub) -> None:
    with pytest.raises(grpc.RpcError) as caught:
        stub.PutAlias(pb.PutAliasRequest(alias=pb.Alias(host="h1", ifname="eth1",
                                                        address="9" * 7000)), timeout=T)
    error = caught.value
    assert error.code() == INVALID
    assert len(error.details()) < 200 and "(7000 characters)" in error.details()
    assert len(dict(error.trailing_metadata())["vrc-value"]) < 120


def test_values_are_echoed_bounded_and_ascii_even_in_the_pure_functions() -> None:
    with pytest.raises(InvalidArgument) as caught:
        validate.ifname("ifname", "ü" * 3)
    assert str(caught.value) == "ifname '\\xfc\\xfc\\xfc': not an interface name (1..15 " \
        "letters, digits, '_', '.', '-', starting with a letter or digit)"


@pytest.mark.parametrize(("text", "value"), [("10.0.0.1", 0x0A000001), ("0.0.0.0", 0),
                                             ("255.255.255.255", 0xFFFFFFFF)])
def test_dotted_quads_parse(text: str, value: int) -> None:
    assert validate.ipv4("a", text) == value


def test_a_dns_name_of_labels_is_a_host_id() -> None:
    assert validate.host_id("id", "ip-10-0-0-1.eu-west-1.compute.internal")
