"""What `percpu guest check` accepts from the guest console."""

from __future__ import annotations

from pathlib import Path

from percpu.guest.qemu import parse_output, qemu_command

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
    assert problems == ["no 'percpu-guest: booted' line: the kernel did not reach /init",
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
