"""``vrc certs``: a CA, certificates per role, showing them, the throw-away PKI; and the agent
half of the CLI over mutual TLS with what it issued."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from cli.main import main
from serving import pki
from tests.unit.agents.support import sample_engine


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_init_ca_then_issue_every_role(tmp_path: Path, capsys: pytest.CaptureFixture[str]
                                       ) -> None:
    code, out, _ = run(capsys, "certs", "init-ca", str(tmp_path / "ca"), "--name", "Test CA")
    assert code == 0 and "ca.crt" in out
    assert stat.S_IMODE(os.stat(tmp_path / "ca" / "ca.key").st_mode) == 0o600
    for role in ("admin", "reader", "agent", "controller"):
        code, out, err = run(capsys, "certs", "issue", "--ca", str(tmp_path / "ca"), "--role",
                             role, "--name", f"{role}-1", "--dns", "example.test", "--ip",
                             "192.0.2.1", "--out", str(tmp_path / "out"))
        assert code == 0, err
        assert out.splitlines()[0] == f"spiffe://vrc/{role}/{role}-1"
        info = pki.describe((tmp_path / "out" / f"{role}-1.crt").read_bytes())
        assert info.identity == f"spiffe://vrc/{role}/{role}-1"
        assert info.issuer == "CN=Test CA"
        assert "example.test" in info.dns and "192.0.2.1" in info.ips
        assert stat.S_IMODE(os.stat(tmp_path / "out" / f"{role}-1.key").st_mode) == 0o600


def test_init_ca_never_replaces_a_ca_unless_forced(tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    assert run(capsys, "certs", "init-ca", str(tmp_path))[0] == 0
    first = (tmp_path / "ca.crt").read_bytes()
    code, _, err = run(capsys, "certs", "init-ca", str(tmp_path))
    assert code == 1 and "a CA is there" in err
    assert (tmp_path / "ca.crt").read_bytes() == first
    assert run(capsys, "certs", "init-ca", str(tmp_path), "--force")[0] == 0
    assert (tmp_path / "ca.crt").read_bytes() != first


def test_show_prints_what_a_certificate_says(tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    made = pki.make_dev_pki(tmp_path, ["h1"])
    code, out, _ = run(capsys, "certs", "show", str(made.agents["h1"].cert))
    assert code == 0
    assert out.splitlines()[0].endswith("spiffe://vrc/agent/h1")
    assert "role      agent" in out
    code, out, _ = run(capsys, "-o", "json", "certs", "show", str(made.ca))
    data = json.loads(out)
    assert data["ca"] is True and data["identity"].startswith("cn:")


@pytest.mark.parametrize(("argv", "text"), [
    (["issue", "--ca", "/nonexistent", "--role", "admin", "--name", "a"], "--ca /nonexistent"),
    (["show", "/nonexistent.crt"], "/nonexistent.crt"),
])
def test_certs_errors_name_what_is_wrong(capsys: pytest.CaptureFixture[str],
                                         argv: list[str], text: str) -> None:
    code, _, err = run(capsys, "certs", *argv)
    assert code == 1 and text in err and "Traceback" not in err


def test_a_bad_name_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run(capsys, "certs", "init-ca", str(tmp_path))
    code, _, err = run(capsys, "certs", "issue", "--ca", str(tmp_path), "--role", "admin",
                       "--name", "a/b")
    assert code == 1 and "--name 'a/b'" in err


def test_dev_makes_a_certificate_per_component(tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "-o", "json", "certs", "dev", str(tmp_path / "d"), "--agent",
                       "h1", "--agent", "h2", "--reader", "bob")
    data = json.loads(out)
    assert code == 0 and set(data["agents"]) == {"h1", "h2"}
    assert pki.describe(Path(data["reader"]).read_bytes()).identity == "spiffe://vrc/reader/bob"


def test_the_agent_cli_dials_mutual_tls_with_issued_certificates(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from agents.gate import Gate
    from agents.server import build_server
    from serving.tls import TlsConfig

    made = pki.make_dev_pki(tmp_path, ["h1"], reader="bob")
    agent = made.agents["h1"]
    server, address = build_server(Gate(sample_engine()), "127.0.0.1:0",
                                   tls=TlsConfig(str(agent.cert), str(agent.key), str(made.ca)))
    server.start()
    try:
        assert made.reader is not None
        reader = ["--agent", address, "--tls-ca", str(made.ca), "--tls-cert",
                  str(made.reader.cert), "--tls-key", str(made.reader.key)]
        code, out, _ = run(capsys, *reader, "ifaces")
        assert code == 0 and "eth0" in out
        code, _, err = run(capsys, *reader, "alias", "add", "eth0", "10.0.0.1/24")
        assert code == 1
        assert err.startswith("vrc: PERMISSION_DENIED: spiffe://vrc/reader/bob")
        admin = ["--agent", address, "--tls-ca", str(made.ca), "--tls-cert",
                 str(made.admin.cert), "--tls-key", str(made.admin.key)]
        assert run(capsys, *admin, "alias", "add", "eth0", "10.0.0.1/24")[0] == 0
        code, _, err = run(capsys, "--agent", address, "--tls-ca", str(made.ca), "ifaces")
        assert code == 1 and "with TLS" in err
    finally:
        server.stop(None).wait()
