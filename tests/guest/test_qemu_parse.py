"""What `percpu guest check` accepts from the guest console."""

from __future__ import annotations

from pathlib import Path

from percpu.guest.qemu import ROOTS_WRITTEN, parse_output, qemu_command, roots_options

PROGRAMS = ["ctxmix", "hotplug"]
GOOD = [
    "Linux version 6.1.192-percpu ...",
    ("percpu-guest: booted kernel=6.1.192-percpu cpus=2 pcid=no invpcid=no "
     "pti=Mitigation:_PTI"),
    "percpu-selftest: skipped (no pcid)",
    "percpu-guest: ctxmix: ctxmix: cpus=2 ...",
    "percpu-guest: smoke ctxmix status=0",
    "percpu-guest: smoke hotplug status=0",
    "percpu-guest: qemu check done",
]


def test_good_console() -> None:
    problems, result = parse_output(GOOD, cpus=2, smoke=True, selftest=True, programs=PROGRAMS)
    assert problems == []
    assert result.booted == {"kernel": "6.1.192-percpu", "cpus": "2", "pcid": "no",
                             "invpcid": "no", "pti": "Mitigation:_PTI"}
    assert result.smoke == {"ctxmix": 0, "hotplug": 0}
    assert result.selftest_skipped == "skipped (no pcid)"


def test_each_problem_is_named() -> None:
    lines = [line.replace("cpus=2", "cpus=1").replace("hotplug status=0", "hotplug status=3")
             for line in GOOD if "skipped" not in line and "ctxmix status" not in line]
    lines[-1:-1] = ["percpu-selftest: invlpg_on_same_pcid expected=B got=A FAIL",
                    "percpu-selftest: cr3_switch_back_noflush expected=A got=A ok",
                    "percpu-selftest: 1 passed, 1 failed"]
    problems, result = parse_output(lines, cpus=2, smoke=True, selftest=True, programs=PROGRAMS)
    assert problems == ["guest saw 1 CPUs, QEMU gave it 2", "guest program ctxmix did not run",
                        "guest program hotplug exited with status 3",
                        "self-test cases failed: invlpg_on_same_pcid"]
    assert result.selftest_summary == (1, 1)


def test_no_boot() -> None:
    problems, _ = parse_output(["Kernel panic - not syncing"], cpus=2, smoke=False,
                               selftest=False, programs=PROGRAMS)
    assert problems == ["the kernel printed: Kernel panic - not syncing",
                        "no 'percpu-guest: booted' line: the kernel did not reach /init",
                        "no 'percpu-guest: qemu check done' line"]


def test_qemu_command_line() -> None:
    cmd = qemu_command(Path("/c/bzImage"), cpu="max,+pcid,+invpcid")
    assert cmd[:7] == ["qemu-system-x86_64", "-cpu", "max,+pcid,+invpcid", "-smp",
                       "2,sockets=2,cores=1,threads=1", "-m", "512"]
    assert "-no-reboot" in cmd and "-nographic" in cmd
    append = cmd[cmd.index("-append") + 1]
    assert append == ("console=ttyS0 lpj=7999923 no_timer_check rdinit=/init percpu.host=qemu "
                      "percpu.smoke=1 "
                      "percpu.selftest=1")


def test_gem5_path_needs_step_5_in_order() -> None:
    booted = GOOD[1]
    good = [booted, "percpu-selftest: skipped (no pcid)", "percpu-guest: ready",
            "m5 readfile: write: Bad address", "percpu-guest: running script (0 bytes)",
            "percpu-guest: script exited with status 0", "reboot: System halted"]
    problems, _ = parse_output(good, cpus=2, smoke=False, selftest=True, programs=PROGRAMS,
                               gem5_path=True)
    assert problems == []
    swapped = [good[0], good[1], good[4], good[2], good[5]]
    problems, _ = parse_output(swapped, cpus=2, smoke=False, selftest=True, programs=PROGRAMS,
                               gem5_path=True)
    assert problems == [("gem5 path: no line matching 'percpu-guest: running script "
                        "\\((\\d+) bytes\\)' (after the previous one)")]


