"""`percpu run` never destroys what it did not write, checks its output directory before
simulating, and keeps the finished runs on Ctrl-C."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SMALL = ["--param", "rounds=5", "--param", "pages=4", "--no-report", "-q"]


def percpu(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "percpu", *args], cwd=cwd, capture_output=True,
                          text=True, timeout=300, check=False)


def test_a_directory_percpu_did_not_write_is_refused_and_kept(tmp_path):
    mine = tmp_path / "existing" / "shared" / "mine.txt"
    mine.parent.mkdir(parents=True)
    mine.write_text("my notes\n")
    res = percpu("run", *SMALL, "-o", "existing", cwd=tmp_path)
    assert res.returncode == 2, res.stderr
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and "existing/shared is not a previous percpu run" in lines[0]
    assert "mine.txt" in lines[0] and "--force" in lines[0]
    assert mine.read_text() == "my notes\n"
    assert not (tmp_path / "existing" / "percpu").exists()  # nothing written at all


def test_force_replaces_it_and_a_previous_run_is_replaced_without_force(tmp_path):
    mine = tmp_path / "o" / "shared" / "mine.txt"
    mine.parent.mkdir(parents=True)
    mine.write_text("x")
    res = percpu("run", *SMALL, "-o", "o", "--force", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    assert not mine.exists() and (tmp_path / "o" / "shared" / "stats.txt").is_file()
    again = percpu("run", *SMALL, "-o", "o", cwd=tmp_path)  # a previous percpu run: replaced
    assert again.returncode == 0, again.stderr


def test_a_previous_run_with_a_file_added_is_not_replaced(tmp_path):
    assert percpu("run", *SMALL, "-o", "o", cwd=tmp_path).returncode == 0
    (tmp_path / "o" / "percpu" / "notes.md").write_text("mine")
    res = percpu("run", *SMALL, "-o", "o", cwd=tmp_path)
    assert res.returncode == 2 and "notes.md" in res.stderr
    assert (tmp_path / "o" / "percpu" / "notes.md").read_text() == "mine"


def test_an_unwritable_outdir_fails_before_simulating(tmp_path):
    for bad in ("/proc/percpu-x", "/sys/percpu-x"):
        start = time.monotonic()
        # 4000 rounds would simulate for many seconds: the error must come first.
        res = percpu("run", "--param", "rounds=4000", "-o", bad, cwd=tmp_path)
        assert res.returncode == 2, res.stderr
        lines = res.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("percpu: error: --outdir " + bad), lines
        assert "choose another with --outdir" in lines[0]
        assert time.monotonic() - start < 20


def test_a_run_leaves_its_directory_describing_that_run_alone(tmp_path):
    assert percpu("run", "--param", "rounds=5", "-q", "-o", "o", cwd=tmp_path).returncode == 0
    assert {p.name for p in (tmp_path / "o").iterdir()} == {"shared", "percpu", "report"}
    (tmp_path / "o" / "notes.txt").write_text("mine")
    (tmp_path / "o" / "gem5-run").mkdir()
    (tmp_path / "o" / "gem5-run" / "stats.txt").write_text("")
    res = percpu("run", "--param", "rounds=5", "-s", "shared", "--no-report", "-o", "o",
                 cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    # The older percpu run and its report went; what percpu did not write stays, named.
    assert {p.name for p in (tmp_path / "o").iterdir()} == {"shared", "notes.txt", "gem5-run"}
    said = res.stderr.strip().splitlines()[-1]
    assert "removed the previous run's o/percpu, o/report" in said
    assert "o also holds gem5-run, notes.txt, not written by percpu run" in said
    assert (tmp_path / "o" / "notes.txt").read_text() == "mine"
    report = percpu("report", "o/shared", "--out", "r", cwd=tmp_path)
    assert report.returncode == 0, report.stderr


def test_ctrl_c_in_the_second_scheme_keeps_the_first(tmp_path):
    # An older run of both schemes, with its report, is there: it must not stay beside.
    assert percpu("run", *SMALL[:4], "-q", "-o", "out", cwd=tmp_path).returncode == 0
    assert (tmp_path / "out" / "report").is_dir()
    proc = subprocess.Popen(
        [sys.executable, "-m", "percpu", "run", "--param", "rounds=150000", "--no-report",
         "-o", "out"], cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),  # noqa: PLW1509
    )
    first = proc.stderr.readline()  # stderr is not a terminal: one line per finished scheme
    assert first.startswith("[1/2] ctxmix under shared: "), first
    time.sleep(0.5)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    last = err.strip().splitlines()[-1]
    assert "kept the finished run out/shared (complete)" in last, last
    assert "not finished, nothing written: percpu" in last
    assert "removed the previous run's out/percpu, out/report" in last
    kept = tmp_path / "out" / "shared"
    assert sorted(p.name for p in kept.iterdir()) == ["config.json", "program.ops", "stats.txt",
                                                      "summary.txt"]
    note = json.loads((kept / "config.json").read_text())["note"]
    assert "kept after Ctrl-C" in note and "percpu" in note
    assert "note: kept after Ctrl-C" in (kept / "summary.txt").read_text()
    assert not (tmp_path / "out" / "percpu").exists()
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["shared"]  # no temp left over


def test_an_empty_outdir_is_refused_not_taken_for_the_current_directory(tmp_path):
    res = percpu("run", *SMALL, "-o", "", cwd=tmp_path)
    assert res.returncode == 2 and "--outdir is empty" in res.stderr
    assert not list(tmp_path.iterdir())
