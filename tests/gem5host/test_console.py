"""What the orchestrator reads from the guest's console."""

from percpu.gem5host.console import parse_console

BOOT = """\
Linux version 6.1.0 (root@build) #1 SMP
percpu-guest: booted kernel=6.1.158 cpus=2 pcid=yes invpcid=yes pti=Not_affected
percpu-selftest: cr3-noflush expected=A got=A ok
percpu-selftest: invpcid-type1 expected=B got=A FAIL
percpu-selftest: 1 passed, 1 failed
percpu-guest: ready
"""


def test_boot_lines() -> None:
    rep = parse_console(BOOT)
    assert rep.booted == {"kernel": "6.1.158", "cpus": "2", "pcid": "yes", "invpcid": "yes",
                          "pti": "Not_affected"}
    assert rep.pcid is True and rep.pti_enabled is False
    assert [c["verdict"] for c in rep.selftest] == ["ok", "FAIL"]
    assert rep.selftest[1]["case"] == "invpcid-type1"
    assert (rep.selftest_passed, rep.selftest_failed) == (1, 1)
    assert rep.ready and rep.fatal is None


def test_pti_and_no_pcid() -> None:
    rep = parse_console("percpu-guest: booted kernel=6.1 cpus=4 pcid=no invpcid=no "
                        "pti=Mitigation:_PTI\npercpu-selftest: skipped (no pcid)\n")
    assert rep.pcid is False and rep.pti_enabled is True
    assert rep.selftest_skipped == "no pcid"


def test_program_summary_and_failures() -> None:
    text = ("ctxmix: warning: 2 processes could not be pinned\n"
            "ctxmix: procs=8 cpus=2 procs_per_cpu=4 failed=0 ns_per_turn=1200\r\n"
            "percpu-guest: script exited with status 0\n")
    rep = parse_console(text, "ctxmix")
    assert rep.summary_lines == ["ctxmix: procs=8 cpus=2 procs_per_cpu=4 failed=0 ns_per_turn=1200"]
    assert rep.summary["failed"] == "0" and rep.summary["procs"] == "8"
    assert rep.script_status == 0
    assert parse_console(text).summary_lines == []  # no program named: no summary taken


def test_panic_is_fatal() -> None:
    rep = parse_console("ok\nKernel panic - not syncing: Attempted to kill init! exitcode=0x0\n")
    assert rep.fatal is not None and rep.fatal.startswith("Kernel panic")


def test_early_exception_is_fatal() -> None:
    """Seen under a gem5 that decoded INVPCID without its ModRM byte."""
    rep = parse_console("PANIC: early exception 0x0e IP 10:ffffffff81033486 error 0 cr2 0x2\n")
    assert rep.fatal is not None and "early exception" in rep.fatal


def test_pti_flag_wins_over_the_meltdown_file() -> None:
    rep = parse_console("percpu-guest: booted kernel=6.1 cpus=2 pcid=yes invpcid=yes "
                        "pti=Not_affected ptiflag=yes\n")
    assert rep.pti_enabled is True


def test_the_percpu_kernels_roi_counters() -> None:
    """A guest program on the percpu kernel prints /proc/percpu_roots over its ROI before
    its summary (workloads/guest/common.c); the host collects them by name."""
    from percpu.gem5host.console import parse_console

    text = ("percpu-roots: enabled 1\n"
            "percpu-roots: rootAllocs::evicted 5120\n"
            "percpu-roots: lazyFaults 10240\n"
            "ctxmix: procs=28 cpus=4 failed=0\n"
            "percpu: ctxmix exited with status 0\n"
            "noise percpu-roots: lazyFaults 7\n")
    rep = parse_console(text, "ctxmix")
    assert rep.kernel_roots == {"enabled": 1, "rootAllocs::evicted": 5120, "lazyFaults": 10240}
    assert rep.summary["procs"] == "28"
    assert parse_console("ctxmix: procs=1 failed=0", "ctxmix").kernel_roots == {}