def test_gem5_path_command_line_has_no_qemu_host() -> None:
    cmd = qemu_command(Path("/c/bzImage"), gem5_path=True, selftest=False)
    append = cmd[cmd.index("-append") + 1]
    assert "percpu.host" not in append and "percpu.smoke" not in append
    assert append.startswith("console=ttyS0 lpj=7999923 no_timer_check rdinit=/init")


ROOTS = {"enabled": 1, "rootAllocs::firstUse": 0, "rootAllocs::evicted": 0,
         "rootAllocs::flushedInactive": 0, "rootAllocs::noPcid": 5120,
         "rootAllocs::total": 5120, "lazyFaults": 11873, "rootCopyBytes": 10485760,
         "rootEntriesDropped": 312, "kernelSyncs": 0, "rootPoolPeakBytes": 8192,
         "rootPoolBoundBytes": 49152, "maxLazyFaultsPerRoot": 6, "lazyFaultBound": 256,
         "checkerViolations": 0,
         # percpu_roots=time (patch 9), which /init's smoke run writes to /proc/percpu_roots
         "timing": 1, "rootMakeCycles": 9_000_000, "lazyFaultFixupCycles": 4_000_000,
         "timedSwitches::newRoot": 5120, "switchCycles::newRoot": 20_000_000,
         "timedSwitches::keptRoot": 0, "switchCycles::keptRoot": 0,
         "timedSwitches::noRoot": 40, "switchCycles::noRoot": 90_000,
         "timedSwitches::noLoad": 300, "switchCycles::noLoad": 150_000}


def roots_lines(roots: dict[str, int]) -> list[str]:
    return [f"percpu-guest: roots {name} {value}" for name, value in roots.items()]


def percpu_console(roots: dict[str, int], extra: list[str] | None = None) -> list[str]:
    return ([*GOOD[:2], ROOTS_WRITTEN, *GOOD[2:-1]] + (extra or []) + roots_lines(roots)
            + GOOD[-1:])


def test_percpu_kernel_counters_are_parsed_and_checked() -> None:
    problems, result = parse_output(percpu_console(ROOTS), cpus=2, smoke=True, selftest=True,
                                    programs=PROGRAMS, percpu_kernel=True)
    assert problems == []
    assert result.roots == ROOTS


def test_percpu_kernel_violations_and_broken_bounds_are_named() -> None:
    bad = {**ROOTS, "checkerViolations": 2, "rootPoolPeakBytes": 65536,
           "maxLazyFaultsPerRoot": 300}
    problems, _ = parse_output(percpu_console(bad), cpus=2, smoke=True, selftest=True,
                               programs=PROGRAMS, percpu_kernel=True)
    # More lazy faults in one generation than user slots is no fault of the kernel: a
    # slot whose table is freed and allocated again is faulted in again.
    assert problems == ["the roots' checker saw 2 violation(s)",
                        "root pool peak 65536 B over the bound 49152 B"]


def test_percpu_kernel_without_counters_or_roots_that_never_ran() -> None:
    problems, _ = parse_output(GOOD, cpus=2, smoke=True, selftest=True, programs=PROGRAMS,
                               percpu_kernel=True)
    assert problems == ["no 'percpu-guest: roots' lines: the kernel has no /proc/percpu_roots"]
    idle = {**ROOTS, "rootAllocs::total": 0}
    problems, _ = parse_output(percpu_console(idle), cpus=2, smoke=True, selftest=True,
                               programs=PROGRAMS, percpu_kernel=True)
    assert problems == ["the roots did not run (enabled 1, 0 made, 11873 lazy faults)"]


