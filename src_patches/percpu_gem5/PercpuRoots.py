# Per-(cpu, pcid) roots for gem5's x86 walker: the model from core/root/.
from m5.objects.X86TLB import X86PagetableWalker
from m5.params import *
from m5.proxy import *
from m5.SimObject import SimObject


class PercpuRootModel(SimObject):
    """The system's per-(cpu, pcid) roots (one object per system).

    It keeps the roots of a core/root/ scheme in guest physical memory that
    the guest does not own ([pool_base, pool_base + pool_size), withheld from
    the guest's E820 map by the config), learns the guest's address spaces
    from the CR3 writes, INVLPGs and INVPCIDs its PercpuCr3Monitors forward,
    and answers PercpuWalker's question: which root does this walk start from.
    """

    type = "PercpuRootModel"
    cxx_class = "gem5::PercpuRootModel"
    cxx_header = "percpu_gem5/percpu_root_model.hh"

    system = Param.System(Parent.any, "the system whose memory holds the roots")
    scheme = Param.String("percpu", "a core/root/ scheme: shared, percpu, percpu-eager")
    num_cpus = Param.Unsigned("CPUs (context IDs 0 .. num_cpus-1)")
    pti = Param.Bool(False, "the guest runs with page-table isolation (pgd pairs)")
    pool_base = Param.Addr("first byte of the root pool (page-aligned)")
    pool_size = Param.MemorySize("bytes of the root pool (page-aligned)")
    root_alloc_cycles = Param.Cycles(
        200, "cycles an allocation costs beyond its copy, which a timing walk makes as "
        "memory traffic (cost.root_alloc)")
    lazy_fault_cycles = Param.Cycles(700, "cycles a lazy fault costs (cost.lazy_fault)")
    check = Param.Bool(False, "compare root walks with the guest's pgd (system.checker)")


class PercpuWalker(X86PagetableWalker):
    """gem5's x86 walker, walking from the root PercpuRootModel picks."""

    type = "PercpuWalker"
    cxx_class = "gem5::PercpuWalker"
    cxx_header = "percpu_gem5/percpu_walker.hh"

    roots = Param.PercpuRootModel("the system's root model")
