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
