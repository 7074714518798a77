"""`percpu guest build | check | path | clean`: the gem5 guest kernel (docs/guest.md)."""

from __future__ import annotations

import json

import click

from percpu.guest import cache as gcache

CACHE_HELP = ("cache directory (default $PERCPU_GUEST_DIR, else ~/.cache/percpu/guest); "
              "never inside the repository")
cache_option = click.option("--cache-dir", type=click.Path(file_okay=False), default=None,
                            help=CACHE_HELP)
kernel_option = click.option(
    "--kernel", type=click.Choice(gcache.KERNELS), default=gcache.STOCK, show_default=True,
    help="stock: Debian's Linux 6.1; percpu: with per-(cpu, asid) roots "
    "(src_patches/linux-6.1/, docs/kernel.md)")


@click.group("guest")
def guest_group() -> None:
    """Build the gem5 guest kernel (Linux 6.1 + busybox initramfs) and check it under QEMU."""


def _report_check(result, label: str) -> None:
    boot = f"{result.boot_seconds:.2f} s" if result.boot_seconds is not None else "no boot"
    click.echo(f"qemu ({label}): boot to /init {boot}, whole check {result.total_seconds:.1f} s")
    if result.booted:
        click.echo("  " + " ".join(f"{k}={v}" for k, v in result.booted.items()))
    if result.selftest_skipped:
        click.echo(f"  self-test: {result.selftest_skipped}")
    elif result.selftest_summary:
        passed, failed = result.selftest_summary
        click.echo(f"  self-test: {passed} passed, {failed} failed")
    for problem in result.problems:
        click.echo(f"  problem: {problem}", err=True)


def _run_checks(ctx: click.Context, build: gcache.GuestBuild, *, timeout: float, cpus: int,
                smoke: bool, selftest: bool, pcid: bool, pti: bool, gem5_path: bool,
                verbose: bool, stress: int = 0) -> None:
    from percpu.guest.qemu import check

    # (QEMU -cpu, extra kernel args, log name, the gem5 path of /init)
    percpu_kernel = build.manifest.get("kernel") == gcache.PERCPU
    # The percpu kernel's first boot also times its paths (percpu_roots=time), and the
    # roots-off boot times the stock switch: the counters must show every path timed.
    variants = [("max", "percpu_roots=on,time" if percpu_kernel else "", "max", False)]
    if pcid:
        variants.append(("max,+pcid,+invpcid", "", "max_pcid_invpcid", False))
    if pti:
        variants.append(("max", "pti=on", "max_pti", False))
    if percpu_kernel:
        # One build serves both arms of a comparison: the roots switched off at boot.
        variants.append(("max", "percpu_roots=off,time", "max_roots_off", False))
        # kmap_local in the fixmap with the roots on (CONFIG_X86_KMAP_LOCAL_MAP).
        variants.append(("max", "percpu_roots=nokmap", "max_nokmap", False))
        # kmap_local mapping nothing, as the stock kernel's (kmap_local=direct).
        variants.append(("max", "percpu_roots=kmapdirect", "max_kmapdirect", False))
    if gem5_path:
        variants.append(("max", "", "gem5_path", True))
    if stress:
        # The long stress (roots_stress with a CPU offlined and back), without and with
        # PTI; the checker watches every switch, lazy fault and flush meanwhile.
        variants += [("max", f"percpu.stress={stress}", "stress", False),
                     ("max", f"pti=on percpu.stress={stress}", "stress_pti", False)]
    ok = True
    for cpu, extra, name, as_gem5 in variants:
        label = f"-cpu {cpu}" + (f", {extra}" if extra else "") + (
            ", /init's gem5 path" if as_gem5 else "")
        click.echo(f"booting {build.bzimage} under QEMU TCG ({label}, -smp {cpus}) ...")
        log = build.path / f"qemu-check-{name}.log"
        long_run = "percpu.stress=" in extra
        # TCG slows down with every guest CPU on a 2-core host (a 30 s stress at 4 CPUs,
        # with CPU 1 offlined every second, took 190 s): allow for it.
        budget = timeout + ((2 + cpus) * stress if long_run else 0)
        result = check(build, timeout=budget, cpus=cpus,
                       cpu=cpu, smoke=smoke and not long_run, selftest=selftest,
                       extra_args=extra, gem5_path=as_gem5,
                       echo=(lambda s: click.echo("  | " + s)) if verbose else None, log=log)
        _report_check(result, label)
        click.echo(f"  console log: {log}")
        ok = ok and result.ok
    if not ok:
        click.echo("percpu guest check: FAILED", err=True)
        ctx.exit(1)
    click.echo("percpu guest check: ok")


