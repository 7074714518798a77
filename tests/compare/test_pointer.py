"""examples/compare_hosts.py is a pointer to `percpu compare`: one line, exit 2."""

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_compare_hosts_points_to_percpu_compare():
    res = subprocess.run([sys.executable, str(REPO / "examples" / "compare_hosts.py"), "--gem5",
                          "x"], capture_output=True, text=True, check=False)
    assert res.returncode == 2 and res.stderr.count("\n") == 1
    assert "is now 'percpu compare' (docs/compare.md)" in res.stderr
