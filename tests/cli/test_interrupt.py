"""Ctrl-C during a long run: the engine stops promptly and nothing is written."""

import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_sigint_stops_the_engine_and_writes_nothing(tmp_path):
    proc = subprocess.Popen(
        [sys.executable, str(ROOT / "configs" / "percpu.py"), "--param", "rounds=1000000",
         "--outdir", "out"],
        cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        # A shell's background jobs ignore SIGINT; give the child the default action.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),  # noqa: PLW1509
    )
    time.sleep(3)  # well into the first run (about 25 s of engine time)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "interrupted" in err.splitlines()[-1]
    assert not (tmp_path / "out").exists()
