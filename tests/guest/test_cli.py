"""`percpu guest ...` through the real entry point: bad input is one line and exit 2."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from percpu.guest.packages import BUILD_PACKAGES

MISSING = ("linux-source-6.1", "busybox-static")


def _fake_dpkg_query(bin_dir: Path, missing: tuple[str, ...]) -> None:
    """A dpkg-query that knows every package except `missing` (as dpkg-query -W does:
    known packages on stdout, an error line per unknown one, exit 1)."""
    bin_dir.mkdir()
    script = bin_dir / "dpkg-query"
    script.write_text(
        "#!/bin/sh\n"
        "shift 3  # -W -f FORMAT\n"
        "rc=0\n"
        "for p in \"$@\"; do\n"
        "  case \" " + " ".join(missing) + " \" in\n"
        "    *\" $p \"*) echo \"dpkg-query: no packages found matching $p\" >&2; rc=1;;\n"
        "    *) printf '%s\\tii \\t1.0-1\\n' \"$p\";;\n"
        "  esac\n"
        "done\n"
        "exit $rc\n")
    script.chmod(0o755)


def _percpu(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "percpu", *args], capture_output=True,
                          text=True, env=env, timeout=60, check=False)


def test_missing_packages_one_line_exit_2(tmp_path: Path) -> None:
    _fake_dpkg_query(tmp_path / "bin", MISSING)
    env = {**os.environ, "PATH": f"{tmp_path / 'bin'}:{os.environ['PATH']}"}
    cache = tmp_path / "cache"
    proc = _percpu(["guest", "build", "--cache-dir", str(cache)], env)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0] == ("percpu: error: percpu guest build needs the Debian package(s) "
                        "linux-source-6.1, busybox-static: "
                        "apt-get install linux-source-6.1 busybox-static")
    # Nothing half-written: the cache was not even created.
    assert not cache.exists()


def test_every_build_package_is_checked(tmp_path: Path) -> None:
    _fake_dpkg_query(tmp_path / "bin", tuple(BUILD_PACKAGES))
    env = {**os.environ, "PATH": f"{tmp_path / 'bin'}:{os.environ['PATH']}"}
    proc = _percpu(["guest", "build", "--cache-dir", str(tmp_path / "c")], env)
    assert proc.returncode == 2
    assert proc.stderr.strip().endswith("apt-get install " + " ".join(BUILD_PACKAGES))
    for needed in ("gcc", "make", "bc", "flex", "bison", "libelf-dev", "cpio", "xz-utils"):
        assert needed in BUILD_PACKAGES


@pytest.mark.parametrize("command", ["path", "check"])
def test_no_build_yet_one_line_exit_2(tmp_path: Path, command: str) -> None:
    env = {**os.environ, "PERCPU_GUEST_DIR": str(tmp_path / "empty")}
    proc = _percpu(["guest", command], env)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("percpu: error: no guest built: run 'percpu guest build'")


def test_cache_inside_the_repository_is_refused(tmp_path: Path) -> None:
    repo = Path(__file__).resolve().parents[2]
    if not (repo / ".git").exists():
        pytest.skip("not a git checkout")
    inside = repo / "build" / "guest-cache-test"
    proc = _percpu(["guest", "build", "--cache-dir", str(inside)], dict(os.environ))
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        (f"percpu: error: cache directory {inside} is inside the repository {repo}: "
        "use --cache-dir (or PERCPU_GUEST_DIR) outside it")]
    assert not inside.exists()


def test_malformed_fragment_is_bad_input_and_writes_nothing(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from percpu.errors import UsageError
    from percpu.guest.build import Builder
    from tests.guest.helpers import GUEST

    guest = tmp_path / "guest"
    shutil.copytree(GUEST, guest, ignore=shutil.ignore_patterns("build"))
    fragment = guest / "kernel" / "percpu.config"
    fragment.write_text(fragment.read_text() + "# CONFIG_SMP is not here\n")
    _fake_dpkg_query(tmp_path / "bin", ())
    cache = tmp_path / "cache"
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}:{os.environ['PATH']}")
    with pytest.raises(UsageError, match=r"percpu.config:\d+: not an option or a plain"):
        Builder(cache, echo=lambda s: None, guest=guest).run()
    assert not cache.exists()


def test_percpu_kernel_commands_without_a_build_say_how_to_make_one(tmp_path: Path) -> None:
    env = {**os.environ, "PERCPU_GUEST_DIR": str(tmp_path / "cache")}
    for args in (["guest", "path", "--kernel", "percpu"],
                 ["guest", "check", "--kernel", "percpu"], ["guest", "kselftest"]):
        proc = _percpu(args, env)
        assert proc.returncode == 2, (args, proc.stderr)
        lines = proc.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("percpu: error: no guest built: run "
                                                       "'percpu guest build"), proc.stderr
    assert "--kernel percpu" in _percpu(["guest", "path", "--kernel", "percpu"], env).stderr
    assert not (tmp_path / "cache").exists()


def test_an_unknown_kernel_is_refused_by_name(tmp_path: Path) -> None:
    proc = _percpu(["guest", "build", "--kernel", "mine", "--cache-dir", str(tmp_path / "c")],
                   dict(os.environ))
    assert proc.returncode == 2
    assert "'mine' is not one of 'stock', 'percpu'" in proc.stderr
    assert not (tmp_path / "c").exists()


def test_the_percpu_build_needs_patch(tmp_path: Path) -> None:
    _fake_dpkg_query(tmp_path / "bin", ("patch",))
    env = {**os.environ, "PATH": f"{tmp_path / 'bin'}:{os.environ['PATH']}"}
    proc = _percpu(["guest", "build", "--kernel", "percpu", "--cache-dir",
                    str(tmp_path / "c")], env)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.strip() == ("percpu: error: percpu guest build needs the Debian "
                                   "package(s) patch: apt-get install patch")
    # The stock kernel does not.
    proc = _percpu(["guest", "build", "--cache-dir", str(tmp_path / "c2"), "--help"], env)
    assert proc.returncode == 0
