"""`percpu guest build`: the guest kernel and its built-in initramfs, step by step.

Steps (one progress line each, their output in the entry's build.log):
  1. check the Debian packages (dpkg-query) and compute the inputs' key
  2. extract /usr/src/linux-source-6.1.tar.xz into the cache (once per version)
  3. configure: make tinyconfig, merge workloads/guest/kernel/percpu.config with
     scripts/kconfig/merge_config.sh, make olddefconfig, verify every fragment option
  4. build the guest programs (make -C workloads/guest and workloads/guest/calib, static)
  5. build the kernel objects (only the first time for a kernel config: vmlinux and
     Module.symvers, which the self-test module links against)
  6. build the self-test module (workloads/guest/kmod) against that tree
  7. write the initramfs list and link vmlinux and bzImage with it
  8. install: vmlinux, bzImage, .config, build.log, manifest.json renamed into place
A build is written to .partial-<key>/ and renamed to <key>/ when complete.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import fcntl
import hashlib
import json
import os
import platform
import re
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from percpu.errors import UsageError
from percpu.guest import cache as gcache
from percpu.guest import kconfig
from percpu.guest.initramfs import Initramfs
from percpu.guest.packages import (
    BUILD_PACKAGES,
    BUSYBOX_PATH,
    LINUX_SOURCE,
    LINUX_TARBALL,
    PATCH_PACKAGES,
    require,
)

STEPS = 8
TAIL_LINES = 25
SELFTEST_MODULE = "pcid_selftest.ko"
CALIB_DIR = "calib"  # workloads/guest/calib: the calibration microbenchmarks
# Reproducible uname -v / build strings (no host name or date baked into the kernel).
KBUILD_ENV = {"KBUILD_BUILD_USER": "percpu", "KBUILD_BUILD_HOST": "percpu-guest",
              "KBUILD_BUILD_TIMESTAMP": "percpu guest", "LC_ALL": "C"}


class BuildError(Exception):
    """A build step failed (not bad input): the CLI prints it and exits 1."""


@dataclass
class BuildResult:
    build: gcache.GuestBuild
    reused: bool
    seconds: float
    steps: dict[str, float] = field(default_factory=dict)


def programs_of(guest: Path) -> list[str]:
    """The guest programs the Makefile builds (its PROGS line), m5 included when listed."""
    text = (guest / "Makefile").read_text()
    match = re.search(r"^PROGS\s*[:+]?=\s*(.*)$", text, re.MULTILINE)
    if not match:
        raise BuildError(f"{guest / 'Makefile'} has no PROGS line")
    return match.group(1).split()


def _outside_checkout(cache: Path, guest: Path) -> None:
    """Builds never land in the repository (they are never committed)."""
    for root in guest.resolve().parents:
        if (root / ".git").exists():
            if cache.resolve().is_relative_to(root):
                raise UsageError(f"cache directory {cache} is inside the repository {root}: "
                                 "use --cache-dir (or PERCPU_GUEST_DIR) outside it")
            return


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _file_info(path: Path) -> dict[str, Any]:
    return {"size": path.stat().st_size, "sha256": hashlib.sha256(path.read_bytes()).hexdigest()}


class Builder:
    """One `percpu guest build` run."""

    def __init__(self, cache: Path, jobs: int = 2, echo: Callable[[str], None] = print,
                 guest: Path | None = None, force: bool = False,
                 kernel: str = gcache.STOCK, series: Path | None = None) -> None:
        self.cache = cache
        self.kernel = gcache.check_kernel(kernel)
        self.series = series
        self.jobs = max(1, jobs)
        self.echo = echo
        self.guest = guest or gcache.guest_sources_dir()
        self.force = force
        self.log: Path | None = None
        self.step_no = 0
        self.step_seconds: dict[str, float] = {}

    # --- plumbing -------------------------------------------------------------
    def _step(self, text: str) -> float:
        self.step_no += 1
        line = f"[{self.step_no}/{STEPS}] {text}"
        self.echo(line)
        self._log(f"\n==== {line}\n")
        return time.monotonic()

    def _log(self, text: str) -> None:
        if self.log is not None:
            with open(self.log, "a") as handle:
                handle.write(text)

    def _run(self, argv: list[str], cwd: Path | None = None, what: str | None = None,
             env: dict[str, str] | None = None) -> None:
        self._log(f"$ {' '.join(argv)}" + (f"   (in {cwd})" if cwd else "") + "\n")
        full_env = {**os.environ, **KBUILD_ENV, **(env or {})}
        assert self.log is not None
        with open(self.log, "a") as handle:
            try:
                proc = subprocess.run(argv, cwd=cwd, stdout=handle, stderr=subprocess.STDOUT,
                                      stdin=subprocess.DEVNULL, env=full_env, check=False)
            except OSError as exc:
                raise self._failure(what or argv[0], f"cannot run {argv[0]}: {exc}") from exc
        if proc.returncode != 0:
            raise self._failure(what or " ".join(argv[:3]), f"exit status {proc.returncode}")

    def _failure(self, what: str, why: str) -> BuildError:
        tail = ""
        if self.log is not None and self.log.is_file():
            lines = self.log.read_text(errors="replace").splitlines()[-TAIL_LINES:]
            tail = "\n".join("  | " + line for line in lines) + "\n"
        return BuildError(f"{tail}step {self.step_no}/{STEPS} failed: {what} ({why}); "
                          f"full log: {self.log}")

    def _make(self, src: Path, obj: Path, targets: list[str], what: str,
              extra: list[str] | None = None) -> None:
        self._run(["make", "-C", str(src), f"O={obj}", "ARCH=x86_64", f"-j{self.jobs}",
                   *(extra or []), *targets], what=what)

    # --- the build ------------------------------------------------------------
    def run(self) -> BuildResult:
        start = time.monotonic()
        if platform.machine() not in ("x86_64", "AMD64"):
            raise UsageError(f"percpu guest build runs on x86-64 hosts (this is "
                             f"{platform.machine()}): cross builds are not supported")
        _outside_checkout(self.cache, self.guest)
        t = self._step("checking Debian packages (dpkg-query) ...")
        versions = require(BUILD_PACKAGES + (PATCH_PACKAGES if self.kernel == gcache.PERCPU
                                              else ()))
        inputs = gcache.current_inputs(
            self.guest, packages={p: versions[p] for p in gcache.VERSIONED_PACKAGES},
            kernel=self.kernel, series=self.series)
        self._fragment()
        key = inputs.key()
        final = self.cache / key
        existing = gcache.load_entry(final)
        if existing is not None and not self.force:
            self.echo(f"guest up to date: {final} (inputs unchanged; --force rebuilds)")
            return BuildResult(existing, reused=True, seconds=time.monotonic() - start)

        self.cache.mkdir(parents=True, exist_ok=True)
        kkey = inputs.kernel_key()
        work = self.cache / "work" / kkey
        with _locked(self.cache / "work" / f"{kkey}.lock"):
            partial = self.cache / f".partial-{key}"
            shutil.rmtree(partial, ignore_errors=True)
            partial.mkdir(parents=True)
            self.log = partial / "build.log"
            self._log(f"percpu guest build {key} (kernel tree {kkey}), "
                      f"{_dt.datetime.now(_dt.UTC).isoformat(timespec='seconds')}\n"
                      f"inputs: {json.dumps(inputs.to_json(), sort_keys=True)}\n")
            self.step_seconds["packages"] = time.monotonic() - t
            src = self._source(versions[LINUX_SOURCE])
            if self.kernel == gcache.PERCPU:
                src = self._patched(src, versions[LINUX_SOURCE], inputs)
            obj = work / "obj"
            cpio_list = work / "initramfs.list"
            wanted = self._configure(src, obj, cpio_list)
            progs = self._programs(work)
            self._kernel_objects(src, obj)
            module = self._module(src, obj, work)
            image = self._link(src, obj, work, cpio_list, progs, module)
            build = self._install(partial, final, obj, inputs, versions, wanted, image,
                                  time.monotonic() - start)
        return BuildResult(build, reused=False, seconds=time.monotonic() - start,
                           steps=dict(self.step_seconds))

    def _source(self, version: str) -> Path:
        tarball = Path(LINUX_TARBALL)
        root = self.cache / "src" / f"{LINUX_SOURCE}_{version}"
        src = root / LINUX_SOURCE
        done = root / ".complete"
        if done.is_file() and (src / "Makefile").is_file():
            t = self._step(f"linux source: reusing {src}")
            self.step_seconds["source"] = time.monotonic() - t
            return src
        t = self._step(f"linux source: extracting {tarball} (once per version) ...")
        if not tarball.is_file():
            raise UsageError(f"{tarball} is missing although {LINUX_SOURCE} is installed: "
                             f"apt-get install --reinstall {LINUX_SOURCE}")
        with _locked(self.cache / "src" / ".lock"):
            if not (done.is_file() and (src / "Makefile").is_file()):
                tmp = self.cache / "src" / f".extract-{os.getpid()}"
                shutil.rmtree(tmp, ignore_errors=True)
                tmp.mkdir(parents=True)
                self._run(["tar", "-xf", str(tarball), "-C", str(tmp)], what="tar -xf")
                if not (tmp / LINUX_SOURCE / "Makefile").is_file():
                    raise self._failure("tar -xf", f"no {LINUX_SOURCE}/Makefile in {tarball}")
                shutil.rmtree(root, ignore_errors=True)
                tmp.rename(root)
                done.write_text(f"{tarball} {version}\n")
        self.step_seconds["source"] = time.monotonic() - t
        return src

    def _patched(self, src: Path, version: str, inputs: gcache.Inputs) -> Path:
        """The percpu kernel's tree: the extracted source hard-linked (patch writes new
        files, so the plain tree is untouched) and the series applied with patch -p1;
        one tree per series content, kept like the plain one."""
        digest = hashlib.sha256(json.dumps(inputs.patches, sort_keys=True).encode())
        root = self.cache / "src" / f"{LINUX_SOURCE}_{version}+percpu-{digest.hexdigest()[:12]}"
        tree = root / LINUX_SOURCE
        done = root / ".complete"
        if done.is_file():
            self.echo(f"      percpu series: reusing {tree}")
            return tree
        patches = gcache.series_patches(self.series)
        self.echo(f"      percpu series: {len(patches)} patches from {patches[0].parent} "
                  f"onto a copy of {src.parent.name} ...")
        with _locked(self.cache / "src" / ".lock"):
            if not done.is_file():
                tmp = self.cache / "src" / f".patch-{os.getpid()}"
                shutil.rmtree(tmp, ignore_errors=True)
                tmp.mkdir(parents=True)
                self._run(["cp", "-al", str(src), str(tmp / LINUX_SOURCE)],
                          what="cp -al (the tree to patch)")
                for patch in patches:
                    self._run(["patch", "-p1", "--forward", "--batch", "-s", "-i", str(patch)],
                              cwd=tmp / LINUX_SOURCE, what=f"patch -p1 < {patch.name}")
                shutil.rmtree(root, ignore_errors=True)
                tmp.rename(root)
                done.write_text("".join(f"{name} {sha}\n"
                                        for name, sha in inputs.patches.items()))
        return tree

    def _fragments(self) -> list[Path]:
        """percpu.config, and for the percpu kernel percpu-roots.config after it."""
        out = [self.guest / "kernel" / "percpu.config"]
        if self.kernel == gcache.PERCPU:
            out.append(self.guest / gcache.ROOTS_FRAGMENT)
        return out

    def _fragment(self) -> dict[str, str]:
        """The fragments' options (later ones win); a malformed line is bad input
        (before anything is written)."""
        wanted: dict[str, str] = {}
        try:
            for fragment in self._fragments():
                wanted.update(kconfig.parse_file(fragment, strict=True))
        except kconfig.FragmentError as exc:
            raise UsageError(str(exc)) from exc
        return wanted

    def _configure(self, src: Path, obj: Path, cpio_list: Path) -> dict[str, str]:
        fragments = self._fragments()
        wanted = self._fragment()
        generated = {"CONFIG_INITRAMFS_SOURCE": f'"{cpio_list}"'}
        stamp = obj / ".percpu-configured"
        # The stamp names the initramfs list the .config points at: a moved cache
        # directory reconfigures instead of failing the check below.
        stamp_text = f"{cpio_list}\n"
        if (stamp.is_file() and stamp.read_text() == stamp_text
                and (obj / ".config").is_file()):
            t = self._step(f"configure: reusing {obj / '.config'} (tinyconfig + "
                           f"{' + '.join(f.name for f in fragments)})")
        else:
            t = self._step(f"configure: make tinyconfig + {' + '.join(f.name for f in fragments)}"
                           " (merge_config.sh) ...")
            # An existing tree is kept: tinyconfig rewrites .config, and kbuild rebuilds
            # only what a changed option touches.
            obj.mkdir(parents=True, exist_ok=True)
            if not cpio_list.is_file():
                # A first link needs some initramfs; step 7 writes the real one.
                cpio_list.write_text("dir /dev 0755 0 0\nnod /dev/console 0600 0 0 c 5 1\n")
            gen = obj.parent / "generated.config"
            gen.write_text("".join(f"{k}={v}\n" for k, v in generated.items()))
            self._make(src, obj, ["tinyconfig"], "make tinyconfig")
            self._run([str(src / "scripts/kconfig/merge_config.sh"), "-m", "-O", str(obj),
                       str(obj / ".config"), *map(str, fragments), str(gen)], cwd=src,
                      what="merge_config.sh", env={"ARCH": "x86_64"})
            self._make(src, obj, ["olddefconfig"], "make olddefconfig")
        try:
            kconfig.verify({**wanted, **generated}, obj / ".config",
                           " + ".join(f.name for f in fragments))
        except kconfig.FragmentError as exc:
            stamp.unlink(missing_ok=True)
            raise self._failure("verifying the fragment", str(exc)) from exc
        stamp.write_text(stamp_text)
        self._log(f"all {len(wanted) + len(generated)} fragment options verified\n")
        self.step_seconds["configure"] = time.monotonic() - t
        return wanted

    def _programs(self, work: Path) -> dict[str, Path]:
        """The workloads' guest programs and the calibration programs (calib/: what
        `percpu gem5 calibrate` runs in the guest), all installed as /sbin/<name>."""
        calib = self.guest / CALIB_DIR
        names = {self.guest: programs_of(self.guest), calib: programs_of(calib)}
        out = work / "progs"
        t = self._step(f"guest programs: make -C {self.guest} ({' '.join(names[self.guest])}) "
                       f"and -C {calib} ({len(names[calib])} calibration programs) ...")
        for src in names:
            self._run(["make", "-C", str(src), f"BUILD={out}", f"-j{self.jobs}"],
                      what=f"make -C {src.relative_to(self.guest.parent.parent)}")
        every = [n for group in names.values() for n in group]
        missing = [n for n in every if not (out / n).is_file()]
        if missing:
            raise self._failure("guest programs", f"not built: {', '.join(missing)}")
        self.step_seconds["programs"] = time.monotonic() - t
        return {n: out / n for n in every}

    def _kernel_objects(self, src: Path, obj: Path) -> None:
        stamp = obj / ".percpu-built"
        if stamp.is_file() and (obj / "Module.symvers").is_file():
            t = self._step(f"kernel objects: up to date in {obj}")
        else:
            t = self._step(f"kernel objects: make -j{self.jobs} vmlinux modules "
                           "(first build of this config: minutes) ...")
            self._make(src, obj, ["vmlinux", "modules"], "make vmlinux modules")
            stamp.write_text("ok\n")
        self.step_seconds["kernel_objects"] = time.monotonic() - t

    def _module(self, src: Path, obj: Path, work: Path) -> Path:
        t = self._step("self-test module: make M=kmod modules ...")
        build = work / "kmod"
        shutil.rmtree(build, ignore_errors=True)
        build.mkdir(parents=True)
        for path in sorted((self.guest / "kmod").iterdir()):
            if path.is_file():
                shutil.copy2(path, build / path.name)
        self._make(src, obj, ["modules"], "building the self-test module", extra=[f"M={build}"])
        module = build / SELFTEST_MODULE
        if not module.is_file():
            raise self._failure("self-test module", f"{module} was not produced")
        self.step_seconds["module"] = time.monotonic() - t
        return module

    def _link(self, src: Path, obj: Path, work: Path, cpio_list: Path,
              progs: dict[str, Path], module: Path) -> Initramfs:
        t = self._step(f"initramfs + kernel: make -j{self.jobs} vmlinux bzImage ...")
        stage = work / "initramfs"
        shutil.rmtree(stage, ignore_errors=True)
        (stage / "sbin").mkdir(parents=True)
        (stage / "lib").mkdir()
        init = stage / "init"
        shutil.copyfile(self.guest / "init.sh", init)
        init.chmod(0o755)
        staged: dict[str, Path] = {}
        for name, path in progs.items():
            dest = stage / "sbin" / name
            shutil.copyfile(path, dest)
            dest.chmod(0o755)
            self._run(["strip", "--strip-all", str(dest)], what=f"strip {name}")
            staged[name] = dest
        ko = stage / "lib" / SELFTEST_MODULE
        shutil.copyfile(module, ko)
        self._run(["strip", "--strip-debug", str(ko)], what="strip the module")
        applets = subprocess.run([BUSYBOX_PATH, "--list"], capture_output=True, text=True,
                                 check=False).stdout.split()
        if "sh" not in applets:
            raise self._failure("busybox --list", f"{BUSYBOX_PATH} lists no sh applet")
        image = Initramfs(init=init, busybox=Path(BUSYBOX_PATH), applets=applets,
                          programs=staged, modules={SELFTEST_MODULE: ko})
        cpio_list.write_text(image.cpio_list())
        self._make(src, obj, ["vmlinux", "bzImage"], "make vmlinux bzImage")
        self.step_seconds["link"] = time.monotonic() - t
        return image

    def _install(self, partial: Path, final: Path, obj: Path, inputs: gcache.Inputs,
                 versions: dict[str, str], wanted: dict[str, str], image: Initramfs,
                 seconds: float) -> gcache.GuestBuild:
        t = self._step(f"install: {final}")
        shutil.copyfile(obj / "vmlinux", partial / "vmlinux")
        shutil.copyfile(obj / "arch/x86/boot/bzImage", partial / "bzImage")
        shutil.copyfile(obj / ".config", partial / ".config")
        shutil.copyfile(obj.parent / "initramfs.list", partial / "initramfs.list")
        release = (obj / "include/config/kernel.release").read_text().strip()
        cpio = obj / "usr" / "initramfs_data.cpio"
        contents = {}
        for guest_path in image.guest_paths():
            host = {"/init": image.init, "/bin/busybox": image.busybox}.get(guest_path)
            if host is None:
                name = guest_path.rsplit("/", 1)[1]
                host = image.programs.get(name) or image.modules[name]
            contents[guest_path] = host.stat().st_size
        manifest = {
            "format": 1,
            "key": final.name,
            "created": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
            "inputs": inputs.to_json(),
            "packages": versions,
            "kernel_release": release,
            "kernel_tree": str(obj),
            "kernel": self.kernel,
            "patches": sorted(inputs.patches),
            "config_fragment": " + ".join(
                f"workloads/guest/{f.relative_to(self.guest).as_posix()}"
                for f in self._fragments()),
            "config_options_verified": len(wanted) + 1,
            "files": {name: _file_info(partial / name) for name in ("vmlinux", "bzImage")},
            "initramfs": {"bytes": cpio.stat().st_size if cpio.is_file() else None,
                          "compression": "none", "contents": contents,
                          "applets": len(image.applets)},
            "programs": sorted(image.programs),
            "selftest_module": f"/lib/modules/{SELFTEST_MODULE}",
            "kernel_args": gcache.KERNEL_ARGS,
            "qemu_kernel_args": gcache.QEMU_KERNEL_ARGS,
            "init_protocol": "docs/guest.md#the-init-protocol",
            "build_seconds": round(seconds, 1),
            "step_seconds": {k: round(v, 1) for k, v in self.step_seconds.items()},
        }
        (partial / gcache.MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True)
                                               + "\n")
        self._log(f"installed as {final}\n")
        if final.exists():
            old = final.with_name(f".old-{final.name}-{os.getpid()}")
            final.rename(old)
            partial.rename(final)
            shutil.rmtree(old, ignore_errors=True)
        else:
            partial.rename(final)
        self.log = final / "build.log"
        self.step_seconds["install"] = time.monotonic() - t
        build = gcache.load_entry(final)
        if build is None:
            raise BuildError(f"installed {final} but cannot read it back")
        return build


def _lock_free(lock: Path) -> bool:
    """True when no build holds this kernel tree's lock (or it has none)."""
    if not lock.exists():
        return True
    with open(lock, "a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        fcntl.flock(handle, fcntl.LOCK_UN)
    return True


def prune(cache: Path, everything: bool = False) -> list[Path]:
    """Remove what the current inputs do not use: other builds, failed or abandoned
    partial builds and their kernel trees (never one a running build holds). The
    extracted source stays unless `everything`. Returns the removed paths."""
    if not cache.is_dir():
        return []
    inputs = gcache.current_inputs()
    current = gcache.find_build(inputs, cache)
    keep_entry = None if everything else (current.path if current else None)
    keep_tree = None if everything else inputs.kernel_key()
    removed: list[Path] = []
    work = cache / "work"
    busy = {p.stem for p in work.glob("*.lock") if not _lock_free(p)} if work.is_dir() else set()
    for path in sorted(cache.iterdir()):
        if path.name in ("src", "work"):
            continue
        if path.name.startswith(".partial-"):
            log = path / "build.log"
            head = log.read_text(errors="replace")[:300] if log.is_file() else ""
            match = re.search(r"\(kernel tree ([0-9a-f]{16})\)", head)
            if match and match.group(1) in busy:
                continue
        elif not path.name.startswith(".old-") and (
                path == keep_entry or gcache.load_entry(path) is None):
            continue  # the current build, or not a build at all
        shutil.rmtree(path, ignore_errors=True)
        removed.append(path)
    if work.is_dir():
        for tree in sorted(p for p in work.iterdir() if p.is_dir()):
            if tree.name == keep_tree or tree.name in busy:
                continue
            shutil.rmtree(tree, ignore_errors=True)
            (work / f"{tree.name}.lock").unlink(missing_ok=True)
            removed.append(tree)
    if everything and (cache / "src").is_dir() and not busy:
        shutil.rmtree(cache / "src", ignore_errors=True)
        removed.append(cache / "src")
    return removed
