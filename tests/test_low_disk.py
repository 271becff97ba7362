"""`recorder-engine record` and `recorder-engine ctl record` apply one low-disk policy."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from tests.engines import RIG, Engine
from tests.test_crash_safety import ROOT, mount_tmpfs

pytestmark = pytest.mark.timeout(120)


def test_cli_record_and_ctl_record_refuse_a_small_disk_with_the_same_message(tmp_path):
    small = tmp_path / "small"
    if not mount_tmpfs(small, "48m"):
        pytest.skip("needs root to mount a small tmpfs")
    engine = None
    try:
        direct = subprocess.run(
            [sys.executable, "-m", "engine", "record", "--demo", "1", "--size", "256x192",
             "--seconds", "5", "--output", str(small)],
            capture_output=True, text=True, cwd=ROOT, timeout=60,
        )
        engine = Engine(tmp_path, RIG)
        through_engine = engine.cli("ctl", "record", "--output", str(small))
        left_behind = list(small.iterdir())
    finally:
        if engine is not None:
            engine.stop()
        subprocess.run(["umount", "-l", str(small)], check=False)
    assert direct.returncode != 0 and through_engine.returncode != 0
    message = direct.stderr.strip()
    assert re.fullmatch(rf"error: only 0\.0\d GB free in {re.escape(str(small))}; recording "
                        r"needs at least 1\.00 GB", message), direct.stderr
    assert through_engine.stderr.strip() == message
    assert "recording" not in direct.stdout
    assert not left_behind
