"""stats.txt: gem5's own output parses, our writer matches it byte for byte, bad input is named."""

from __future__ import annotations

import math
import os
import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from percpu.analysis import stats_txt
from percpu.analysis.stats_txt import (
    BEGIN_BANNER,
    END_BANNER,
    Stat,
    StatsFormatError,
    format_stats_txt,
    format_value,
    parse_stats_text,
    parse_stats_txt,
    write_stats_txt,
)
from percpu.errors import UsageError

# --- the real gem5 v24 file ---------------------------------------------------


def test_fixture_has_two_blocks_with_their_line_ranges(fixture_run: Path) -> None:
    dumps = parse_stats_txt(fixture_run / "stats.txt")
    assert [(d.begin_line, d.end_line, d.partial) for d in dumps] == [
        (2, 682, False),
        (684, 1219, False),
    ]
    assert dumps[0]["simTicks"] == 4080915
    assert dumps[1]["simTicks"] == 1000000000
    assert dumps[1]["finalTick"] == 1004080915
    assert dumps[0].lines["simTicks"] == 4


def test_fixture_values_nan_pdf_cdf_and_units(fixture_run: Path) -> None:
    d0 = parse_stats_txt(fixture_run / "stats.txt")[0]
    by_name = {s.name: s for s in d0.stats}
    assert d0["board.processor.cores.core.numCycles"] == 12256
    assert isinstance(d0["board.processor.cores.core.numCycles"], int)
    assert d0["simSeconds"] == pytest.approx(4e-6)
    assert math.isnan(d0["board.cache_hierarchy.l1d-cache-0.avgBlocked::no_mshrs"])
    fan = by_name["board.cache_hierarchy.l2buses.snoopFanout::0"]
    assert (fan.value, fan.pdf_pct, fan.cdf_pct) == (361, 99.72, 99.72)
    assert by_name["board.cache_hierarchy.l2buses.snoopFanout::mean"].pdf_pct is None
    # nested unit and a description that has parentheses of its own
    assert by_name["simFreq"].unit == "(Tick/Second)"
    hits = by_name["board.cache_hierarchy.l1d-cache-0.demandHits::total"]
    assert (hits.desc, hits.unit) == ("number of demand (read+write) hits", "Count")
    rate = by_name["hostTickRate"]
    assert rate.desc == "The number of ticks simulated per host second (ticks/s)"
    assert rate.unit == "(Tick/Second)"


def test_writer_reproduces_the_fixture_byte_for_byte(fixture_run: Path, tmp_path: Path) -> None:
    original = (fixture_run / "stats.txt").read_text()
    dumps = parse_stats_txt(fixture_run / "stats.txt")
    out = tmp_path / "stats.txt"
    write_stats_txt(out, [d.stats for d in dumps])
    assert out.read_text() == original


# --- the writer's layout --------------------------------------------------------


def test_scalar_line_matches_gem5_columns() -> None:
    text = format_stats_txt([[Stat("simTicks", 4080915, "Number of ticks simulated", "Tick")]])
    assert text == (
        "\n" + BEGIN_BANNER + "\n"
        "simTicks                                      4080915                       "
        "# Number of ticks simulated (Tick)\n"
        "\n" + END_BANNER + "\n"
    )


def test_float_nan_and_pdf_lines_match_gem5() -> None:
    lines = format_stats_txt(
        [
            [
                Stat("simSeconds", 0.000004, "Number of seconds simulated", "Second"),
                Stat("a.avgBlocked::no_mshrs", math.nan, "average", "(Cycle/Count)"),
                Stat("a.snoopFanout::0", 361, "Request fanout histogram", "Count", 99.72, 99.72),
            ]
        ]
    ).splitlines()
    assert lines[2] == (
        "simSeconds                                   0.000004                       "
        "# Number of seconds simulated (Second)"
    )
    assert lines[3].split()[1] == "nan"
    assert lines[3].endswith("# average ((Cycle/Count))")
    assert lines[4] == (
        "a.snoopFanout::0                                  361     99.72%     99.72% "
        "# Request fanout histogram (Count)"
    )


