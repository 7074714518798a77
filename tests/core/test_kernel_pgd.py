"""A new kernel top-level entry reaches every pgd, and every per-(cpu, asid) root."""

import pytest

from percpu import _core
from percpu.workloads.program import parse_program

PROGRAM = """percpu-ops 1
mm a
  vma heap 0x10000000 16K rw
mm b
  vma heap 0x10000000 16K rw
task ta mm=a cpus=0
task tb mm=b cpus=1
task tb2 mm=b cpus=0
program ta
  store heap count=4 stride=4096
  signal ready
  wait done
program tb
  store heap count=4 stride=4096
  wait ready
  kernel_pgd_add
  kernel_pgd_add
  signal done
program tb2
  load heap
"""


@pytest.mark.parametrize(("scheme", "roots"), [("shared", 0), ("percpu", 1), ("percpu-eager", 1)])
def test_kernel_pgd_add_reaches_every_pgd_and_root(scheme, roots):
    prog = parse_program(PROGRAM, 2)
    out = _core.run({"machine.cpus": 2.0}, scheme, check=True, **prog.core_args())
    s = {name: value for name, value, _, _ in out["stats"]}
    assert out["violation_count"] == 0
    assert s["system.kernelPgd.adds"] == 2
    # init_mm, a and b are alive at that point: three pgds per entry.
    assert s["system.kernelPgd.pgdWrites"] == 2 * 3
    # Live roots then: init_mm's on both CPUs, a's on CPU 0, b's on CPUs 0 and 1.
    assert s["system.percpu.kernelSyncs"] == 2 * 5 * roots
