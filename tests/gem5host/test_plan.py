"""Plans of the gem5 processes and the checkpoint key."""

from pathlib import Path

import pytest

from percpu.errors import UsageError
from percpu.gem5host.plan import (
    Gem5Options,
    Machine,
    boot_inputs,
    boot_plan,
    checkpoint_key,
    guest_script,
    kernel_args,
    roi_plan,
)
from percpu.run_request import check_gem5_options, check_machine_flags


@pytest.fixture()
def opts(stand_in_gem5: tuple[Path, Path], tmp_path: Path) -> Gem5Options:
    gem5, kernel = stand_in_gem5
    return Gem5Options(gem5=gem5, kernel=kernel, checkpoint_dir=tmp_path / "cpt")


def test_pti_goes_to_the_kernel_command_line() -> None:
    assert "pti=on" in kernel_args(Machine(2, True, True))
    assert "nopti" in kernel_args(Machine(2, True, False))
    assert "percpu.selftest=1" in kernel_args(Machine(2, True, False))
    # --kernel-roots off boots the percpu kernel with its roots off: its own checkpoint.
    opts = Gem5Options(gem5=Path("gem5.opt"), kernel=Path("vmlinux"), kernel_kind="percpu")
    assert "percpu_roots=off" not in kernel_args(Machine(2, True, False), opts)
    opts.kernel_roots = "off"
    assert kernel_args(Machine(2, True, False), opts)[-1] == "percpu_roots=off"


def test_checkpoint_key_covers_what_the_boot_depends_on(opts: Gem5Options) -> None:
    base = checkpoint_key(boot_inputs(opts, Machine(2, True, False)))
    assert base == checkpoint_key(boot_inputs(opts, Machine(2, True, False)))
    others = {checkpoint_key(boot_inputs(opts, m)) for m in
              (Machine(4, True, False), Machine(2, False, False), Machine(2, True, True))}
    assert base not in others and len(others) == 3
    opts.kernel.write_bytes(b"\x7fELF another kernel")
    assert checkpoint_key(boot_inputs(opts, Machine(2, True, False))) != base
    opts.mem_mib = 1024
    assert base.startswith("c2-pcid-nopti-")


def test_boot_runs_atomic_without_caches_and_roi_restores(opts: Gem5Options) -> None:
    m = Machine(2, False, False)
    boot = boot_plan(opts, m, Path("/c/cpt"))
    assert (boot["phase"], boot["cpu_type"], boot["caches"], boot["pcid"]) == \
        ("boot", "atomic", "none", False)
    assert Path(boot["disk"]).stat().st_size == 1 << 20
    roi = roi_plan(opts, m, Path("/c/cpt"), Path("/w/workload.sh"), "shared")
    assert (roi["phase"], roi["cpu_type"], roi["caches"], roi["restore"], roi["readfile"]) == \
        ("roi", "timing", "classic", "/c/cpt", "/w/workload.sh")
    assert roi["kernel_args"] == boot["kernel_args"]  # a restore must match its boot


@pytest.mark.parametrize(("change", "message"), [
    ({"cpu_type": "atomic"}, "--cpu-type atomic"),
    ({"cpu_type": "minor"}, "MinorCPU does not run x86"),
    ({"caches": "l3"}, "--caches l3"),
    ({"mem_mib": 4096}, "out of range"),
    ({"max_sim_s": 0}, "must be positive"),
])
def test_bad_options(opts: Gem5Options, change: dict, message: str) -> None:
    for k, v in change.items():
        setattr(opts, k, v)
    with pytest.raises(UsageError, match=message):
        check_gem5_options(opts)


def test_missing_gem5_and_kernel(opts: Gem5Options, tmp_path: Path) -> None:
    opts.gem5 = tmp_path / "nope"
    with pytest.raises(UsageError, match="PERCPU_GEM5"):
        check_gem5_options(opts)
    opts.gem5, opts.kernel = tmp_path / "gem5.opt", tmp_path / "nokernel"
    with pytest.raises(UsageError, match="percpu guest build"):
        check_gem5_options(opts)
    with pytest.raises(UsageError, match="1..16"):
        check_machine_flags(32, None, "gem5")
    check_machine_flags(32, None, "engine")  # the engine runs up to machine.cpus's maximum


def test_the_host_runs_the_seed_and_the_kernels_options_before_any_script(tmp_path) -> None:
    import subprocess

    stock = Gem5Options(gem5=tmp_path / "gem5", kernel=tmp_path / "vmlinux")
    percpu = Gem5Options(gem5=tmp_path / "gem5", kernel=tmp_path / "vmlinux",
                         kernel_kind="percpu", kernel_time=True)
    body = "#!/bin/sh\n# a workload\necho ran\n"
    assert guest_script(body, stock, check=False) == body
    seeded = guest_script(body, stock, check=False, seed=3)
    assert seeded.startswith("#!/bin/sh\n") and seeded.endswith(body.split("\n", 1)[1])
    assert "/proc/percpu_roots" not in seeded
    # The seed's loop runs that many execs, then the script's own lines.
    traced = subprocess.run(["sh", "-c", seeded.replace("/bin/true", "echo exec")],
                            capture_output=True, text=True, check=True).stdout
    assert traced.splitlines() == ["exec"] * 3 + ["ran"]
    kernel = guest_script(body, percpu, check=True, seed=1)
    assert kernel.splitlines()[:3] == [
        "#!/bin/sh", "# percpu: the percpu kernel's run-time options (docs/kernel.md)",
        "echo check,time,kmapdirect >/proc/percpu_roots || exit 3"]
    # --kernel-kmap: kmap_local as the stock kernel's (direct), in the fixmap or the root.
    for mode, options in (("fixmap", "kmapmap,nokmap"), ("private", "kmapmap,kmap")):
        percpu.kernel_kmap = mode
        assert f"echo nocheck,time,{options} >/proc/percpu_roots || exit 3" in \
            guest_script(body, percpu, check=False)
    # A script without #! gets its prelude first.
    assert guest_script("echo ran\n", stock, check=False, seed=1).endswith("done\necho ran\n")