def _check_options(f):
    f = click.option("--timeout", type=float, default=120.0, show_default=True,
                     help="seconds before a QEMU boot counts as hung")(f)
    f = click.option("--cpus", type=click.IntRange(1, 64), default=2, show_default=True,
                     help="QEMU -smp")(f)
    f = click.option("--smoke/--no-smoke", default=True, show_default=True,
                     help="run each guest program briefly in the guest")(f)
    f = click.option("--selftest/--no-selftest", default=True, show_default=True,
                     help="load the ring-0 PCID self-test module")(f)
    f = click.option("--pcid/--no-pcid", default=True, show_default=True,
                     help="also boot with -cpu max,+pcid,+invpcid (TCG's PCID model)")(f)
    f = click.option("--pti/--no-pti", default=True, show_default=True,
                     help="also boot with pti=on (TCG's CPU is not affected by Meltdown)")(f)
    f = click.option("--gem5-path/--no-gem5-path", default=True, show_default=True,
                     help="also boot without percpu.host=qemu: /init's gem5 steps in order "
                     "(the m5 ops do nothing under QEMU)")(f)
    f = click.option("--stress", type=click.IntRange(0, 86400), default=0, show_default=True,
                     metavar="SECONDS", help="also run roots_stress that long (processes "
                     "past the 6-ASID cliff, threads freeing page tables under each other, "
                     "fork/exec, a CPU offlined and back), without and with PTI")(f)
    f = click.option("-v", "--verbose", is_flag=True, help="show the guest console")(f)
    return f


@guest_group.command("build")
@cache_option
@kernel_option
@click.option("-j", "--jobs", type=click.IntRange(1, 256), default=2, show_default=True,
              help="make -j")
@click.option("--force", is_flag=True, help="rebuild even if a build of these inputs exists")
@click.option("--check", "then_check", is_flag=True, help="then run `percpu guest check`")
@_check_options
@click.pass_context
def build_command(ctx: click.Context, cache_dir: str | None, kernel: str, jobs: int,
                  force: bool, then_check: bool, timeout: float, cpus: int, smoke: bool,
                  selftest: bool, pcid: bool, pti: bool, gem5_path: bool, stress: int,
                  verbose: bool) -> None:
    """Build the guest from Debian packages (linux-source-6.1, busybox-static, gcc) into
    the cache: vmlinux for gem5, bzImage for QEMU, one directory per input hash."""
    from percpu.guest.build import Builder, BuildError

    where = gcache.cache_dir(cache_dir)
    try:
        result = Builder(where, jobs=jobs, echo=click.echo, force=force, kernel=kernel).run()
    except BuildError as exc:
        click.echo(f"percpu guest build: {exc}", err=True)
        ctx.exit(1)
    build = result.build
    if not result.reused:
        click.echo(f"built in {result.seconds:.0f} s: {build.path}")
    click.echo(f"vmlinux (gem5): {build.vmlinux}")
    click.echo(f"bzImage (QEMU): {build.bzimage}")
    click.echo(f"kernel args:    {build.kernel_args}")
    if then_check:
        _run_checks(ctx, build, timeout=timeout, cpus=cpus, smoke=smoke, selftest=selftest,
                    pcid=pcid, pti=pti, gem5_path=gem5_path, verbose=verbose, stress=stress)


@guest_group.command("check")
@cache_option
@kernel_option
@_check_options
@click.pass_context
def check_command(ctx: click.Context, cache_dir: str | None, kernel: str, timeout: float,
                  cpus: int, smoke: bool, selftest: bool, pcid: bool, pti: bool,
                  gem5_path: bool, stress: int, verbose: bool) -> None:
    """Boot the current build under QEMU TCG and check /init's lines (boot, guest
    programs, self-test; on the percpu kernel its counters, bounds and checker)."""
    build = gcache.default_build(cache_dir, kernel)
    _run_checks(ctx, build, timeout=timeout, cpus=cpus, smoke=smoke, selftest=selftest,
                pcid=pcid, pti=pti, gem5_path=gem5_path, verbose=verbose, stress=stress)


@guest_group.command("kselftest")
@cache_option
@click.option("--cpus", type=click.IntRange(1, 64), default=2, show_default=True,
              help="QEMU -smp")
@click.option("--pti", is_flag=True, help="boot both kernels with pti=on")
@click.option("--timeout", type=float, default=1800.0, show_default=True,
              help="seconds before a QEMU boot counts as hung")
