#!/usr/bin/env python3
"""Bootstrap for the README's two commands; needs only Python 3.11+.

    python3 dev.py demo     open the workstation on the demo rig (4 synthetic cameras)
    python3 dev.py test     run ruff, mypy, the import contracts and the whole test suite
    python3 dev.py record   no display? record the demo rig headless and verify it
    python3 dev.py bundle   build the desktop bundle dist/recorder-workstation/ (PyInstaller)

Each creates `.venv` beside this file and installs the project into it when
pyproject.toml changed since the last install, then runs inside it.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import time
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
PYTHON = BIN / ("python.exe" if os.name == "nt" else "python")


def ensure_venv(extras: tuple[str, ...] = ("test",)) -> None:
    """Create .venv and (re)install the project with these extras when needed."""
    if sys.version_info < (3, 11):  # noqa: UP036 - runs on the system Python, before .venv
        sys.exit(f"Python 3.11 or newer is needed, this is {sys.version.split()[0]}")
    if not PYTHON.exists():
        print(f"creating {VENV} ...", flush=True)
        venv.EnvBuilder(with_pip=True).create(VENV)
    digest = hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()[:16]
    stamp = VENV / f".installed-{digest}-{'-'.join(extras)}"
    if stamp.exists():
        return
    print("installing the project and its dependencies into .venv ...", flush=True)
    pip = [str(PYTHON), "-m", "pip", "install", "--disable-pip-version-check", "-q"]
    subprocess.run([*pip, "--upgrade", "pip"], check=True)
    subprocess.run([*pip, "-e", f"{ROOT}[{','.join(extras)}]"], check=True)
    for old in VENV.glob(".installed-*"):
        if not old.name.startswith(f".installed-{digest}-"):
            old.unlink()
    stamp.touch()


def genicam_buildable() -> bool:
    """Whether the GenICam extra (PyGObject) can be built here: Debian's Aravis and
    GObject introspection headers are installed (.ci/run installs them). Elsewhere the
    GenICam camera tests skip, saying so."""
    if shutil.which("pkg-config") is None:
        return False
    found = subprocess.run(["pkg-config", "--exists", "gobject-introspection-1.0", "cairo"])
    return found.returncode == 0 and any(Path("/usr/lib").glob(
        "*/girepository-1.0/Aravis-0.8.typelib"))


def run(*command: str) -> int:
    return subprocess.run([str(BIN / command[0]), *command[1:]], cwd=ROOT).returncode


def demo(extra: list[str]) -> int:
    return run("recorder-gui", "--demo", "4", *extra)


def record(extra: list[str]) -> int:
    output = ROOT / "recordings"
    code = run("recorder-engine", "record", "--demo", "4", "--seconds", "10",
               "--output", str(output), "--name", "demo", *extra)
    if code != 0:
        return code
    latest = max(output.glob("demo*"), key=lambda p: p.stat().st_mtime)
    return run("recorder-engine", "verify", str(latest))


def test(extra: list[str]) -> int:
    """The contracts first (lint, types, import layers: fast), then the tests."""
    for check in (("ruff", "check", "."), ("mypy",), ("lint-imports",)):
        code = run(*check)
        if code != 0:
            return code
    return run("pytest", *extra)


def bundle(extra: list[str]) -> int:
    """One-folder PyInstaller bundle from packaging/recorder.spec into dist/."""
    started = time.monotonic()
    code = run("pyinstaller", "--noconfirm", "--log-level", "WARN",
               "--distpath", str(ROOT / "dist"), "--workpath", str(ROOT / "build"),
               str(ROOT / "packaging" / "recorder.spec"), *extra)
    if code == 0:
        elapsed = time.monotonic() - started
        print(f"built {ROOT / 'dist' / 'recorder-workstation'} in {elapsed:.0f} s")
    return code


def main() -> int:
    commands = {"demo": demo, "test": test, "record": record, "bundle": bundle}
    if len(sys.argv) < 2 or sys.argv[1] not in commands:
        print(__doc__)
        return 2
    extras = ("test", "packaging") if sys.argv[1] == "bundle" else ("test",)
    ensure_venv(extras + (("genicam",) if genicam_buildable() else ()))
    return commands[sys.argv[1]](sys.argv[2:])


if __name__ == "__main__":
    sys.exit(main())