def test_percpu_roots_off_must_make_no_roots() -> None:
    off = {**ROOTS, "enabled": 0, "rootAllocs::total": 0, "rootAllocs::noPcid": 0,
           "lazyFaults": 0, "rootMakeCycles": 0, "lazyFaultFixupCycles": 0,
           "timedSwitches::newRoot": 0, "switchCycles::newRoot": 0}
    problems, _ = parse_output(percpu_console(off), cpus=2, smoke=True, selftest=True,
                               programs=PROGRAMS, percpu_kernel=True, roots_off=True)
    assert problems == []
    problems, _ = parse_output(percpu_console(ROOTS), cpus=2, smoke=True, selftest=True,
                               programs=PROGRAMS, percpu_kernel=True, roots_off=True)
    assert problems == [
        ("percpu_roots=off,time: switches timed as {'newRoot': 5120, 'keptRoot': 0, "
         "'noRoot': 40, 'noLoad': 300}, expected only noRoot and noLoad"),
        "percpu_roots=off: the roots still ran (enabled 1, 5120 made)"]


def test_kmap_local_must_use_the_roots_slot_only_with_the_roots_on() -> None:
    kmap = {"kmap.private": 1, "kmap.localMaps::private": 900, "kmap.restores::private": 3,
            "kmap.localMaps::fixmap": 40, "kmap.restores::fixmap": 0, "kmap.inPlace": 7,
            "kmap.invalidateOther": 0}

    def check(roots: dict[str, int], **kw: bool) -> list[str]:
        return parse_output(percpu_console(roots), cpus=2, smoke=True, selftest=True,
                            programs=PROGRAMS, percpu_kernel=True, **kw)[0]

    assert check({**ROOTS, **kmap}) == []
    # percpu_roots=nokmap (or a config without CONFIG_X86_KMAP_LOCAL_MAP): all fixmap.
    assert check({**ROOTS, **kmap, "kmap.private": 0, "kmap.localMaps::private": 0}) == []
    assert check({**ROOTS, **kmap, "kmap.localMaps::private": 0}) == [
        ("kmap.private 1 but no kmap_local mapping went to a root's slot "
         "(kmap.localMaps::private 0)")]
    off = {**ROOTS, "enabled": 0, "rootAllocs::total": 0, "timedSwitches::newRoot": 0,
           "switchCycles::newRoot": 0, "rootMakeCycles": 0, "lazyFaultFixupCycles": 0,
           **kmap, "kmap.private": 0}
    assert check(off, roots_off=True) == [
        "percpu_roots=off: 900 kmap_local mappings went to a root's slot"]
    assert check({**off, "kmap.localMaps::private": 0}, roots_off=True) == []
    nokmap = {**ROOTS, **kmap, "kmap.private": 0, "kmap.localMaps::private": 0}
    assert check(nokmap, nokmap=True) == []
    assert check({**nokmap, "kmap.localMaps::private": 5}, nokmap=True) == [
        "percpu_roots=nokmap: 5 kmap_local mappings went to a root's slot"]
    # kmap_local=direct: nothing maps, in the slot or the fixmap.
    direct = {**ROOTS, **kmap, "kmap.private": 0, "kmap.direct": 1,
              "kmap.localMaps::private": 0, "kmap.localMaps::fixmap": 0}
    assert check(direct, kmapdirect=True) == []
    assert check({**direct, "kmap.localMaps::fixmap": 3}, kmapdirect=True) == [
        "percpu_roots=kmapdirect: 3 kmap_local mappings were made"]
    assert check({**direct, "kmap.direct": 0}, kmapdirect=True) == [
        "percpu_roots=kmapdirect: kmap.direct 0, kmap.private 0 (1 and 0 expected)"]


TIMED = ROOTS


def test_percpu_roots_options_are_read_from_the_command_line() -> None:
    assert roots_options("pti=on percpu_roots=off,time") == {"off", "time"}
    assert roots_options("percpu.stress=10") == set()


