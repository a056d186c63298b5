"""``vrc certs``: a CA and certificates for a vrc deployment (docs/security.md).

    vrc certs init-ca DIR [--name NAME] [--days N]
    vrc certs issue --ca DIR --role admin|reader|agent|controller --name NAME
                    [--dns NAME]... [--ip ADDRESS]... [--days N] [--out DIR]
    vrc certs show FILE...
    vrc certs dev DIR --agent HOST... [--admin NAME] [--reader NAME]

``init-ca`` makes ``DIR/ca.crt`` and ``DIR/ca.key`` (0600): keep the key
offline, hand out ``ca.crt`` (every component's ``--tls-ca``). ``issue``
writes ``OUT/NAME.crt`` and ``OUT/NAME.key`` (0600) carrying the identity
``spiffe://vrc/ROLE/NAME`` (an agent's NAME is its host id, also its DNS
name). ``show`` prints what a certificate says. ``dev`` makes a throw-away CA
and a certificate for every component of a one-machine cluster (what
``vrc up`` does). Nothing here talks to a daemon.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from cli.options import CliError, output_flag, whole_number
from serving import pki

ROLES = tuple(role.value for role in pki.CertRole)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="vrc certs", description="Certificates for vrc: a CA, and one certificate per "
                                      "identity (spiffe://vrc/ROLE/NAME).",
        epilog="example: vrc certs init-ca ./ca; vrc certs issue --ca ./ca --role agent "
               "--name node-1 --out ./certs")
    output_flag(parser, "table")
    commands = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    init = commands.add_parser("init-ca", help="make a new CA in DIR (ca.crt, ca.key)")
    init.add_argument("directory", metavar="DIR")
    init.add_argument("--name", default="vrc CA", help="the CA's common name")
    init.add_argument("--days", type=whole_number(1, 36500), default=pki.CA_DAYS,
                      help=f"validity (default {pki.CA_DAYS})")
    init.add_argument("--force", action="store_true", help="replace a CA that is there")
    issue = commands.add_parser("issue", help="issue a certificate from the CA in --ca DIR")
    issue.add_argument("--ca", required=True, metavar="DIR", help="the CA (from init-ca)")
    issue.add_argument("--role", required=True, choices=ROLES,
                       help="admin, reader (people, scripts), agent (a host), controller")
    issue.add_argument("--name", required=True,
                       help="the identity's name: a person's, a script's, an agent's host id")
    issue.add_argument("--dns", action="append", default=[], metavar="NAME",
                       help="a DNS name clients dial (servers; repeatable)")
    issue.add_argument("--ip", action="append", default=[], metavar="ADDRESS",
                       help="an IP address clients dial (servers; repeatable)")
    issue.add_argument("--days", type=whole_number(1, 36500), default=pki.CERT_DAYS,
                       help=f"validity (default {pki.CERT_DAYS})")
    issue.add_argument("--out", default=".", metavar="DIR",
                       help="where NAME.crt and NAME.key go (default .)")
    show = commands.add_parser("show", help="what certificates say")
    show.add_argument("files", nargs="+", metavar="FILE")
    dev = commands.add_parser("dev", help="a throw-away CA and a certificate per component "
                                          "of a one-machine cluster")
    dev.add_argument("directory", metavar="DIR")
    dev.add_argument("--agent", action="append", default=[], metavar="HOST", required=True,
                     help="an agent's host id (repeatable)")
    dev.add_argument("--admin", default="admin", help="the admin's name (default admin)")
    dev.add_argument("--reader", default=None, help="also a reader with this name")
    dev.add_argument("--days", type=whole_number(1, 36500), default=30,
                     help="validity (default 30)")
    return parser


def _info_dict(path: str, info: pki.CertInfo) -> dict[str, object]:
    return {"file": path, "identity": info.identity,
            "role": info.role.value if info.role else None, "uris": list(info.uris),
            "dns": list(info.dns), "ips": list(info.ips), "subject": info.subject,
            "issuer": info.issuer, "not_before": info.not_before.isoformat(),
            "not_after": info.not_after.isoformat(), "sha256": info.fingerprint,
            "ca": info.is_ca, "usages": list(info.usages)}


def _print(args: argparse.Namespace, data: dict[str, object], text: str) -> None:
    print(json.dumps(data, sort_keys=True) if args.output == "json" else text)


def init_ca(args: argparse.Namespace) -> None:
    directory = Path(args.directory)
    if (directory / pki.CA_KEY).exists() and not args.force:
        raise CliError(f"{directory / pki.CA_KEY} exists: a CA is there (--force replaces it, "
                       "and every certificate it issued stops being trusted)")
    files = pki.CertificateAuthority.create(args.name, days=args.days).write(directory)
    _print(args, {"cert": str(files.cert), "key": str(files.key)},
           f"CA certificate {files.cert} (give it to every component as --tls-ca)\n"
           f"CA key {files.key} (0600: keep it offline)")


def issue(args: argparse.Namespace) -> None:
    ca = pki.CertificateAuthority.load(args.ca)
    role = pki.CertRole(args.role)
    issued = ca.issue(role, args.name, dns=args.dns, ips=args.ip, days=args.days)
    files = issued.write(Path(args.out), args.name)
    _print(args, {"identity": issued.identity, "cert": str(files.cert), "key": str(files.key)},
           f"{issued.identity}\n  certificate {files.cert}\n  key {files.key} (0600)")


def show(args: argparse.Namespace) -> None:
    for path in args.files:
        try:
            info = pki.describe(Path(path).read_bytes())
        except OSError as error:
            raise CliError(f"{path}: {error.strerror}") from None
        except pki.PkiError as error:
            raise CliError(f"{path}: {error}") from None
        data = _info_dict(path, info)
        text = "\n".join([
            f"{path}: {info.identity}" + (" (CA)" if info.is_ca else ""),
            f"  role      {info.role.value if info.role else '-'}",
            f"  dns       {', '.join(info.dns) or '-'}",
            f"  ips       {', '.join(info.ips) or '-'}",
            f"  issuer    {info.issuer}",
            f"  valid     {info.not_before:%Y-%m-%d %H:%M} .. {info.not_after:%Y-%m-%d %H:%M} UTC",
            f"  usages    {', '.join(info.usages) or '-'}",
            f"  sha256    {info.fingerprint}"])
        _print(args, data, text)


def dev(args: argparse.Namespace) -> None:
    made = pki.make_dev_pki(args.directory, args.agent, admin=args.admin, reader=args.reader,
                            days=args.days)
    data: dict[str, object] = {
        "ca": str(made.ca), "controller": str(made.controller.cert),
        "admin": str(made.admin.cert),
        "agents": {host: str(files.cert) for host, files in made.agents.items()}}
    lines = [f"CA {made.ca}", f"controller {made.controller.cert}",
             f"admin {made.admin.cert}"]
    lines += [f"agent {host} {files.cert}" for host, files in made.agents.items()]
    if made.reader is not None:
        data["reader"] = str(made.reader.cert)
        lines.append(f"reader {made.reader.cert}")
    _print(args, data, "\n".join(lines))


ACTIONS = {"init-ca": init_ca, "issue": issue, "show": show, "dev": dev}


def main(argv: Sequence[str]) -> int:
    args = build_parser().parse_args(argv)
    try:
        ACTIONS[args.action](args)
    except CliError as error:
        print(f"vrc: {error}", file=sys.stderr)
        return 1
    except pki.PkiError as error:
        print(f"vrc: {error}", file=sys.stderr)
        return 1
    except OSError as error:
        print(f"vrc: {error.filename}: {error.strerror}", file=sys.stderr)
        return 1
    return 0
