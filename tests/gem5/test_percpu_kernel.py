"""The percpu kernel (src_patches/linux-6.1/, docs/kernel.md) under gem5 with PCID: the
paths QEMU's TCG cannot run (ASID slots, eviction past 6 mms per CPU, the no-flush bit),
with the kernel's checker on. Needs PERCPU_GEM5 and `percpu guest build --kernel percpu`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.gem5.test_gem5_host import run_gem5


@pytest.fixture(scope="session")
def percpu_kernel(gem5: Path) -> Path:
    from percpu.errors import UsageError
    from percpu.guest import default_kernel

    try:
        return Path(default_kernel(kernel="percpu"))
    except UsageError as exc:
        pytest.skip(f"no percpu guest kernel ({exc})")


@pytest.mark.parametrize("extra", [[], ["--pti"], ["--no-pcid"]])
def test_the_kernels_roots_past_the_asid_cliff(gem5: Path, percpu_kernel: Path,
                                               checkpoints: Path, tmp_path: Path,
                                               extra: list[str]) -> None:
    """ctxmix at 8 processes per CPU on the plugin's shared scheme (gem5 walks what the
    kernel loads): with PCID the kernel's roots are evicted past the 6-ASID cliff, without
    it every root is a no-PCID one; the checker compares every loaded root with mm->pgd
    after each switch, lazy fault and flush, and sees nothing."""
    res = run_gem5(gem5, percpu_kernel, checkpoints, tmp_path, "ctxmix",
                   "-p", "procs_per_cpu=8", *extra)
    assert res.returncode == 0, res.stderr[-3000:]
    run = tmp_path / "shared"
    info = json.loads((run / "percpu.json").read_text())
    pcid = "--no-pcid" not in extra
    assert info["guest"]["booted"]["pcid"] == ("yes" if pcid else "no")
    roots = info["guest"]["kernel_roots"]
    assert roots["checkerViolations"] == 0
    assert roots["rootAllocs::total"] > 0 and roots["lazyFaults"] > 0
    if pcid:
        assert roots["rootAllocs::evicted"] > 0 and roots["rootAllocs::noPcid"] == 0
    else:
        assert roots["rootAllocs::noPcid"] == roots["rootAllocs::total"]
    console = (run / "console.log").read_text()
    assert "WARNING:" not in console and "BUG:" not in console, console[-3000:]


def test_the_roots_stress_with_pcid(gem5: Path, percpu_kernel: Path, checkpoints: Path,
                                    tmp_path: Path) -> None:
    """roots_stress (docs/kernel.md: 8 processes per CPU remapping 4 top-level slots each,
    threads freeing tables under each other, a fork/exec storm, every worker checking its
    data) for one simulated second on 2 atomic CPUs with PCID, the checker on: the paths
    QEMU cannot run, under churn. No data error, no checker violation, no warning; roots
    evicted past the cliff and the proposal's bounds hold."""
    from percpu.gem5host.plan import Machine, guest_script
    from percpu.gem5host.run import ensure_checkpoint, run_script
    from percpu.run_request import Gem5Options

    opts = Gem5Options(gem5=gem5, kernel=percpu_kernel, kernel_kind="percpu",
                       cpu_type="atomic", caches="none", checkpoint_dir=checkpoints)
    machine = Machine(cpus=2, pcid=True, pti=False)
    checkpoint, _ = ensure_checkpoint(opts, machine, quiet=True)
    script = guest_script("#!/bin/sh\n"
                          "/sbin/roots_stress --seconds 1 --cpus 2 --procs-per-cpu 8 --slots 4\n"
                          "echo \"stress status=$?\"\n"
                          "sed 's/^/roots: /' /proc/percpu_roots\n", opts, check=True)
    _, text = run_script(opts, machine, checkpoint, script, tmp_path, "stress", quiet=True)
    assert "stress status=0" in text, text[-3000:]
    summary = next(ln for ln in text.splitlines() if "roots_stress: " in ln)
    assert " errors=0" in summary and " data_errors=0" in summary, summary
    roots = {parts[1]: int(parts[2]) for parts in (ln.split() for ln in text.splitlines())
             if len(parts) == 3 and parts[0] == "roots:" and parts[2].isdigit()}
    assert roots["checkerViolations"] == 0
    assert roots["rootAllocs::evicted"] > 0 and roots["rootEntriesDropped"] > 0
    assert roots["rootPoolPeakBytes"] <= roots["rootPoolBoundBytes"] == 2 * 6 * 4096
    assert "WARNING:" not in text and "BUG:" not in text, text[-3000:]
    (tmp_path / "summary.txt").write_text(summary + "\n" + repr(roots) + "\n")
