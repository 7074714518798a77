"""The cache: keys follow the inputs, default_kernel() finds complete builds only."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from percpu.errors import UsageError
from percpu.guest import cache as gcache
from tests.guest.helpers import PACKAGES


def _inputs(guest: Path, **versions: str) -> gcache.Inputs:
    return gcache.current_inputs(guest, packages={**PACKAGES, **versions})


@pytest.mark.parametrize("rel", ["kernel/percpu.config", "init.sh", "ctxmix.c", "common.h",
                                 "Makefile", "kmod/pcid_selftest.c", "kmod/Kbuild",
                                 "calib/calib_sched.c", "calib/calib.h", "calib/Makefile"])
def test_key_changes_with_every_repository_input(guest_copy: Path, rel: str) -> None:
    before = _inputs(guest_copy)
    path = guest_copy / rel
    path.write_text(path.read_text() + "\n# changed\n")
    after = _inputs(guest_copy)
    assert after.key() != before.key()
    assert after.files[rel] != before.files[rel]
    # Only the fragment changes the kernel tree; /init, programs and the module relink.
    assert (after.kernel_key() != before.kernel_key()) == (rel == "kernel/percpu.config")


@pytest.mark.parametrize("package", sorted(PACKAGES))
def test_key_changes_with_every_package_version(guest_copy: Path, package: str) -> None:
    before = _inputs(guest_copy)
    after = _inputs(guest_copy, **{package: "9:9.9-9"})
    assert after.key() != before.key()
    assert (after.kernel_key() != before.kernel_key()) == (package != "busybox-static")


def test_key_ignores_build_outputs_and_is_stable(guest_copy: Path) -> None:
    before = _inputs(guest_copy)
    (guest_copy / "build").mkdir()
    (guest_copy / "build" / "ctxmix").write_text("binary")
    (guest_copy / "kmod" / "pcid_selftest.ko").write_text("module")
    (guest_copy / "kmod" / "pcid_selftest.mod.c").write_text("generated")
    assert _inputs(guest_copy).key() == before.key()
    assert len(before.key()) == 16


def test_input_files_cover_every_source(guest_copy: Path) -> None:
    files = gcache.input_files(guest_copy)
    for c_file in guest_copy.glob("*.c"):
        assert c_file.name in files
    for c_file in (guest_copy / "calib").glob("*.c"):
        assert f"calib/{c_file.name}" in files
    assert {"kernel/percpu.config", "init.sh", "Makefile", "kmod/pcid_selftest.c",
            "kmod/Kbuild"} <= set(files)


def _fake_entry(cache: Path, inputs: gcache.Inputs, created: str, *, key: str | None = None,
                name: str | None = None, vmlinux: bool = True) -> Path:
    key = key or inputs.key()
    entry = cache / (name or key)
    entry.mkdir(parents=True)
    if vmlinux:
        (entry / "vmlinux").write_bytes(b"\x7fELF")
    (entry / "bzImage").write_bytes(b"MZ")
    (entry / "manifest.json").write_text(json.dumps(
        {"key": key, "created": created, "inputs": inputs.to_json(),
         "kernel_args": gcache.KERNEL_ARGS}))
    return entry


def test_default_kernel_without_a_build_says_how_to_make_one(cache: Path) -> None:
    with pytest.raises(UsageError, match=r"^no guest built: run 'percpu guest build'"):
        gcache.default_kernel()


def test_default_kernel_finds_the_build_of_the_current_inputs(
        cache: Path, monkeypatch: pytest.MonkeyPatch, guest_copy: Path) -> None:
    monkeypatch.setattr(gcache, "guest_sources_dir", lambda: guest_copy)
    monkeypatch.setattr("percpu.guest.packages.installed_versions",
                        lambda pkgs: {p: PACKAGES[p] for p in pkgs})
    inputs = _inputs(guest_copy)
    # A half-written build and one of other inputs do not count.
    _fake_entry(cache, inputs, "2026-01-02T00:00:00+00:00", name=f".partial-{inputs.key()}")
    other = _inputs(guest_copy, **{"busybox-static": "2:0"})
    _fake_entry(cache, other, "2026-01-03T00:00:00+00:00")
    with pytest.raises(UsageError, match="build.s. in .* are from other inputs"):
        gcache.default_kernel()
    entry = _fake_entry(cache, inputs, "2026-01-01T00:00:00+00:00")
    assert gcache.default_kernel() == entry / "vmlinux"
    assert gcache.default_manifest()["kernel_args"] == gcache.KERNEL_ARGS
    # An explicit cache dir wins over the environment.
    with pytest.raises(UsageError, match="no guest built"):
        gcache.default_kernel(cache.parent / "elsewhere")


def test_an_entry_missing_its_kernel_is_not_complete(cache: Path, guest_copy: Path) -> None:
    inputs = _inputs(guest_copy)
    entry = _fake_entry(cache, inputs, "2026-01-01T00:00:00+00:00", vmlinux=False)
    assert gcache.load_entry(entry) is None
    assert gcache.find_build(inputs, cache) is None


def test_unknown_package_version_matches_newest_build_of_the_same_sources(
        cache: Path, guest_copy: Path) -> None:
    inputs = _inputs(guest_copy)
    older = _fake_entry(cache, inputs, "2026-01-01T00:00:00+00:00")
    newer_inputs = _inputs(guest_copy, **{"linux-source-6.1": "6.1.200-1"})
    newer = _fake_entry(cache, newer_inputs, "2026-02-01T00:00:00+00:00")
    unknown = gcache.current_inputs(guest_copy, packages={**PACKAGES, "linux-source-6.1": None})
    assert gcache.find_build(unknown, cache).path == newer
    known_old = gcache.current_inputs(guest_copy, packages=PACKAGES)
    assert gcache.find_build(known_old, cache).path == older


def test_cache_dir_precedence(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("PERCPU_GUEST_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert gcache.cache_dir() == tmp_path / "xdg" / "percpu" / "guest"
    monkeypatch.setenv("PERCPU_GUEST_DIR", str(tmp_path / "env"))
    assert gcache.cache_dir() == tmp_path / "env"
    assert gcache.cache_dir(tmp_path / "opt") == tmp_path / "opt"


def test_prune_keeps_the_current_build_and_busy_trees(
        cache: Path, monkeypatch: pytest.MonkeyPatch, guest_copy: Path) -> None:
    import fcntl

    from percpu.guest.build import prune

    monkeypatch.setattr(gcache, "guest_sources_dir", lambda: guest_copy)
    monkeypatch.setattr("percpu.guest.packages.installed_versions",
                        lambda pkgs: {p: PACKAGES[p] for p in pkgs})
    inputs = _inputs(guest_copy)
    current = _fake_entry(cache, inputs, "2026-01-02T00:00:00+00:00")
    other = _fake_entry(cache, _inputs(guest_copy, gcc="1:1"), "2026-01-01T00:00:00+00:00")
    failed = cache / ".partial-0123456789abcdef"
    failed.mkdir()
    (failed / "build.log").write_text("percpu guest build x (kernel tree aaaaaaaaaaaaaaaa), ...\n")
    running = cache / ".partial-fedcba9876543210"
    running.mkdir()
    (running / "build.log").write_text("percpu guest build y (kernel tree bbbbbbbbbbbbbbbb), ...\n")
    work = cache / "work"
    for tree in (inputs.kernel_key(), "aaaaaaaaaaaaaaaa", "bbbbbbbbbbbbbbbb"):
        (work / tree / "obj").mkdir(parents=True)
        (work / f"{tree}.lock").write_text("")
    (cache / "src").mkdir()
    with open(work / "bbbbbbbbbbbbbbbb.lock") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        removed = prune(cache)
    assert set(removed) == {other, failed, work / "aaaaaaaaaaaaaaaa"}
    assert current.is_dir() and running.is_dir() and (cache / "src").is_dir()
    assert (work / inputs.kernel_key()).is_dir() and (work / "bbbbbbbbbbbbbbbb").is_dir()
    assert gcache.default_kernel() == current / "vmlinux"
    assert set(prune(cache, everything=True)) >= {current, cache / "src"}
    assert gcache.entries(cache) == []


def _series(tmp_path: Path) -> Path:
    """A copy of src_patches/linux-6.1/ to edit."""
    import shutil

    dest = tmp_path / "series"
    shutil.copytree(gcache.linux_series_dir(), dest)
    return dest


def test_percpu_kernel_keys_follow_the_series_and_its_fragment(guest_copy: Path,
                                                               tmp_path: Path) -> None:
    series = _series(tmp_path)
    stock = _inputs(guest_copy)
    percpu = gcache.current_inputs(guest_copy, packages=PACKAGES, kernel="percpu", series=series)
    # Two kernels, two builds and two kernel trees; the stock key is what it always was.
    assert percpu.key() != stock.key() and percpu.kernel_key() != stock.kernel_key()
    assert stock.to_json().keys() == {"files", "packages", "recipe"}
    assert sorted(percpu.patches) == [p.name for p in gcache.series_patches(series)]
    assert percpu.files[gcache.ROOTS_FRAGMENT]
    # Editing a patch or the roots fragment rebuilds the percpu kernel, not the stock one.
    patch = gcache.series_patches(series)[-1]
    patch.write_text(patch.read_text() + "\n")
    edited = gcache.current_inputs(guest_copy, packages=PACKAGES, kernel="percpu",
                                   series=series)
    assert edited.kernel_key() != percpu.kernel_key() and edited.key() != percpu.key()
    fragment = guest_copy / gcache.ROOTS_FRAGMENT
    fragment.write_text(fragment.read_text() + "# changed\n")
    refragged = gcache.current_inputs(guest_copy, packages=PACKAGES, kernel="percpu",
                                      series=series)
    assert refragged.kernel_key() != edited.kernel_key()
    assert _inputs(guest_copy).key() == stock.key()
    # The cover letter is not a patch of the series.
    (series / "0000-cover-letter.patch").write_text("changed")
    assert gcache.current_inputs(guest_copy, packages=PACKAGES, kernel="percpu",
                                 series=series).key() == refragged.key()


def test_the_percpu_kernel_is_found_apart_from_the_stock_one(cache: Path) -> None:
    with pytest.raises(UsageError,
                       match=r"^no guest built: run 'percpu guest build --kernel percpu'"):
        gcache.default_kernel(kernel="percpu")
    stock = gcache.current_inputs()
    _fake_entry(cache, stock, "2026-01-01T00:00:00+00:00")
    with pytest.raises(UsageError, match="--kernel percpu"):
        gcache.default_kernel(kernel="percpu")
    percpu = gcache.current_inputs(kernel="percpu")
    entry = _fake_entry(cache, percpu, "2026-01-02T00:00:00+00:00")
    assert gcache.default_kernel(kernel="percpu") == entry / "vmlinux"
    assert gcache.default_kernel() != entry / "vmlinux"
    with pytest.raises(UsageError, match=r"^unknown guest kernel 'mine': choose one of "
                                         r"stock, percpu"):
        gcache.default_kernel(kernel="mine")


def test_an_empty_series_is_bad_input(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "0000-cover-letter.patch").write_text("only a cover letter")
    with pytest.raises(UsageError, match="holds no patches"):
        gcache.series_patches(empty)


def test_gem5_runs_name_a_guest_build_or_a_vmlinux(cache: Path) -> None:
    """percpu gem5 run --kernel percpu boots the percpu guest; a path is a path."""
    from percpu.run_request import GUEST_KERNELS
    from percpu.run_request import guest_kernel as _kernel

    assert GUEST_KERNELS == gcache.KERNELS
    stock = _fake_entry(cache, gcache.current_inputs(), "2026-01-01T00:00:00+00:00")
    percpu = _fake_entry(cache, gcache.current_inputs(kernel="percpu"),
                         "2026-01-02T00:00:00+00:00")
    assert _kernel(None) == _kernel("stock") == stock / "vmlinux"
    assert _kernel("percpu") == percpu / "vmlinux"
    assert _kernel("/x/vmlinux") == Path("/x/vmlinux")
