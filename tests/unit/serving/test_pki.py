"""The PKI library: a CA, one certificate per identity with its SPIFFE ID, files and modes."""

from __future__ import annotations

import datetime
import os
import stat
from pathlib import Path

import pytest
from cryptography import x509

from serving import pki


@pytest.fixture(scope="module")
def ca() -> pki.CertificateAuthority:
    return pki.CertificateAuthority.create("test CA", days=2)


def test_every_certificate_names_its_holder_in_one_spiffe_uri(
        ca: pki.CertificateAuthority) -> None:
    for role in pki.CertRole:
        info = pki.describe(ca.issue(role, "n1").cert)
        assert info.uris == (f"spiffe://vrc/{role.value}/n1",)
        assert info.identity == f"spiffe://vrc/{role.value}/n1"
        assert info.role is role
        assert info.issuer == "CN=test CA"


def test_people_get_client_certificates_and_servers_both_usages(
        ca: pki.CertificateAuthority) -> None:
    assert pki.describe(ca.issue(pki.CertRole.ADMIN, "a").cert).usages == ("clientAuth",)
    assert pki.describe(ca.issue(pki.CertRole.READER, "r").cert).usages == ("clientAuth",)
    for role in (pki.CertRole.AGENT, pki.CertRole.CONTROLLER):
        assert set(pki.describe(ca.issue(role, "s").cert).usages) == {"serverAuth",
                                                                      "clientAuth"}


def test_an_agent_certificate_carries_its_host_as_a_dns_name(
        ca: pki.CertificateAuthority) -> None:
    info = pki.describe(ca.issue(pki.CertRole.AGENT, "node-1.example", dns=["localhost"],
                                 ips=["127.0.0.1", "::1"]).cert)
    assert info.dns == ("node-1.example", "localhost")
    assert info.ips == ("127.0.0.1", "::1")


def test_the_ca_is_a_ca_and_signs_what_it_issues(ca: pki.CertificateAuthority) -> None:
    assert pki.describe(ca.pem).is_ca
    leaf = x509.load_pem_x509_certificate(ca.issue(pki.CertRole.ADMIN, "a").cert)
    leaf.verify_directly_issued_by(ca.cert)  # raises if not
    assert not pki.describe(ca.issue(pki.CertRole.ADMIN, "a").cert).is_ca


def test_validity_can_be_given_to_make_an_expired_certificate(
        ca: pki.CertificateAuthority) -> None:
    now = datetime.datetime.now(datetime.UTC)
    info = pki.describe(ca.issue(pki.CertRole.ADMIN, "old", not_before=now - datetime.timedelta(
        days=3), not_after=now - datetime.timedelta(days=1)).cert)
    assert info.not_after < now


@pytest.mark.parametrize("name", ["", "-x", "x-", "a b", "a/b", "é", "x" * 254])
def test_a_name_that_cannot_be_one_path_segment_is_refused(
        ca: pki.CertificateAuthority, name: str) -> None:
    with pytest.raises(pki.PkiError, match="--name"):
        ca.issue(pki.CertRole.ADMIN, name)


@pytest.mark.parametrize(("identity", "parsed"), [
    ("spiffe://vrc/admin/alice", (pki.CertRole.ADMIN, "alice")),
    ("spiffe://vrc/agent/node-1.example", (pki.CertRole.AGENT, "node-1.example")),
    ("spiffe://other/admin/alice", None),
    ("spiffe://vrc/root/alice", None),
    ("spiffe://vrc/admin/alice/extra", None),
    ("spiffe://vrc/admin", None),
    ("cn:alice", None),
])
def test_spiffe_ids_parse_only_in_the_vrc_trust_domain(
        identity: str, parsed: tuple[pki.CertRole, str] | None) -> None:
    assert pki.parse_spiffe_id(identity) == parsed


def test_a_ca_round_trips_through_its_files_with_a_private_key(
        tmp_path: Path, ca: pki.CertificateAuthority) -> None:
    files = ca.write(tmp_path / "ca")
    assert stat.S_IMODE(os.stat(files.key).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(tmp_path / "ca").st_mode) == 0o700
    loaded = pki.CertificateAuthority.load(tmp_path / "ca")
    assert loaded.pem == ca.pem


def test_loading_a_ca_whose_key_is_not_its_own_is_refused(
        tmp_path: Path, ca: pki.CertificateAuthority) -> None:
    ca.write(tmp_path)
    other = pki.CertificateAuthority.create("other")
    (tmp_path / pki.CA_KEY).write_bytes(pki.key_pem(other.key))
    with pytest.raises(pki.PkiError, match="is not the key of"):
        pki.CertificateAuthority.load(tmp_path)


def test_loading_a_missing_ca_names_the_file(tmp_path: Path) -> None:
    with pytest.raises(pki.PkiError, match=r"--ca .*ca\.crt"):
        pki.CertificateAuthority.load(tmp_path)


def test_a_pair_matches_only_its_own_key(ca: pki.CertificateAuthority) -> None:
    one, two = ca.issue(pki.CertRole.ADMIN, "a"), ca.issue(pki.CertRole.ADMIN, "b")
    assert pki.pair_matches(one.cert, one.key)
    assert not pki.pair_matches(one.cert, two.key)
    assert not pki.pair_matches(one.cert, b"not a key")


def test_the_throw_away_pki_has_one_certificate_per_component(tmp_path: Path) -> None:
    made = pki.make_dev_pki(tmp_path / "pki", ["h1", "h2"], reader="bob")
    identities = {pki.describe(files.cert.read_bytes()).identity: files
                  for files in (made.controller, made.admin, made.reader, *made.agents.values())
                  if files is not None}
    assert set(identities) == {"spiffe://vrc/controller/controller", "spiffe://vrc/admin/admin",
                               "spiffe://vrc/reader/bob", "spiffe://vrc/agent/h1",
                               "spiffe://vrc/agent/h2"}
    for files in identities.values():
        assert stat.S_IMODE(os.stat(files.key).st_mode) == 0o600
        assert pki.pair_matches(files.cert.read_bytes(), files.key.read_bytes())
    controller = pki.describe(made.controller.cert.read_bytes())
    assert "localhost" in controller.dns and "127.0.0.1" in controller.ips
    assert stat.S_IMODE(os.stat(tmp_path / "pki").st_mode) == 0o700
    # more can be issued later from the CA it kept
    pki.CertificateAuthority.load(tmp_path / "pki" / "ca").issue(pki.CertRole.AGENT, "h3")


def test_the_throw_away_pki_gives_each_component_its_flags(tmp_path: Path) -> None:
    made = pki.make_dev_pki(tmp_path, ["h1"])
    assert made.agent_flags("h1") == ["--tls-cert", str(made.agents["h1"].cert), "--tls-key",
                                      str(made.agents["h1"].key), "--tls-ca", str(made.ca)]
    assert made.controller_flags()[1] == str(made.controller.cert)
    assert made.admin_flags()[3] == str(made.admin.key)
