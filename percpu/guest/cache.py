"""The guest cache: where builds live, what they were built from, and which one the
gem5 config boots.

Layout of the cache directory (default ~/.cache/percpu/guest, or $PERCPU_GUEST_DIR):
    <key>/            one complete build per content hash of its inputs:
                      vmlinux, bzImage, .config, build.log, manifest.json
    .partial-<key>/   a build in progress or one that failed (its build.log stays)
    src/              linux-source tarballs extracted once, one directory per version
    work/<kkey>/      the kernel's object tree (make O=) per kernel config, reused so
                      that a change of /init or a guest program only relinks
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from percpu.errors import UsageError

# Bump when the build steps change what a build produces from the same inputs.
RECIPE = 1
# The kernels a guest can have: Linux 6.1 as Debian ships it, or with percpu's series
# (src_patches/linux-6.1/: per-(cpu, asid) roots, docs/kernel.md).
STOCK, PERCPU = "stock", "percpu"
KERNELS = (STOCK, PERCPU)
# The percpu kernel's options on top of workloads/guest/kernel/percpu.config.
ROOTS_FRAGMENT = "kernel/percpu-roots.config"
SERIES_DIR = "linux-6.1"
MANIFEST = "manifest.json"
KEY_RE = re.compile(r"^[0-9a-f]{16}$")
VERSIONED_PACKAGES = ("linux-source-6.1", "busybox-static", "gcc")
NOT_BUILT = "no guest built: run 'percpu guest build'"
# What the gem5 config should pass (lpj skips the delay-loop calibration, which costs
# gem5 minutes; rdinit because there is no disk root). The QEMU check adds its own.
KERNEL_ARGS = "earlyprintk=ttyS0 console=ttyS0 lpj=7999923 rdinit=/init"
# no_timer_check: on a loaded host TCG can miss the IO-APIC timer check and panic.
QEMU_KERNEL_ARGS = "console=ttyS0 lpj=7999923 no_timer_check rdinit=/init percpu.host=qemu"


def cache_dir(override: str | os.PathLike[str] | None = None) -> Path:
    """--cache-dir, else $PERCPU_GUEST_DIR, else ~/.cache/percpu/guest ($XDG_CACHE_HOME)."""
    if override:
        return Path(override).expanduser().resolve()
    env = os.environ.get("PERCPU_GUEST_DIR")
    if env:
        return Path(env).expanduser().resolve()
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base).expanduser().resolve() / "percpu" / "guest"


def guest_sources_dir() -> Path:
    """workloads/guest/ of the checkout, or the installed copy."""
    from percpu.workloads.definition import workloads_dir

    return workloads_dir() / "guest"


def linux_series_dir() -> Path:
    """src_patches/linux-6.1/ of the checkout, or the installed copy."""
    here = Path(__file__).resolve()
    for candidate in (here.parents[2] / "src_patches" / SERIES_DIR,
                      here.parents[1] / "_src_patches" / SERIES_DIR):
        if candidate.is_dir():
            return candidate
    raise UsageError("the kernel series src_patches/linux-6.1/ is missing: "
                     "reinstall percpu with 'pip install .'")


def series_patches(series: Path | None = None) -> list[Path]:
    """The series' patches in order (the cover letter, 0000-*, is not one)."""
    series = series or linux_series_dir()
    patches = sorted(p for p in series.glob("*.patch") if not p.name.startswith("0000-"))
    if not patches:
        raise UsageError(f"{series} holds no patches: restore src_patches/linux-6.1/")
    return patches


def extracted_source(cache: Path) -> Path | None:
    """Debian's linux-source-6.1 as a build extracted it into cache/src/ (the plain tree,
    not a percpu-patched copy), or None."""
    for tree in sorted((cache / "src").glob("linux-source-6.1_*/linux-source-6.1")):
        if "+percpu" not in tree.parent.name and (tree / "Makefile").is_file():
            return tree
    return None


def check_kernel(kernel: str) -> str:
    if kernel not in KERNELS:
        raise UsageError(f"unknown guest kernel {kernel!r}: choose one of {', '.join(KERNELS)}")
    return kernel


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def input_files(guest: Path) -> dict[str, Path]:
    """Every repository file a build reads, by path relative to workloads/guest/."""
    files: dict[str, Path] = {}
    fragment = guest / "kernel" / "percpu.config"
    init = guest / "init.sh"
    for required in (fragment, init, guest / "Makefile"):
        if not required.is_file():
            raise UsageError(f"guest sources incomplete: {required} is missing "
                             "(reinstall percpu with 'pip install .')")
    # The guest programs' and the calibration programs' (calib/, in /sbin too) sources.
    programs = [p for d in (guest, guest / "calib")
                for p in (*sorted(d.glob("Makefile")), *sorted(d.glob("*.c")),
                          *sorted(d.glob("*.h")))]
    for path in [fragment, init, *programs]:
        files[path.relative_to(guest).as_posix()] = path
    kmod = guest / "kmod"
    for path in sorted(kmod.glob("*")):
        generated = path.name.endswith(".mod.c")  # kbuild output, should it be built here
        if path.is_file() and not generated and (path.suffix in (".c", ".h")
                                                 or path.name in ("Kbuild", "Makefile")):
            files[path.relative_to(guest).as_posix()] = path
    return files


