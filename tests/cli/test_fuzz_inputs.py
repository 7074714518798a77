"""The command line's inputs at random (hypothesis): every answer is a run (exit 0) or one
line naming the problem (exit 2), never a traceback, an internal error or a crash."""

from __future__ import annotations

import contextlib
import io
import tempfile
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from percpu.cli import main

JUNK = st.text(alphabet="ab=.,:-_ 019x\\\"'[]#", max_size=12)
SET_KEYS = st.sampled_from(["cost.invlpg", "cost.root_alloc", "tlb.l1d.entries", "cache.enabled",
                            "machine.cpus", "kmap.private", "nosuch.key", "cost", ""])
PARAM_KEYS = st.sampled_from(["procs_per_cpu", "pages", "pinned", "work_cycles", "nosuch", ""])
VALUES = st.one_of(JUNK, st.sampled_from(["0", "1", "-1", "7", "1e9", "nan", "inf", "true",
                                          "0x10", "3.5"]))
OPTION = st.one_of(
    st.tuples(st.just("--cpus"), st.sampled_from(["0", "1", "2", "257", "-3", "x", "2.5", ""])),
    st.tuples(st.just("--set"), st.builds(lambda k, v: f"{k}={v}", SET_KEYS, VALUES)),
    st.tuples(st.just("--set"), JUNK),
    st.tuples(st.just("--param"), st.builds(lambda k, v: f"{k}={v}", PARAM_KEYS,
                                            st.sampled_from(["0", "1", "2", "yes", "-1", "x"]))),
    st.tuples(st.just("--scheme"), st.one_of(JUNK, st.sampled_from(
        ["shared", "percpu,shared", "percpu,percpu", ",", "percpu-eager"]))),
    st.tuples(st.just("-w"), st.one_of(JUNK, st.sampled_from(
        ["ctxmix", "pingpong", "trace:", "trace:/nonexistent", "trace:/proc", "kmap-io"]))),
    st.tuples(st.just("--paging"), st.sampled_from(["4", "5", "6", ""])),
    st.tuples(st.just("--seed"), st.sampled_from(["0", "-1", "99", "x"])),
    st.tuples(st.just("--outdir"), st.sampled_from(["/proc/x", "/dev/null", "", "o"])),
)
TOML = st.one_of(JUNK, st.builds(lambda t, k, v: f"[{t}]\n{k} = {v}\n",
                                 st.sampled_from(["cost", "tlb", "nosuch", "profile"]),
                                 st.sampled_from(["invlpg", "root_alloc", "x"]),
                                 st.sampled_from(["1", "\"fast\"", "-5", "[1]", "true", "{}"])))


def call(argv: list[str]) -> tuple[int, str]:
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        try:
            main(argv)
        except SystemExit as exc:
            return (exc.code if isinstance(exc.code, int) else 1), err.getvalue()
    return 0, err.getvalue()


def assert_clean(code: int, err: str) -> None:
    assert "Traceback" not in err and "internal error" not in err, err
    assert code in (0, 2), (code, err)
    if code == 2:
        lines = err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("percpu: error: "), err


@settings(max_examples=40)
@given(options=st.lists(OPTION, max_size=4), toml=st.one_of(st.none(), TOML))
def test_run_inputs_give_a_run_or_one_line(options, toml):
    with tempfile.TemporaryDirectory() as tmp:
        argv = ["run", "-q", "--no-report", "-o", f"{tmp}/out"]
        for flag, value in options:
            argv += [flag, value if flag != "--outdir" or value != "o" else f"{tmp}/o"]
        if toml is not None:
            (Path(tmp) / "c.toml").write_text(toml)
            argv += ["--config", f"{tmp}/c.toml"]
        # Small enough that any accepted combination runs in a moment.
        argv += ["--param", "rounds=1", "--param", "procs_per_cpu=1", "--cpus", "2"] \
            if not any(f == "--cpus" for f, _ in options) else ["--param", "rounds=1"]
        assert_clean(*call(argv))


STATS = st.one_of(JUNK, st.sampled_from([
    "", "---------- Begin Simulation Statistics ----------\nsimTicks 1 # t (Tick)\n",
    ("---------- Begin Simulation Statistics ----------\nsimTicks x\n"
     "---------- End Simulation Statistics   ----------\n"),
]))
CONFIG = st.one_of(JUNK, st.sampled_from(["{}", "[]", '{"percpu_version": 1}', "null",
                                          '{"percpu_version": "0.1", "scheme": 3}']))


@settings(max_examples=30)
@given(stats=STATS, config=CONFIG, baseline=st.sampled_from(["shared", "nosuch", ""]),
       out=st.sampled_from(["rep", "/proc/x", "run"]), fmt=st.sampled_from(["md", "html,md", "x"]))
def test_report_inputs_give_a_report_or_one_line(stats, config, baseline, out, fmt):
    with tempfile.TemporaryDirectory() as tmp:
        run = Path(tmp) / "run"
        run.mkdir()
        (run / "stats.txt").write_text(stats)
        (run / "config.json").write_text(config)
        target = out if out.startswith("/") else f"{tmp}/{out}"
        code, err = call(["report", str(run), "--baseline", baseline, "--out", target,
                          "--format", fmt])
        assert "Traceback" not in err and "internal error" not in err, err
        assert code in (0, 2), (code, err)
        if code == 2:
            lines = err.strip().splitlines()
            assert len(lines) == 1 and "error: " in lines[0], err
