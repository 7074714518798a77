"""What a new user reads: exit codes, help texts, --version, config and trace errors,
progress on a terminal only."""

from __future__ import annotations

import os
import pty
import select
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from percpu import __version__
from percpu.cli import main_group

ROOT = Path(__file__).resolve().parents[2]
SMALL = ["--param", "rounds=5", "--param", "pages=4", "--no-report"]


def percpu(*args: str, cwd: Path, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "percpu", *args], cwd=cwd, capture_output=True,
                          text=True, timeout=300, check=False,
                          env={**os.environ, **(env or {})})


def help_of(*args: str) -> str:
    res = CliRunner().invoke(main_group, [*args, "--help"], terminal_width=110)
    assert res.exit_code == 0, res.output
    return res.output


def test_every_option_of_workloads_render_has_help():
    text = help_of("workloads", "render")
    for option in ("--target", "--param", "--cpus", "--seed"):
        line = next(ln for ln in text.splitlines() if ln.strip().startswith(option)
                    or f", {option}" in ln)
        assert len(line.split(None, 2)) >= 2 and "  " in line.strip(), line
    assert "op program" in text and "1..256" in text


def test_help_texts_say_what_they_mean():
    assert "other than the traced command" in help_of("trace", "replay")
    assert "max_ops=N" in help_of("trace", "replay")
    bench = help_of("bench")
    assert "issue" not in bench and "25 M references/s" in bench
    assert "1..256" in help_of("run")


@pytest.mark.parametrize("argv", [["--version"], ["run", "--version"]])
def test_version(argv, tmp_path):
    res = percpu(*argv, cwd=tmp_path)
    assert res.returncode == 0 and __version__ in res.stdout, res.stderr


def test_configs_percpu_py_says_it_is_the_embedded_engine(tmp_path):
    res = subprocess.run([sys.executable, str(ROOT / "configs" / "percpu.py"), "--help"],
                         cwd=tmp_path, capture_output=True, text=True, check=False)
    assert res.returncode == 0, res.stderr
    text = " ".join(res.stdout.split())
    assert "embedded engine" in text and "gem5.opt configs/percpu.py" in text
    assert "percpu gem5 run" in text
    res = subprocess.run([sys.executable, str(ROOT / "configs" / "percpu.py"), "--version"],
                         cwd=tmp_path, capture_output=True, text=True, check=False)
    assert __version__ in res.stdout


@pytest.mark.parametrize(("toml", "expected"), [
    ("[cost]\ninvlpg = \"fast\"\n", "x.toml:2: cost.invlpg = fast: the value must be a number"),
    ("# a comment\ninvlpg = 300\n", ("x.toml:2: unknown parameter 'invlpg': did you mean "
                                     "cost.invlpg (e.g. [cost] invlpg = ...)?")),
    ("[cost]\n\ninvlpg = -5\n", "x.toml:3: cost.invlpg = -5 is out of range"),
    ("[cost\n", "x.toml is not valid TOML"),
])
def test_config_errors_name_the_file_line_and_key(tmp_path, toml, expected):
    (tmp_path / "x.toml").write_text(toml)
    res = percpu("run", *SMALL, "--config", "x.toml", cwd=tmp_path)
    assert res.returncode == 2, res.stderr
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and expected in lines[0], lines
    assert "--set" not in lines[0]


def test_an_empty_trace_name_says_so(tmp_path):
    res = percpu("run", "-w", "trace:", cwd=tmp_path)
    assert res.returncode == 2
    assert "--workload trace: names no file" in res.stderr and "file  not" not in res.stderr


def test_a_bad_trace_fails_before_any_run_on_a_line_of_its_own(tmp_path):
    (tmp_path / "bad.trace").write_text("percpu-trace 1\nthis is not an event\n")
    res = percpu("run", "-w", "trace:bad.trace", cwd=tmp_path)
    assert res.returncode == 2, res.stderr
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("percpu: error:"), lines
    assert "[1/2]" not in res.stderr  # no scheme started
    assert not (tmp_path / "m5out").exists()


