"""The ioctl chain: filters, then the protocol, then the driver, with the seed's precedence."""

from __future__ import annotations

from typing import Any

import pytest

from router.contracts import InterfaceFilter, IoctlCmd
from router.errors import EINVAL, EJUSTRETURN, ENOTSUP, EOPNOTSUPP, EPERM
from router.link.ifnet import AF_INET, Interface
from tests.unit.link.support import AF_TEST, Harness, RecordingDriver, make_proto

CMD = IoctlCmd.SIOCSIFMTU


def _chain(
    filter_results: list[tuple[int, int]],
    proto_result: int | None,
    driver_result: int,
) -> tuple[Harness, Interface, list[str]]:
    """An interface whose filters (family, result), protocol and driver log their calls."""
    h = Harness()
    log: list[str] = []

    class LoggingDriver(RecordingDriver):
        def ioctl(self, ifp: Interface, cmd: IoctlCmd, arg: Any) -> int:
            log.append("driver")
            return driver_result

    ifp, _ = h.ethernet(driver=LoggingDriver())
    for n, (family, result) in enumerate(filter_results):
        def filt_ioctl(i: Interface, fam: int, cmd: IoctlCmd, arg: Any,
                       n: int = n, result: int = result) -> int:
            log.append(f"filter{n}")
            return result
        h.dl.attach_filter(ifp, InterfaceFilter(f"f{n}", family, ioctl=filt_ioctl))
    if proto_result is not None:
        def proto_ioctl(i: Interface, fam: int, cmd: IoctlCmd, arg: Any) -> int:
            log.append("proto")
            return proto_result
        h.dl.attach_protocol(ifp, make_proto(ioctl=proto_ioctl)[0])
    return h, ifp, log


def test_ioctl_command_zero_is_einval() -> None:
    h, ifp, log = _chain([(0, 0)], 0, 0)
    assert h.dl.ioctl(ifp, AF_INET, 0, None) == EINVAL
    assert log == []


def test_ioctl_on_a_detaching_interface_is_eopnotsupp() -> None:
    h, ifp, log = _chain([(0, 0)], 0, 0)
    h.dl.detach(ifp)
    assert h.dl.ioctl(ifp, AF_INET, CMD, None) == EOPNOTSUPP
    assert log == []


def test_ioctl_nobody_handling_it_is_eopnotsupp() -> None:
    h, ifp, log = _chain([(0, EOPNOTSUPP)], EOPNOTSUPP, EOPNOTSUPP)
    assert h.dl.ioctl(ifp, AF_INET, CMD, None) == EOPNOTSUPP
    assert log == ["filter0", "proto", "driver"]


def test_ioctl_runs_filters_then_protocol_then_driver() -> None:
    h, ifp, log = _chain([(0, EOPNOTSUPP), (AF_INET, EOPNOTSUPP)], EOPNOTSUPP, 0)
    assert h.dl.ioctl(ifp, AF_INET, CMD, 1500) == 0
    assert log == ["filter0", "filter1", "proto", "driver"]


def test_ioctl_skips_filters_of_another_family() -> None:
    h, ifp, log = _chain([(AF_TEST, EPERM), (0, EOPNOTSUPP)], EOPNOTSUPP, 0)
    assert h.dl.ioctl(ifp, AF_INET, CMD, None) == 0
    assert log == ["filter1", "proto", "driver"]


def test_ioctl_asks_the_protocol_only_for_a_nonzero_family() -> None:
    h, ifp, log = _chain([], EPERM, 0)
    assert h.dl.ioctl(ifp, 0, CMD, None) == 0
    assert log == ["driver"]


def test_ioctl_asks_no_protocol_when_none_is_attached_for_the_family() -> None:
    h, ifp, log = _chain([], EPERM, 0)
    assert h.dl.ioctl(ifp, AF_TEST, CMD, None) == 0
    assert log == ["driver"]


