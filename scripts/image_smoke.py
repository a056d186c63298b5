#!/usr/bin/env python3
"""Build the container image's environment without Docker, then start each script.

What the Dockerfile does, step for step, on this machine:

1. the build context: the checkout copied through ``.dockerignore``'s rules
   (so a pattern that drops something the wheel needs fails here);
2. stage 1: ``pip wheel`` of the context — the vrc wheel and a wheel of every
   dependency;
3. stage 2: a fresh venv and ``pip install --no-index --find-links`` of those
   wheels (nothing else can come in);
4. every console script in ``pyproject.toml`` answers ``--help``; ``vrc-agent``
   refuses to start without ``--interface`` (usage error) and on a NIC that is
   not there (or without root); ``vrc-controller``, when the package declares
   it, starts with its private etcd on a Unix socket in the temp dir and
   answers ``vrc --controller unix:... hosts``, then stops cleanly on SIGTERM.

Differences from the image, on purpose: the interpreter is the one running
this script (``--python`` picks another, e.g. python3.14), and Debian's
iproute2 is whatever this machine has. Everything lives in one temp dir,
removed at the end (``--keep`` keeps it). Every step is bounded in time; the
exit code is 0 when every check passed, 1 otherwise, with the failing check
named. Nothing here touches a network interface.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import tomllib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PIP_TIMEOUT = 600.0
HELP_TIMEOUT = 60.0
START_TIMEOUT = 90.0
STOP_TIMEOUT = 30.0


class SmokeError(RuntimeError):
    """A check failed; the message names it."""


# --- the build context through .dockerignore ---------------------------------------------


@dataclass(frozen=True, slots=True)
class IgnoreRule:
    pattern: re.Pattern[str]
    exception: bool  # a ``!pattern`` line: put back what an earlier rule dropped


def _translate(glob: str) -> str:
    """A .dockerignore glob as a regex: ``**`` crosses directories, ``*`` and ``?`` do not."""
    out = []
    i = 0
    while i < len(glob):
        if glob.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
        elif glob.startswith("**", i):
            out.append(".*")
            i += 2
        elif glob[i] == "*":
            out.append("[^/]*")
            i += 1
        elif glob[i] == "?":
            out.append("[^/]")
            i += 1
        else:
            out.append(re.escape(glob[i]))
            i += 1
    return "".join(out)


def read_dockerignore(path: Path) -> list[IgnoreRule]:
    rules = []
    for raw in path.read_text().splitlines() if path.exists() else []:
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        exception = line.startswith("!")
        glob = line[1:] if exception else line
        glob = os.path.normpath(glob.strip()).lstrip("/")
        rules.append(IgnoreRule(re.compile(_translate(glob) + r"\Z"), exception))
    return rules


def is_ignored(relpath: str, rules: Sequence[IgnoreRule]) -> bool:
    """Docker's rule: the last matching line wins; a match on a parent covers its contents."""
    parts = relpath.split("/")
    candidates = ["/".join(parts[: n + 1]) for n in range(len(parts))]
    ignored = False
    for rule in rules:
        if any(rule.pattern.match(candidate) for candidate in candidates):
            ignored = not rule.exception
    return ignored


def copy_context(root: Path, dest: Path) -> list[str]:
    """Copy ``root`` to ``dest`` without what .dockerignore excludes; returns the files."""
    rules = read_dockerignore(root / ".dockerignore")
    copied = []
    for directory, dirnames, filenames in os.walk(root):
        rel_dir = os.path.relpath(directory, root)
        rel_dir = "" if rel_dir == "." else rel_dir
        dirnames[:] = [name for name in dirnames
                       if not is_ignored(os.path.join(rel_dir, name), rules)]
        for name in filenames:
            rel = os.path.join(rel_dir, name)
            if is_ignored(rel, rules):
                continue
            target = dest / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(os.path.join(directory, name), target)
            copied.append(rel)
    return copied


# --- running things, bounded ------------------------------------------------------------