@pytest.mark.parametrize(
    ("value", "precision", "text"),
    [
        (3, None, "3"),
        (-7, None, "-7"),
        (0.5, None, "0.500000"),
        (3.0, None, "3"),  # gem5 prints integral values without decimals
        (1 / 3, None, "0.333333"),
        (math.nan, None, "nan"),
        (math.inf, None, "inf"),
        (-math.inf, None, "-inf"),
        (np.int64(12), None, "12"),
        (True, None, "1"),
        (0.03, 2, "0.03"),
        (0, 12, "0.000000000000"),
    ],
)
def test_format_value_like_gem5(value: float, precision: int | None, text: str) -> None:
    assert format_value(value, precision) == text


def test_numpy_values_keep_their_kind() -> None:
    text = format_stats_txt([[Stat("a", np.int64(5)), Stat("b", np.float64(0.25))]])
    assert text.splitlines()[2].split() == ["a", "5"]
    assert text.splitlines()[3].split() == ["b", "0.250000"]


@pytest.mark.parametrize(
    "bad",
    [
        Stat("has space", 1),
        Stat("", 1),
        Stat("a#b", 1),
        Stat("---------- x", 1),
        Stat("a", 1, "two\nlines"),
        Stat("a", "12"),  # type: ignore[arg-type]
    ],
)
def test_writer_rejects_what_would_not_parse_back(bad: Stat, tmp_path: Path) -> None:
    target = tmp_path / "stats.txt"
    target.write_text("previous\n")
    with pytest.raises(TypeError if isinstance(bad.value, str) else ValueError):
        write_stats_txt(target, [[Stat("ok", 1), bad]])
    assert target.read_text() == "previous\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["stats.txt"]


