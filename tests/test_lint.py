"""The Python sources are ruff-clean (the version pinned in the test extras)."""

import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_ruff_is_clean():
    ruff = shutil.which("ruff")
    assert ruff, "ruff is missing: install the test extras with pip install '.[test]'"
    out = subprocess.run([ruff, "check", "percpu", "tests", "configs"], cwd=ROOT,
                         capture_output=True, text=True, check=False)
    assert out.returncode == 0, out.stdout + out.stderr