@dataclass(frozen=True)
class Inputs:
    """Content hashes of the repository inputs and versions of the Debian inputs."""

    files: dict[str, str]
    packages: dict[str, str | None]
    recipe: int = RECIPE
    kernel: str = STOCK
    # The percpu kernel's series: patch name -> sha256 (empty for the stock kernel).
    patches: dict[str, str] = field(default_factory=dict)

    def _flavour(self) -> dict[str, Any]:
        """What the percpu kernel adds to a key (nothing for the stock kernel, whose
        keys stay what they were before there were two kernels)."""
        if self.kernel == STOCK:
            return {}
        return {"kernel": self.kernel, "patches": self.patches}

    def _digest(self, payload: dict[str, Any]) -> str:
        text = json.dumps(payload, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    @property
    def complete(self) -> bool:
        return all(v is not None for v in self.packages.values())

    def key(self) -> str:
        """The cache entry's name: every input."""
        return self._digest({"files": self.files, "packages": self.packages,
                             "recipe": self.recipe, **self._flavour()})

    def kernel_key(self) -> str:
        """The kernel object tree's name: only what the kernel's .config and objects
        depend on (the fragment, the kernel source and the compiler)."""
        flavour = self._flavour()
        if flavour:
            flavour["roots_fragment"] = self.files.get(ROOTS_FRAGMENT)
        return self._digest({"fragment": self.files.get("kernel/percpu.config"),
                             "linux": self.packages.get("linux-source-6.1"),
                             "gcc": self.packages.get("gcc"), "recipe": self.recipe,
                             **flavour})

    def to_json(self) -> dict[str, Any]:
        return {"files": dict(self.files), "packages": dict(self.packages),
                "recipe": self.recipe, **self._flavour()}


def current_inputs(guest: Path | None = None,
                   packages: dict[str, str | None] | None = None,
                   kernel: str = STOCK, series: Path | None = None) -> Inputs:
    """The inputs a build of `kernel` would use now (package versions from dpkg-query)."""
    from percpu.guest.packages import installed_versions

    check_kernel(kernel)
    guest = guest or guest_sources_dir()
    files = {rel: _sha256(path) for rel, path in input_files(guest).items()}
    patches: dict[str, str] = {}
    if kernel == PERCPU:
        roots = guest / ROOTS_FRAGMENT
        if not roots.is_file():
            raise UsageError(f"guest sources incomplete: {roots} is missing "
                             "(reinstall percpu with 'pip install .')")
        files[ROOTS_FRAGMENT] = _sha256(roots)
        patches = {p.name: _sha256(p) for p in series_patches(series)}
    if packages is None:
        try:
            packages = dict(installed_versions(list(VERSIONED_PACKAGES)))
        except UsageError:
            packages = {p: None for p in VERSIONED_PACKAGES}
    return Inputs(files=files, packages=packages, kernel=kernel, patches=patches)


@dataclass(frozen=True)
class GuestBuild:
    """One complete cache entry."""

    path: Path
    manifest: dict[str, Any] = field(repr=False)

    @property
    def vmlinux(self) -> Path:
        return self.path / "vmlinux"

    @property
    def bzimage(self) -> Path:
        return self.path / "bzImage"

    @property
    def kernel_args(self) -> str:
        return str(self.manifest.get("kernel_args", KERNEL_ARGS))


def load_entry(path: Path) -> GuestBuild | None:
    """The build at path if it is complete (named by a key, manifest and kernels present)."""
    if not KEY_RE.match(path.name):
        return None
    try:
        manifest = json.loads((path / MANIFEST).read_text())
    except (OSError, ValueError):
        return None
    if manifest.get("key") != path.name:
        return None
    if not (path / "vmlinux").is_file() or not (path / "bzImage").is_file():
        return None
    return GuestBuild(path=path, manifest=manifest)


def entries(cache: Path) -> list[GuestBuild]:
    """Every complete build in the cache, newest first."""
    if not cache.is_dir():
        return []
    found = [b for b in (load_entry(p) for p in cache.iterdir() if p.is_dir()) if b]
    return sorted(found, key=lambda b: str(b.manifest.get("created", "")), reverse=True)


def find_build(inputs: Inputs, cache: Path) -> GuestBuild | None:
    """The newest complete build matching the inputs. When a Debian input's version is
    unknown (its package was removed since), the build with the same repository inputs
    and the same known versions matches."""
    if inputs.complete:
        return load_entry(cache / inputs.key())
    for build in entries(cache):
        recorded = build.manifest.get("inputs", {})
        if recorded.get("files") != inputs.files or recorded.get("recipe") != inputs.recipe:
            continue
        if (recorded.get("kernel", STOCK) != inputs.kernel
                or recorded.get("patches", {}) != inputs.patches):
            continue
        versions = recorded.get("packages", {})
        if all(v is None or versions.get(p) == v for p, v in inputs.packages.items()):
            return build
    return None


def default_build(cache: str | os.PathLike[str] | None = None,
                  kernel: str = STOCK) -> GuestBuild:
    """The build of `kernel` the gem5 config boots, or UsageError telling how to make
    one."""
    where = cache_dir(cache)
    build = find_build(current_inputs(kernel=kernel), where)
    if build is None:
        others = entries(where)
        hint = (f" (the {len(others)} build(s) in {where} are from other inputs)" if others
                else f" (cache: {where})")
        message = NOT_BUILT + hint
        if kernel != STOCK:
            message = message.replace("'percpu guest build'",
                                      f"'percpu guest build --kernel {kernel}'")
        raise UsageError(message)
    return build


def default_kernel(cache: str | os.PathLike[str] | None = None, kernel: str = STOCK) -> Path:
    """vmlinux of the newest complete build of `kernel` matching the current inputs."""
    return default_build(cache, kernel).vmlinux


def default_manifest(cache: str | os.PathLike[str] | None = None,
                     kernel: str = STOCK) -> dict[str, Any]:
    """manifest.json of that build (inputs, versions, sizes, date, kernel_args, ...)."""
    return default_build(cache, kernel).manifest