def test_write_is_atomic_when_the_rename_fails(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "stats.txt"
    write_stats_txt(target, [[Stat("a", 1)]])
    before = target.read_bytes()

    def boom(src: str, dst: str) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(stats_txt.os, "replace", boom)
    with pytest.raises(OSError):
        write_stats_txt(target, [[Stat("a", 2)]])
    assert target.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["stats.txt"]


# --- round trip (hypothesis) -----------------------------------------------------

# Plain text strategies: from_regex is an order of magnitude slower to draw from.
_FIRST = "abcxyzABCXYZ_"
_segment = st.builds(
    lambda a, b: a + b,
    st.sampled_from(_FIRST),
    st.text(alphabet=_FIRST + "0189-", max_size=6),
)
_bucket = st.text(alphabet="abcXYZ0189_.-", min_size=1, max_size=6)
_names = st.builds(
    lambda segs, bucket: ".".join(segs) + (f"::{bucket}" if bucket else ""),
    st.lists(_segment, min_size=1, max_size=4),
    st.one_of(st.none(), _bucket),
)
_values = st.one_of(
    st.integers(min_value=-(2**63), max_value=2**64),
    st.floats(allow_nan=True, allow_infinity=True, width=64).filter(
        lambda v: math.isnan(v) or math.isinf(v) or abs(v) < 1e18
    ),
)
_desc = st.text(
    alphabet=st.characters(blacklist_categories=("Cc", "Cs"), blacklist_characters="\n\r"),
    max_size=24,
)
_unit = st.sampled_from(["", "Count", "Tick", "Cycle", "(Tick/Second)", "(Cycle/Count)", "Byte"])
_pct = st.one_of(st.none(), st.floats(min_value=0, max_value=100).map(lambda v: round(v, 2)))


@st.composite
def _stats(draw: st.DrawFn) -> Stat:
    desc = draw(_desc)
    unit = draw(_unit)
    # "desc (x)" with no unit reads back as a unit: gem5 always prints one.
    assume(not (unit == "" and desc.rstrip().endswith(")")))
    pdf = draw(_pct)
    cdf = draw(_pct) if pdf is not None else None
    return Stat(draw(_names), draw(_values), desc, unit, pdf, cdf)


_blocks = st.lists(
    st.lists(_stats(), max_size=8, unique_by=lambda s: s.name), min_size=0, max_size=3
)


def _same_value(parsed: float, original: float) -> bool:
    if isinstance(original, int):
        return parsed == original and isinstance(parsed, int)
    if math.isnan(original):
        return math.isnan(parsed)
    return math.isclose(parsed, original, rel_tol=1e-12, abs_tol=6e-7)


def _check_round_trip(blocks: list[list[Stat]], dumps: list[stats_txt.Dump]) -> None:
    assert len(dumps) == len(blocks)
    for block, dump in zip(blocks, dumps):
        assert not dump.partial
        assert [s.name for s in dump.stats] == [s.name for s in block]
        for orig, got in zip(block, dump.stats):
            assert _same_value(got.value, orig.value), (orig, got)
            desc = orig.desc.rstrip() if orig.unit == "" else orig.desc
            assert (got.desc.rstrip() if orig.unit == "" else got.desc) == desc
            assert got.unit == orig.unit
            assert (got.pdf_pct, got.cdf_pct) == (orig.pdf_pct, orig.cdf_pct)


@settings(max_examples=200, deadline=None)
@given(_blocks)
def test_round_trip_through_the_text(blocks: list[list[Stat]]) -> None:
    text = format_stats_txt(blocks)
    dumps = parse_stats_text(text, "mem")
    _check_round_trip(blocks, dumps)
    # the parsed file writes back to exactly the same text
    assert format_stats_txt([d.stats for d in dumps]) == text


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_blocks)
def test_round_trip_through_a_file(blocks: list[list[Stat]]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "stats.txt"
        write_stats_txt(path, blocks)
        _check_round_trip(blocks, parse_stats_txt(path))
        assert os.listdir(tmp) == ["stats.txt"]


# --- malformed input ----------------------------------------------------------------

B, E = BEGIN_BANNER, END_BANNER
GOOD = "simTicks                                      4080915                       # t (Tick)"


@pytest.mark.parametrize(
    ("text", "line", "expected"),
    [
        (f"\n{B}\nsimTicks   12x4   # t (Tick)\n\n{E}\n", 3, "expected a number"),
        (f"\n{B}\nsimTicks   --   # t (Tick)\n\n{E}\n", 3, "expected a number"),
        (f"\n{B}\n{GOOD}\nsimInsts\n\n{E}\n", 4, "expected 'name value"),
        (f"\n{B}\n{GOOD}\nsimInsts  5  oops\n\n{E}\n", 4, "expected '# description'"),
        (f"\n{B}\n{GOOD}\nx  5  12.x%  13%  # d\n\n{E}\n", 4, "percentage in the pdf column"),
        (f"\nhello world\n{B}\n{GOOD}\n\n{E}\n", 2, "expected the banner"),
        (f"\n{B}\n{GOOD}\n\n{E}\ngarbage after\n", 6, "expected the banner"),
        (f"\n{B}\n{GOOD}\n\n{B}\n{GOOD}\n\n{E}\n", 5, "expected a stat line or the banner"),
        (f"\n{B}\n{GOOD}\n{GOOD}\n\n{E}\n", 4, "expected each stat once per block"),
        (f"\n{B}\n{GOOD}\n\n{E}\n\n{B}\n{GOOD}\n", 7, "expected '---------- End"),
        (f"\n{B}\n", 2, "truncated"),
        (f"\n{E}\n", 2, "expected the banner"),
    ],
)
def test_malformed_input_names_file_and_line(
    tmp_path: Path, text: str, line: int, expected: str
) -> None:
    path = tmp_path / "stats.txt"
    path.write_text(text)
    with pytest.raises(StatsFormatError) as info:
        parse_stats_txt(path)
    message = str(info.value)
    assert message.startswith(f"{path}:{line}: expected")
    assert expected in message
    assert "\n" not in message
    assert isinstance(info.value, UsageError)


def test_non_utf8_bytes_are_reported_with_their_line(tmp_path: Path) -> None:
    path = tmp_path / "stats.txt"
    path.write_bytes(f"\n{B}\n{GOOD}\n".encode() + b"bad\xff 1\n" + f"\n{E}\n".encode())
    with pytest.raises(
        StatsFormatError, match=rf"^{path}:4: expected UTF-8 text, got the byte 0xff"
    ):
        parse_stats_txt(path)


def test_missing_file_is_a_usage_error(tmp_path: Path) -> None:
    with pytest.raises(StatsFormatError, match="no such file"):
        parse_stats_txt(tmp_path / "nope.txt")


def test_empty_file_has_no_dumps(tmp_path: Path) -> None:
    path = tmp_path / "stats.txt"
    path.write_text("")
    assert parse_stats_txt(path) == []


# --- truncated last block -------------------------------------------------------------


def _truncate_fixture(fixture_run: Path, keep_line: int, cut_mid_line: bool) -> Path:
    lines = (fixture_run / "stats.txt").read_text().split("\n")
    head = "\n".join(lines[:keep_line]) + "\n"
    if cut_mid_line:
        head += lines[keep_line][:52]  # inside the value column
    path = fixture_run / "stats.txt"
    path.write_text(head)
    return path


def test_truncated_last_block_is_an_error_naming_its_begin_line(fixture_run: Path) -> None:
    path = _truncate_fixture(fixture_run, 700, cut_mid_line=True)
    with pytest.raises(StatsFormatError) as info:
        parse_stats_txt(path)
    assert str(info.value).startswith(f"{path}:684: expected '---------- End")
    assert "got end of file after line 701" in str(info.value)


def test_truncated_block_with_allow_partial_is_flagged_and_cut_line_dropped(
    fixture_run: Path,
) -> None:
    original = (fixture_run / "stats.txt").read_text().split("\n")
    cut_name = original[700].split()[0]
    kept_name = original[699].split()[0]
    path = _truncate_fixture(fixture_run, 700, cut_mid_line=True)
    dumps = parse_stats_txt(path, allow_partial=True)
    assert [d.partial for d in dumps] == [False, True]
    assert dumps[1].end_line is None and dumps[1].begin_line == 684
    assert kept_name in dumps[1]
    assert cut_name not in dumps[1]  # its value may have been cut short
    assert len(dumps[1]) == 700 - 684


def test_truncated_block_ending_on_a_full_line_keeps_that_line(fixture_run: Path) -> None:
    full = parse_stats_txt(fixture_run / "stats.txt")[1]
    last_kept = (fixture_run / "stats.txt").read_text().split("\n")[699].split()[0]
    path = _truncate_fixture(fixture_run, 700, cut_mid_line=False)
    partial = parse_stats_txt(path, allow_partial=True)[1]
    # repr, because nan != nan
    assert [repr(s) for s in partial.stats] == [repr(s) for s in full.stats[: len(partial.stats)]]
    assert partial.stats[-1].name == last_kept


def test_rubys_one_line_histograms_parse_and_write_back() -> None:
    """Ruby prints a histogram on one line of bars ("name | count pdf cdf | ..."): the
    parser keeps it verbatim (value: the buckets' total, which gem5 also prints as
    ::total), so a Ruby run's stats.txt is read, not refused, and writes back byte for
    byte."""
    from pathlib import Path

    from percpu.analysis.stats_txt import format_stats_txt, parse_stats_txt

    path = Path(__file__).resolve().parents[1] / "fixtures" / "gem5-v24-fs-ruby-ctxmix" / "stats.txt"
    dumps = parse_stats_txt(path)
    assert len(dumps) == 1 and not dumps[0].partial
    d = dumps[0]
    name = "board.cache_hierarchy.ruby_system.delayHistogram"
    assert d[name] == d[f"{name}::total"] == d[f"{name}::samples"] > 0
    assert d["simTicks"] == 1889960481
    assert format_stats_txt([x.stats for x in dumps]) == path.read_text()
