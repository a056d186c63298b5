"""vrc-agent's Sync flags: checked before any NIC is touched, each refusal naming the flag."""

from __future__ import annotations

from pathlib import Path

import pytest

from agents.daemon import AgentOptions, build_parser, check_options, options_from


def options(**overrides: object) -> AgentOptions:
    settings: dict[str, object] = dict(interfaces=["vrcnosuch0"], listen="127.0.0.1:0")
    settings.update(overrides)
    return AgentOptions(**settings)  # type: ignore[arg-type]


def test_every_sync_flag_reaches_the_options() -> None:
    args = build_parser().parse_args([
        "-i", "eth1", "--controller", "unix:/run/vrc/controller.sock", "--state-dir", "/var/x",
        "--controller-ca", "ca.pem", "--controller-cert", "c.pem", "--controller-key", "k.pem",
        "--controller-server-name", "ctl", "--controller-insecure",
    ])  # fmt: skip
    opts = options_from(args)
    assert (opts.controller, opts.state_dir) == ("unix:/run/vrc/controller.sock", "/var/x")
    assert (opts.controller_ca, opts.controller_cert, opts.controller_key,
            opts.controller_server_name, opts.controller_insecure) == (
        "ca.pem", "c.pem", "k.pem", "ctl", True)


@pytest.mark.parametrize("flag, overrides", [
    ("--state-dir", {"state_dir": "/tmp/x"}),
    ("--controller-ca", {"controller_ca": "/tmp/ca.pem"}),
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


def test_an_unreadable_controller_ca_is_named(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"--controller-ca /nonexistent/ca\.pem: cannot read"):
        check_options(options(controller="10.0.0.9:7000", controller_ca="/nonexistent/ca.pem"))


def test_a_state_dir_that_can_be_made_passes_and_nothing_is_created_by_checking(
        tmp_path: Path) -> None:
    check_options(options(controller="unix:/x.sock", state_dir=str(tmp_path / "new" / "dir")))
    assert not (tmp_path / "new").exists()
    (tmp_path / "file").write_text("x")
    with pytest.raises(ValueError, match=r"--state-dir .*file/sub: .*file is not a directory"):
        check_options(options(controller="unix:/x.sock",
                              state_dir=str(tmp_path / "file" / "sub")))