def test_ioctl_protocol_without_an_ioctl_callback_counts_as_eopnotsupp() -> None:
    h, ifp, log = _chain([], None, EOPNOTSUPP)
    h.dl.attach_protocol(ifp, make_proto()[0])
    assert h.dl.ioctl(ifp, AF_INET, CMD, None) == EOPNOTSUPP
    assert log == ["driver"]


def test_ioctl_result_only_replaces_eopnotsupp() -> None:
    # a filter handled it (0): later errors do not replace that result
    h, ifp, log = _chain([(0, 0), (0, EPERM)], EINVAL, EINVAL)
    assert h.dl.ioctl(ifp, AF_INET, CMD, None) == 0
    assert log == ["filter0", "filter1", "proto", "driver"]


def test_ioctl_first_real_error_stops_the_chain() -> None:
    h, ifp, log = _chain([(0, EOPNOTSUPP), (0, EPERM), (0, 0)], 0, 0)
    assert h.dl.ioctl(ifp, AF_INET, CMD, None) == EPERM
    assert log == ["filter0", "filter1"]


def test_ioctl_protocol_error_stops_before_the_driver() -> None:
    h, ifp, log = _chain([], EPERM, 0)
    assert h.dl.ioctl(ifp, AF_INET, CMD, None) == EPERM
    assert log == ["proto"]


def test_ioctl_driver_error_is_returned() -> None:
    h, ifp, log = _chain([(0, EOPNOTSUPP)], EOPNOTSUPP, EINVAL)
    assert h.dl.ioctl(ifp, AF_INET, CMD, None) == EINVAL
    assert log == ["filter0", "proto", "driver"]


def test_ioctl_ejustreturn_stops_the_chain_and_becomes_zero() -> None:
    h, ifp, log = _chain([(0, EJUSTRETURN), (0, EPERM)], EPERM, EPERM)
    assert h.dl.ioctl(ifp, AF_INET, CMD, None) == 0
    assert log == ["filter0"]


def test_ioctl_ejustreturn_after_a_handled_result_still_ends_the_chain() -> None:
    h, ifp, log = _chain([(0, 0), (0, EJUSTRETURN)], EPERM, EPERM)
    assert h.dl.ioctl(ifp, AF_INET, CMD, None) == 0
    assert log == ["filter0", "filter1"]


def test_ioctl_enotsup_is_normalised_to_eopnotsupp() -> None:
    h, ifp, log = _chain([(0, ENOTSUP)], ENOTSUP, ENOTSUP)
    assert h.dl.ioctl(ifp, AF_INET, CMD, None) == EOPNOTSUPP
    assert log == ["filter0", "proto", "driver"]


@pytest.mark.parametrize("proto_result", [0, EPERM, EJUSTRETURN])
def test_ioctl_releases_its_references(proto_result: int) -> None:
    h, ifp, _ = _chain([(0, EOPNOTSUPP)], proto_result, 0)
    h.dl.ioctl(ifp, AF_INET, CMD, None)
    assert ifp.ioref == 0 and ifp.protocols[AF_INET].refcount == 1


def test_ioctl_filter_detached_earlier_in_the_chain_is_not_asked() -> None:
    # a deliberate difference: the seed's ioctl pass ignores filt_skip
    h = Harness()
    ifp, _ = h.ethernet()
    log: list[str] = []

    def second_ioctl(i: Interface, fam: int, cmd: IoctlCmd, arg: Any) -> int:
        log.append("second")
        return 0

    second = InterfaceFilter("second", ioctl=second_ioctl,
                             detached=lambda i: log.append("second:detached"))

    def first_ioctl(i: Interface, fam: int, cmd: IoctlCmd, arg: Any) -> int:
        log.append("first")
        h.dl.detach_filter(second)
        return EOPNOTSUPP

    h.dl.attach_filter(ifp, InterfaceFilter("first", ioctl=first_ioctl))
    h.dl.attach_filter(ifp, second)
    assert h.dl.ioctl(ifp, AF_INET, CMD, None) == EOPNOTSUPP
    assert log == ["first", "second:detached"]
