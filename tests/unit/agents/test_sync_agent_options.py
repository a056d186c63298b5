"""vrc-agent's Sync flags: checked before any NIC is touched, each refusal naming the flag."""

from __future__ import annotations

from pathlib import Path

import pytest

from agents.daemon import AgentOptions, build_parser, check_options, controller_tls, options_from
from serving.tls import TlsConfig


def options(**overrides: object) -> AgentOptions:
    settings: dict[str, object] = dict(interfaces=["vrcnosuch0"], listen="127.0.0.1:0")
    settings.update(overrides)
    return AgentOptions(**settings)  # type: ignore[arg-type]


def test_every_sync_flag_reaches_the_options() -> None:
    """Sync dials with the TLS flags every component shares (the host's agent
    certificate verifies it to the controller)."""
    args = build_parser().parse_args([
        "-i", "eth1", "--controller", "unix:/run/vrc/controller.sock", "--state-dir", "/var/x",
        "--tls-ca", "ca.pem", "--tls-cert", "c.pem", "--tls-key", "k.pem",
        "--tls-server-name", "ctl", "--controller-insecure",
    ])  # fmt: skip
    opts = options_from(args)
    assert (opts.controller, opts.state_dir) == ("unix:/run/vrc/controller.sock", "/var/x")
    assert controller_tls(opts) == TlsConfig("c.pem", "k.pem", "ca.pem", server_name="ctl")
    assert opts.controller_insecure is True


def test_without_tls_flags_sync_dials_plaintext() -> None:
    assert controller_tls(options(controller="unix:/x.sock")) is None


@pytest.mark.parametrize("flag, overrides", [
    ("--state-dir", {"state_dir": "/tmp/x"}),
    ("--controller-insecure", {"controller_insecure": True}),
])
def test_sync_flags_without_a_controller_are_refused(flag: str, overrides: dict[str, object]
                                                     ) -> None:
    with pytest.raises(ValueError, match=f"{flag} needs --controller"):
        check_options(options(**overrides))


def test_a_remote_controller_needs_tls_or_insecure() -> None:
    with pytest.raises(ValueError, match=r"--controller 10\.0\.0\.9:7000 is not on this host"):
        check_options(options(controller="10.0.0.9:7000"))
    check_options(options(controller="10.0.0.9:7000", controller_insecure=True))
    check_options(options(controller="unix:/run/vrc/controller.sock"))


def test_an_unreadable_ca_is_named(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"--tls-ca /nonexistent/ca\.pem: cannot read"):
        check_options(options(controller="10.0.0.9:7000",
                              tls=TlsConfig(ca="/nonexistent/ca.pem")))


def test_a_state_dir_that_can_be_made_passes_and_nothing_is_created_by_checking(
        tmp_path: Path) -> None:
    check_options(options(controller="unix:/x.sock", state_dir=str(tmp_path / "new" / "dir")))
    assert not (tmp_path / "new").exists()
    (tmp_path / "file").write_text("x")
    with pytest.raises(ValueError, match=r"--state-dir .*file/sub: .*file is not a directory"):
        check_options(options(controller="unix:/x.sock",
                              state_dir=str(tmp_path / "file" / "sub")))