@click.option("-j", "--jobs", type=click.IntRange(1, 256), default=2, show_default=True,
              help="make -j for building the selftests")
@click.pass_context
def kselftest_command(ctx: click.Context, cache_dir: str | None, cpus: int, pti: bool,
                      timeout: float, jobs: int) -> None:
    """Run the kernel's x86 and vm selftests (built static from Debian's tree) in the stock
    and the percpu guest under QEMU: every test must end the same on both kernels."""
    from percpu.guest import kselftest

    where = gcache.cache_dir(cache_dir)
    builds = {k: gcache.default_build(cache_dir, k) for k in gcache.KERNELS}
    tests = kselftest.build(where, jobs=jobs, echo=click.echo)
    extra = "pti=on" if pti else ""
    outcomes = {}
    ok = True
    for kernel, build in builds.items():
        click.echo(f"{kernel}: {len(tests.names)} selftests under QEMU (-smp {cpus}"
                   f"{', pti=on' if pti else ''}) ...")
        outcomes[kernel] = kselftest.run(build, tests, cpus=cpus, extra_args=extra,
                                         timeout=timeout)
        for problem in outcomes[kernel].problems:
            click.echo(f"  problem: {problem}", err=True)
        ok = ok and not outcomes[kernel].problems
    statuses = {k: o.statuses for k, o in outcomes.items()}
    differ = kselftest.compare(statuses[gcache.STOCK], statuses[gcache.PERCPU])
    both = outcomes[gcache.STOCK].trouble & outcomes[gcache.PERCPU].trouble
    if both:
        click.echo("both kernels printed (a selftest's doing, not the series'): "
                   + ", ".join(f"{n} x {k}" for k, n in sorted(both.items())))
    extra_kinds = kselftest.extra_trouble(outcomes[gcache.STOCK].trouble,
                                          outcomes[gcache.PERCPU].trouble)
    if extra_kinds:
        ok = False
        click.echo("  problem: only the percpu kernel printed: "
                   + ", ".join(f"{n} x {k}" for k, n in sorted(extra_kinds.items())), err=True)
    width = max(len(t) for t in tests.names)
    click.echo(f"{'test':<{width}}  stock  percpu")
    for name in tests.names:
        mark = "  DIFFERS" if name in differ else ""
        click.echo(f"{name:<{width}}  {statuses['stock'].get(name, '-')!s:>5}  "
                   f"{statuses['percpu'].get(name, '-')!s:>6}{mark}")
    passed = sum(1 for s in statuses[gcache.PERCPU].values() if s == 0)
    click.echo(f"{len(tests.names)} tests, {passed} pass on the percpu kernel, "
               f"{len(differ)} differ from the stock kernel")
    report = builds[gcache.PERCPU].path / (f"kselftest-{cpus}cpu{'-pti' if pti else ''}.json")
    report.write_text(json.dumps(
        {"cpus": cpus, "pti": pti, "statuses": statuses, "differ": differ,
         "kernel_trouble": {k: dict(o.trouble) for k, o in outcomes.items()}},
        indent=1, sort_keys=True) + "\n")
    click.echo(f"results: {report}")
    if differ or not ok:
        click.echo("percpu guest kselftest: FAILED", err=True)
        ctx.exit(1)
    click.echo("percpu guest kselftest: ok")


@guest_group.command("path")
@cache_option
@kernel_option
@click.option("--json", "as_json", is_flag=True, help="print the whole manifest")
def path_command(cache_dir: str | None, kernel: str, as_json: bool) -> None:
    """Print the vmlinux of the build matching the current inputs (what gem5 boots;
    bzImage, what QEMU boots, is beside it)."""
    build = gcache.default_build(cache_dir, kernel)
    click.echo(json.dumps(build.manifest, indent=2, sort_keys=True) if as_json
               else str(build.vmlinux))


@guest_group.command("clean")
@cache_option
@click.option("--all", "everything", is_flag=True,
              help="also the current build and the extracted Linux source")
def clean_command(cache_dir: str | None, everything: bool) -> None:
    """Remove builds of other inputs, failed builds and unused kernel trees (never what a
    running build uses); keep the current build and the extracted source."""
    from percpu.guest.build import prune

    where = gcache.cache_dir(cache_dir)
    removed = prune(where, everything=everything)
    for path in removed:
        click.echo(f"removed {path}")
    click.echo(f"{len(removed)} item(s) removed from {where}")
