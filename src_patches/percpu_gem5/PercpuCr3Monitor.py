# The percpu gem5 plugin: counts what a guest does to its address space.
from m5.params import *
from m5.proxy import *
from m5.SimObject import SimObject


class PercpuCr3Monitor(SimObject):
    """Counts one CPU's CR3 writes, INVLPGs and INVPCIDs.

    It listens to the probe points "Cr3Write", "Invlpg" and "Invpcid" of the
    X86 ISA of each of the CPU's threads (src_patches/0007). Attach one as a
    child of each CPU; it finds the CPU itself:

        for core in board.get_processor().get_cores():
            core.get_simobject().percpu = PercpuCr3Monitor()

    Its stats then appear as board.processor.cores<N>.core.percpu.<stat>.
    """

    type = "PercpuCr3Monitor"
    cxx_class = "gem5::PercpuCr3Monitor"
    cxx_header = "percpu_gem5/percpu_cr3_monitor.hh"

    cpu = Param.BaseCPU(Parent.any, "the CPU whose threads are monitored")
    pti = Param.Bool(False, "the guest uses page-table isolation: fold the pgd pair's halves")
    roots = Param.PercpuRootModel(
        NULL, "the system's per-(cpu, pcid) root model to forward the events to (none: count only)")


def attach_percpu_cr3_monitors(processor, name="percpu"):
    """Give every core of a stdlib processor a monitor named `name`; returns
    how many were attached."""
    cores = processor.get_cores()
    for core in cores:
        setattr(core.get_simobject(), name, PercpuCr3Monitor())
    return len(cores)