def test_an_internal_error_is_not_bad_input(tmp_path, monkeypatch):
    # A bug (here: the engine's result is not what the runner expects) gets exit 3 and
    # one line saying it is a bug, not exit 2.
    code = ("import percpu.runner as r, sys\n"
            "from percpu.cli import main\n"
            "r.core = lambda: (_ for _ in ()).throw(KeyError('simTicks'))\n"
            "main(sys.argv[1:])\n")
    res = subprocess.run([sys.executable, "-c", code, "run", *SMALL], cwd=tmp_path,
                         capture_output=True, text=True, check=False)
    assert res.returncode == 3, res.stderr
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and "internal error (a bug in percpu" in lines[0], lines
    assert "PERCPU_TRACEBACK=1" in lines[0]
    res = subprocess.run([sys.executable, "-c", code, "run", *SMALL], cwd=tmp_path,
                         capture_output=True, text=True, check=False,
                         env={**os.environ, "PERCPU_TRACEBACK": "1"})
    assert res.returncode == 3 and "Traceback" in res.stderr


def test_a_missing_dependency_does_not_hide_a_subcommand(tmp_path):
    # pyarrow missing (as a broken install would have it): report is still listed and
    # says what to install; other commands work.
    code = ("import sys\n"
            "sys.modules['pyarrow'] = None\n"
            "sys.modules['percpu.analysis.cli'] = None\n"
            "from percpu.cli import main\n"
            "main(sys.argv[1:])\n")
    listing = subprocess.run([sys.executable, "-c", code, "--help"], cwd=tmp_path,
                             capture_output=True, text=True, check=False)
    assert listing.returncode == 0 and "report" in listing.stdout and "bench" in listing.stdout
    res = subprocess.run([sys.executable, "-c", code, "report", "m5out"], cwd=tmp_path,
                         capture_output=True, text=True, check=False)
    assert res.returncode == 2, res.stderr
    assert "percpu report needs the Python module" in res.stderr
    schemes = subprocess.run([sys.executable, "-c", code, "schemes"], cwd=tmp_path,
                             capture_output=True, text=True, check=False)
    assert schemes.returncode == 0 and "percpu" in schemes.stdout


def _run_on_a_terminal(args: list[str], cwd: Path) -> str:
    """stderr of `percpu ARGS` when it is a terminal (a pty); stdout goes to a pipe."""
    leader, follower = pty.openpty()
    proc = subprocess.Popen([sys.executable, "-m", "percpu", *args], cwd=cwd,
                            stdout=subprocess.DEVNULL, stderr=follower)
    os.close(follower)
    chunks = []
    while True:
        ready, _, _ = select.select([leader], [], [], 120)
        if not ready:
            break
        try:
            data = os.read(leader, 4096)
        except OSError:  # the child closed its end
            break
        if not data:
            break
        chunks.append(data)
    proc.wait(timeout=120)
    os.close(leader)
    assert proc.returncode == 0
    return b"".join(chunks).decode()


def test_progress_inside_a_run_on_a_terminal_only(tmp_path):
    args = ["run", "--param", "rounds=60000", "--no-report", "-o", "o"]
    err = _run_on_a_terminal(args, tmp_path)
    assert "ms simulated" in err and "M refs/s" in err, err
    assert "s left" in err  # the second scheme knows about how many references to expect
    small = ["run", "--param", "rounds=5000", "--no-report", "-o", "o"]
    assert _run_on_a_terminal([*small, "--quiet"], tmp_path) == ""
    piped = percpu(*args, cwd=tmp_path)  # not a terminal: one line per scheme, no progress
    assert piped.returncode == 0
    assert "ms simulated" not in piped.stderr and "\r" not in piped.stderr


def test_trace_replay_names_its_limit_as_run_does(tmp_path):
    trace = str(ROOT / "workloads" / "traces" / "pingpong.trace.gz")
    res = percpu("trace", "replay", trace, "--cpus", "2", "--param", "max_ops=500", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    assert res.stdout.startswith("percpu-ops 1\n")
    res = percpu("trace", "replay", trace, "--param", "max_ops=5", cwd=tmp_path)
    assert res.returncode == 2 and "max_ops" in res.stderr
    assert len(res.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize("args", [["sensitivity", "--out", "/proc/percpu-x"],
                                  ["calibrate", "--out", "/proc/percpu-x.toml"],
                                  ["calibrate", "--out", "/sys/percpu-x.toml"]])
def test_siblings_check_their_output_before_working(tmp_path, args):
    res = percpu(*args, cwd=tmp_path)
    assert res.returncode == 2, res.stderr
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and "--out /" in lines[0] and "cannot write" in lines[0], lines