def run(argv: Sequence[str], *, timeout: float, what: str, env: dict[str, str] | None = None,
        cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(list(argv), capture_output=True, text=True, timeout=timeout,
                              check=False, env=env, cwd=cwd, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        raise SmokeError(f"{what}: no answer within {timeout:.0f}s") from None
    except OSError as exc:
        raise SmokeError(f"{what}: {exc}") from None


def expect_ok(proc: subprocess.CompletedProcess[str], what: str) -> None:
    if proc.returncode != 0:
        tail = (proc.stdout + proc.stderr)[-3000:]
        raise SmokeError(f"{what}: exit {proc.returncode}\n{tail}")


@dataclass
class Venv:
    path: Path

    def bin(self, name: str) -> str:
        return str(self.path / "bin" / name)

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env["PATH"] = f"{self.path / 'bin'}{os.pathsep}{env.get('PATH', '')}"
        env.pop("PYTHONPATH", None)  # only what the venv holds
        return env


def build_wheels(python: str, context: Path, wheels: Path) -> list[str]:
    proc = run([python, "-m", "pip", "wheel", "--quiet", "--disable-pip-version-check",
                "--wheel-dir", str(wheels), str(context)],
               timeout=PIP_TIMEOUT, what="stage 1: pip wheel")
    expect_ok(proc, "stage 1: pip wheel")
    built = sorted(path.name for path in wheels.glob("*.whl"))
    if not any(name.startswith("vrc-") for name in built):
        raise SmokeError(f"stage 1: no vrc wheel among {built}")
    return built


def install(python: str, wheels: Path, venv_dir: Path) -> Venv:
    expect_ok(run([python, "-m", "venv", str(venv_dir)], timeout=PIP_TIMEOUT,
                  what="stage 2: python -m venv"), "stage 2: python -m venv")
    venv = Venv(venv_dir)
    proc = run([venv.bin("pip"), "install", "--quiet", "--disable-pip-version-check",
                "--no-index", "--find-links", str(wheels), "vrc"],
               timeout=PIP_TIMEOUT, what="stage 2: pip install --no-index")
    expect_ok(proc, "stage 2: pip install --no-index")
    return venv


def console_scripts(pyproject: Path) -> list[str]:
    with pyproject.open("rb") as handle:
        return sorted(tomllib.load(handle)["project"]["scripts"])


# --- the checks -------------------------------------------------------------------------


def check_help(venv: Venv, name: str) -> None:
    script = Path(venv.bin(name))
    if not script.exists():
        raise SmokeError(f"{name}: not installed in the venv")
    proc = run([str(script), "--help"], timeout=HELP_TIMEOUT, what=f"{name} --help",
               env=venv.env(), cwd=venv.path)
    expect_ok(proc, f"{name} --help")
    if "usage:" not in proc.stdout:
        raise SmokeError(f"{name} --help: no usage text:\n{proc.stdout[-2000:]}")


def check_agent_refusals(venv: Venv) -> None:
    env = venv.env()
    proc = run([venv.bin("vrc-agent")], timeout=HELP_TIMEOUT, what="vrc-agent (no flags)",
               env=env, cwd=venv.path)
    if proc.returncode != 2 or "at least one --interface" not in proc.stderr:
        raise SmokeError(f"vrc-agent with no --interface: expected a usage error (exit 2), got "
                         f"{proc.returncode}:\n{proc.stderr[-2000:]}")
    missing = "vrcsmk" + secrets.token_hex(3)  # no such NIC: nothing is opened or changed
    with tempfile.TemporaryDirectory(prefix="vrcsmk") as run_dir:
        proc = run([venv.bin("vrc-agent"), "--interface", missing, "--listen",
                    f"unix:{run_dir}/agent.sock", "--log-format", "json"],
                   timeout=HELP_TIMEOUT, what="vrc-agent on a missing NIC", env=env,
                   cwd=venv.path)
    output = proc.stdout + proc.stderr
    expected = ("no such network interface", "permission denied")
    if proc.returncode != 1 or not any(text in output for text in expected):
        raise SmokeError(f"vrc-agent --interface {missing}: expected a start failure (exit 1) "
                         f"naming the NIC or root, got {proc.returncode}:\n{output[-2000:]}")


@contextlib.contextmanager
def started(argv: Sequence[str], env: dict[str, str], log: Path, cwd: Path
            ) -> Iterator[subprocess.Popen[bytes]]:
    with log.open("wb") as out:
        proc = subprocess.Popen(list(argv), stdout=out, stderr=subprocess.STDOUT, env=env,
                                cwd=cwd, stdin=subprocess.DEVNULL, start_new_session=True)
    try:
        yield proc
    finally:
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)  # only reached when a check failed
            proc.wait(timeout=STOP_TIMEOUT)


def check_controller(venv: Venv, work: Path) -> None:
    socket = work / "ctl.sock"
    log = work / "controller.log"
    target = f"unix:{socket}"
    argv = [venv.bin("vrc-controller"), "--listen", target, "--data-dir", str(work / "data"),
            "--log-format", "json"]
    with started(argv, venv.env(), log, work) as proc:
        deadline = time.monotonic() + START_TIMEOUT
        answer = None
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise SmokeError(f"vrc-controller exited {proc.returncode} before answering:\n"
                                 f"{log.read_text()[-3000:]}")
            if socket.exists():
                answer = run([venv.bin("vrc"), "--controller", target, "hosts"],
                             timeout=HELP_TIMEOUT, what="vrc --controller ... hosts",
                             env=venv.env(), cwd=work)
                if answer.returncode == 0:
                    break
            time.sleep(0.25)
        else:
            detail = (answer.stdout + answer.stderr)[-2000:] if answer else "no socket"
            raise SmokeError(f"vrc --controller {target} hosts: no answer within "
                             f"{START_TIMEOUT:.0f}s: {detail}\n{log.read_text()[-3000:]}")
        proc.send_signal(signal.SIGTERM)
        try:
            code = proc.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            raise SmokeError(f"vrc-controller did not stop within {STOP_TIMEOUT:.0f}s of "
                             "SIGTERM") from None
        if code != 0:
            raise SmokeError(f"vrc-controller exited {code} on SIGTERM:\n"
                             f"{log.read_text()[-3000:]}")


# --- the whole run ------------------------------------------------------------------------


def smoke(python: str, work: Path, say: Callable[[str], None] = print) -> list[str]:
    """Every step in order; returns the names of the checks that passed."""
    passed = []

    def step(name: str, started_at: float) -> None:
        passed.append(name)
        say(f"ok   {name} ({time.monotonic() - started_at:.1f}s)")

    t = time.monotonic()
    context = work / "context"
    files = copy_context(ROOT, context)
    step(f"build context through .dockerignore ({len(files)} files)", t)
    t = time.monotonic()
    built = build_wheels(python, context, work / "wheels")
    step(f"stage 1: pip wheel ({len(built)} wheels)", t)
    t = time.monotonic()
    venv = install(python, work / "wheels", work / "venv")
    step("stage 2: fresh venv, pip install --no-index", t)
    scripts = console_scripts(context / "pyproject.toml")
    for name in scripts:
        t = time.monotonic()
        check_help(venv, name)
        step(f"{name} --help", t)
    if "vrc-agent" in scripts:
        t = time.monotonic()
        check_agent_refusals(venv)
        step("vrc-agent refuses to start without a usable NIC", t)
    if "vrc-controller" in scripts:
        t = time.monotonic()
        check_controller(venv, work)
        step("vrc-controller with its private etcd answers vrc --controller ... hosts", t)
    return passed


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--python", default=sys.executable,
                        help="interpreter for the venv (default: this one)")
    parser.add_argument("--keep", action="store_true", help="keep the temp dir")
    args = parser.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="vrc-image-"))
    started_at = time.monotonic()
    try:
        passed = smoke(args.python, work)
    except SmokeError as exc:
        print(f"FAIL {exc}", file=sys.stderr)
        return 1
    finally:
        if args.keep:
            print(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    print(f"image smoke: {len(passed)} checks passed in {time.monotonic() - started_at:.1f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