def test_timed_paths_must_have_counted_cycles() -> None:
    def check(roots: dict[str, int], **kw: bool) -> list[str]:
        return parse_output(percpu_console(roots), cpus=2, smoke=True, selftest=True,
                            programs=PROGRAMS, percpu_kernel=True, timing=True, **kw)[0]

    assert check(TIMED) == []
    assert check({**TIMED, "timing": 0}) == ["percpu_roots=time: /proc/percpu_roots says timing 0"]
    assert check({**TIMED, "rootMakeCycles": 0}) == [
        "percpu_roots=time: 5120 rootAllocs::total but rootMakeCycles 0"]
    assert check({**TIMED, "switchCycles::noLoad": 0}) == [
        "percpu_roots=time: 300 noLoad switches took 0 cycles"]
    assert check({**TIMED, "timedSwitches::newRoot": 0, "switchCycles::newRoot": 0}) == [
        "percpu_roots=time: no switch that made a root was timed"]
    # With the roots off, every loading switch is a stock one (noRoot).
    off = {**TIMED, "enabled": 0, "rootAllocs::total": 0, "rootAllocs::noPcid": 0,
           "lazyFaults": 0, "rootMakeCycles": 0, "lazyFaultFixupCycles": 0,
           "timedSwitches::newRoot": 0, "switchCycles::newRoot": 0}
    assert check(off, roots_off=True) == []
    assert check({**off, "timedSwitches::newRoot": 1, "switchCycles::newRoot": 900},
                 roots_off=True) == [
        ("percpu_roots=off,time: switches timed as {'newRoot': 1, 'keptRoot': 0, "
         "'noRoot': 40, 'noLoad': 300}, expected only noRoot and noLoad")]


def test_a_kernel_warning_fails_the_check() -> None:
    warn = [("percpu_roots: flush: cpu 1 asid 0 slot 3: root 0000000001234067, "
            "mm->pgd 0000000000000000"),
            "WARNING: CPU: 1 PID: 80 at arch/x86/mm/percpu_roots.c:350 root_violation+0x4c/0x60"]
    problems, _ = parse_output(percpu_console(ROOTS, warn), cpus=2, smoke=True, selftest=True,
                               programs=PROGRAMS, percpu_kernel=True)
    assert problems == ["the kernel printed: " + warn[1]]


def test_the_stress_must_report_no_errors() -> None:
    ok = ["percpu-guest: stress: roots_stress: cpus=2 seconds=20 procs=16 errors=0",
          "percpu-guest: stress status=0"]
    problems, result = parse_output(percpu_console(ROOTS, ok), cpus=2, smoke=True,
                                    selftest=True, programs=PROGRAMS, percpu_kernel=True,
                                    stress=True)
    assert problems == [] and result.stress_status == 0
    failed = ["percpu-guest: stress: roots_stress: cpus=2 seconds=20 procs=16 errors=3",
              "percpu-guest: stress status=1"]
    problems, _ = parse_output(percpu_console(ROOTS, failed), cpus=2, smoke=True,
                               selftest=True, programs=PROGRAMS, percpu_kernel=True,
                               stress=True)
    assert problems == [("the stress failed (status 1): roots_stress: cpus=2 seconds=20 "
                        "procs=16 errors=3")]
    problems, _ = parse_output(percpu_console(ROOTS), cpus=2, smoke=True, selftest=True,
                               programs=PROGRAMS, percpu_kernel=True, stress=True)
    assert problems == ["the stress printed no summary or status"]


def test_percpu_kernel_must_take_run_time_options_and_failing_smoke_is_named() -> None:
    console = [line for line in percpu_console(ROOTS) if line != ROOTS_WRITTEN]
    problems, _ = parse_output(console, cpus=2, smoke=True, selftest=True, programs=PROGRAMS,
                               percpu_kernel=True)
    assert problems == [("/proc/percpu_roots refused the run-time options "
                         f"(no '{ROOTS_WRITTEN}' line)")]
    lazy = ["percpu-guest: smoke calib_fault_lazy status=1"]
    problems, _ = parse_output(percpu_console(ROOTS, lazy), cpus=2, smoke=True, selftest=True,
                               programs=PROGRAMS, percpu_kernel=True)
    assert problems == ["guest program calib_fault_lazy exited with status 1"]
