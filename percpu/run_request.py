"""One run request for both hosts: the flags, their defaults, their validation, the
output-directory checks and the baseline.

`percpu run` / `python configs/percpu.py` (the embedded engine) and `percpu gem5 run` /
`gem5.opt configs/percpu.py` (the gem5 host) take the same flags (RUN_FLAGS) with the same
defaults, and sweeps validate their points against the same rules. `RunRequest.validate(host)`
turns the flags into a `Run` of that host, or raises one UsageError line (exit 2) naming
the flag and why it does not apply there: the same command line is the same run on either
host, or it is refused before anything runs.

Defaults that the model owns (CPUs, seed, paging levels) come from core/config/params.cc
through the binding; the scheme list from core/root/'s registry, which the gem5 plugin
compiles whole (src_patches/percpu_gem5/SConscript), so both hosts know the same schemes.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import click

from percpu.errors import UsageError

HOSTS = ("engine", "gem5")
# How a user starts each host, for messages.
HOST_COMMANDS = {"engine": "python configs/percpu.py or percpu run",
                 "gem5": "gem5.opt configs/percpu.py or percpu gem5 run"}

DEFAULT_WORKLOAD = "ctxmix"
DEFAULT_SCHEMES = "shared,percpu"
DEFAULT_OUTDIR = "m5out"
# The scheme every other is compared with, when the run has it.
PREFERRED_BASELINE = "shared"

# The gem5 host's bounds, each with its reason.
GEM5_ENV = "PERCPU_GEM5"
GEM5_MAX_CPUS = 16  # the guest kernel's NR_CPUS; boot time grows with CPUs
GEM5_CPU_TYPES = ("timing", "o3", "minor")
GEM5_CACHES = ("classic", "ruby", "none")
GEM5_MEM_MIB = (128, 3072)  # the X86Board's I/O hole caps memory at 3 GiB
GEM5_PAGING_LEVELS = 4  # the guest kernel is built with X86_5LEVEL off
# The percpu kernel's kmap_local (docs/kernel.md): the /proc/percpu_roots options of each.
# direct is the default: a stock x86-64 kernel's kmap_local maps nothing, so with it a run
# of the percpu kernel differs from the stock kernel's by the roots alone.
KERNEL_KMAP_OPTIONS = {"direct": "kmapdirect", "fixmap": "kmapmap,nokmap",
                       "private": "kmapmap,kmap"}
KERNEL_KMAP_MODES = tuple(KERNEL_KMAP_OPTIONS)
KERNEL_KMAP_DEFAULT = "direct"
GEM5_DEFAULTS = {"cpu_type": "timing", "caches": "classic", "mem_mib": 512,
                 "timeout_s": 4 * 3600.0, "max_sim_s": 20.0}
# The cost-table entries the gem5 root model charges (percpu params), by the PercpuRootModel
# parameter that takes each: what an allocation and a lazy fault cost beyond the memory
# traffic gem5 simulates. Every other parameter is the engine's: gem5 models that hardware.
ROOT_MODEL_COSTS = {"cost.root_alloc": "root_alloc_cycles",
                    "cost.lazy_fault": "lazy_fault_cycles"}


# --- flags -------------------------------------------------------------------------------


class _SpecOption(click.Option):
    """An option whose default is a model parameter's (core/config/params.cc): --help shows
    that default and range, read from the binding when help is printed."""

    def __init__(self, *args: Any, spec_key: str, show_range: bool = False, **kwargs: Any):
        self.spec_key = spec_key
        self.show_range = show_range
        super().__init__(*args, **kwargs)

    def get_help_record(self, ctx: click.Context):
        from percpu.params import specs

        spec = specs()[self.spec_key]
        base = self.help
        rng = f", {spec.min:g}..{spec.max:g}" if self.show_range else ""
        self.help = f"{base.format(range=rng)}  [default: {spec.default:g}]"
        try:
            return super().get_help_record(ctx)
        finally:
            self.help = base


def _gem5_only(text: str) -> str:
    return f"gem5 host: {text}"


RUN_FLAGS = [
    click.option("--workload", "-w", default=DEFAULT_WORKLOAD, show_default=True,
                 help="workload to run (percpu workloads list), a workload directory or op-program "
                      "file by path (docs/op-program.md), or trace:FILE to replay a trace "
                      "(engine only)"),
    click.option("--param", "-p", "params", multiple=True, metavar="KEY=VALUE",
                 help="workload parameter (repeatable), e.g. procs_per_cpu=8"),
    click.option("--scheme", "-s", "scheme_text", default=DEFAULT_SCHEMES, show_default=True,
                 help="comma-separated root schemes (percpu schemes); on gem5, one gem5 process "
                      "each"),
    click.option("--cpus", type=int, default=None, cls=_SpecOption, spec_key="machine.cpus",
                 show_range=True,
                 help="number of CPUs{range} (gem5 host: at most " + f"{GEM5_MAX_CPUS})"),
    click.option("--no-pcid", is_flag=True,
                 help="a CPU without PCID (CPUID without PCID and INVPCID): every mm switch "
                      "flushes"),
    click.option("--pti", is_flag=True,
                 help="page-table isolation (user/kernel pgd pair; gem5: the guest boots pti=on)"),
    click.option("--paging", type=click.Choice(["4", "5"]), default=None, cls=_SpecOption,
                 spec_key="machine.paging_levels",
                 help=f"paging levels (gem5 host: {GEM5_PAGING_LEVELS} only)"),
    click.option("--seed", type=int, default=None, cls=_SpecOption, spec_key="machine.seed",
                 help="random seed (gem5: the guest script runs that many execs before the "
                      "program, moving its ASLR draws and start time: docs/compare.md)"),
    click.option("--outdir", "-o", type=click.Path(file_okay=False), default=DEFAULT_OUTDIR,
                 show_default=True, help="output directory: one subdirectory per scheme"),
    click.option("--set", "sets", multiple=True, metavar="KEY=VALUE",
                 help="override any cost or geometry parameter (percpu params), repeatable; gem5 "
                      "host: only the root model's costs, " + ", ".join(ROOT_MODEL_COSTS)),
    click.option("--config", "config_file", type=click.Path(dir_okay=False), multiple=True,
                 help="TOML file of parameter overrides ([cost] invlpg = 300); repeatable, "
                      "later files override earlier ones"),
    click.option("--check", is_flag=True,
                 help="check every translation (gem5: every root walk and flush) against the "
                      "page tables, and the bounds; exit 1 on a violation"),
    click.option("--quiet", "-q", is_flag=True, help="print only errors and violations"),
    click.option("--no-report", is_flag=True, help="skip writing report.md/report.html"),
    click.option("--force", is_flag=True,
                 help="replace OUTDIR/<scheme>/ even if it is not a previous percpu run"),
]

# The gem5 host's own flags (also `percpu gem5 calibrate`'s); refused on the engine.
GEM5_FLAGS = [
    click.option("--gem5", "gem5_path", type=click.Path(dir_okay=False), default=None,
                 help=_gem5_only(f"gem5.opt built with src_patches/ [default: ${GEM5_ENV}]")),
    # A plain string: 'percpu' must name the build even where ./percpu is a directory
    # (the repository's root); guest_kernel() and check_gem5_options() check paths.
    click.option("--kernel", metavar="VMLINUX|stock|percpu", default=None,
                 help=_gem5_only("guest vmlinux, or 'stock' / 'percpu' for the build of "
                                 "'percpu guest build [--kernel percpu]' (the percpu kernel "
                                 "makes its own per-(cpu, asid) roots: docs/kernel.md) "
                                 "[default: stock]")),
    click.option("--kernel-time", is_flag=True,
                 help=_gem5_only("the percpu kernel times its root paths (percpu_roots=time, "
                                 "docs/kernel.md): cycles land in stats.txt as "
                                 "percpu.kernel.*")),
    click.option("--kernel-kmap", type=click.Choice(KERNEL_KMAP_MODES), default=None,
                 help=_gem5_only("the percpu kernel's kmap_local (docs/kernel.md): direct "
                                 "maps nothing, as a stock x86-64 kernel, so the run differs "
                                 "from the stock kernel's by the roots alone; fixmap maps in "
                                 "the per-CPU fixmap slots (patch 10); private in a slot of "
                                 "each root (patch 11) [default: direct]")),
    click.option("--kernel-roots", type=click.Choice(("on", "off")), default=None,
                 help=_gem5_only("the percpu kernel's roots: off boots it with "
                                 "percpu_roots=off (its own checkpoint), the same binary "
                                 "as a baseline without roots (docs/kernel.md) [default: on]")),
    click.option("--cpu-type", type=click.Choice(GEM5_CPU_TYPES),
                 default=GEM5_DEFAULTS["cpu_type"], show_default=True,
                 help=_gem5_only("CPU model of the region of interest (the boot runs on atomic "
                                 "CPUs; minor is refused: gem5 v24's MinorCPU does not run "
                                 "x86)")),
    click.option("--caches", type=click.Choice(GEM5_CACHES), default=GEM5_DEFAULTS["caches"],
                 show_default=True,
                 help=_gem5_only("classic: private 32 KiB L1s + 1 MiB L2 with walk caches; "
                                 "ruby: MESI_Two_Level")),
    click.option("--mem", "mem_mib", type=int, default=GEM5_DEFAULTS["mem_mib"], show_default=True,
                 help=_gem5_only(f"guest memory in MiB ({GEM5_MEM_MIB[0]}..{GEM5_MEM_MIB[1]})")),
    click.option("--checkpoint-dir", type=click.Path(file_okay=False), default=None,
                 help=_gem5_only("where post-boot checkpoints are kept and reused "
                                 "[default: ~/.cache/percpu/checkpoints]")),
    click.option("--timeout", "timeout_s", type=float, default=GEM5_DEFAULTS["timeout_s"],
                 show_default=True, help=_gem5_only("host seconds a gem5 process may run")),
    click.option("--max-sim-seconds", "max_sim_s", type=float, default=GEM5_DEFAULTS["max_sim_s"],
                 show_default=True,
                 help=_gem5_only("simulated seconds a phase may take before it counts as hung")),
]
GEM5_FLAG_NAMES = {"gem5_path": "--gem5", "kernel": "--kernel", "kernel_time": "--kernel-time",
                   "kernel_kmap": "--kernel-kmap", "kernel_roots": "--kernel-roots",
                   "cpu_type": "--cpu-type",
                   "caches": "--caches", "mem_mib": "--mem", "checkpoint_dir": "--checkpoint-dir",
                   "timeout_s": "--timeout", "max_sim_s": "--max-sim-seconds"}


def _apply(options: list, func):
    for option in reversed(options):
        func = option(func)
    return func


def run_flags(func):
    """Every flag of a run, either host's: both commands take the same flags and print the
    same --help options; validate(host) refuses those that do not apply on the host."""
    return _apply([*RUN_FLAGS, *GEM5_FLAGS], func)


def gem5_flags(func):
    """The gem5 host's own flags (percpu gem5 calibrate)."""
    return _apply(GEM5_FLAGS, func)


# --- the request -------------------------------------------------------------------------


@dataclass
class RunRequest:
    """One run as the command line asks for it (the flags' values), for either host."""

    workload: str = DEFAULT_WORKLOAD
    params: tuple[str, ...] = ()
    scheme_text: str = DEFAULT_SCHEMES
    cpus: int | None = None
    no_pcid: bool = False
    pti: bool = False
    paging: str | None = None
    seed: int | None = None
    outdir: str = DEFAULT_OUTDIR
    sets: tuple[str, ...] = ()
    config_file: tuple[str, ...] = ()
    check: bool = False
    quiet: bool = False
    no_report: bool = False
    force: bool = False
    gem5_path: str | None = None
    kernel: str | None = None
    kernel_time: bool = False
    kernel_kmap: str | None = None
    kernel_roots: str | None = None
    cpu_type: str = GEM5_DEFAULTS["cpu_type"]
    caches: str = GEM5_DEFAULTS["caches"]
    mem_mib: int = GEM5_DEFAULTS["mem_mib"]
    checkpoint_dir: str | None = None
    timeout_s: float = GEM5_DEFAULTS["timeout_s"]
    max_sim_s: float = GEM5_DEFAULTS["max_sim_s"]
    # The gem5-host flags given on the command line (not left at their defaults).
    given: frozenset[str] = frozenset()

    @classmethod
    def from_click(cls, ctx: click.Context, values: dict[str, Any]) -> RunRequest:
        from click.core import ParameterSource

        given = frozenset(name for name in GEM5_FLAG_NAMES
                          if ctx.get_parameter_source(name) == ParameterSource.COMMANDLINE)
        return cls(**values, given=given)

    def validate(self, host: str) -> Run:
        """The run this request makes on host, or one UsageError line saying why not.
        Checks everything a run needs before anything runs or is written."""
        if host not in HOSTS:
            raise ValueError(f"unknown host {host!r}")
        self._refuse_other_host(host)
        if host == "gem5" and self.workload.startswith("trace:"):
            raise UsageError("--workload trace: replays on the engine only: the gem5 host runs "
                             "the workloads' guest programs (percpu workloads list)")
        from percpu.workloads import find_workload

        wl = find_workload(self.workload)
        wl.check_target(host)
        params = wl.resolve(parse_params(self.params))
        schemes = check_schemes(self.scheme_text)
        if host == "engine":
            overrides = machine_overrides(self.cpus, self.no_pcid, self.pti,
                                          int(self.paging) if self.paging else None, self.seed,
                                          self.sets, self.config_file)
            gem5 = None
        else:
            overrides = root_costs(self.sets, self.config_file)
            check_machine_flags(self.cpus, self.seed, host)
            gem5 = self.gem5_options()
            check_kernel_schemes(gem5, schemes)
        out = check_outdir(self.outdir, schemes, self.force)
        cpus = int(overrides.get("machine.cpus", self.cpus or model_default("machine.cpus")))
        seed = int(overrides.get("machine.seed", model_default("machine.seed")
                                 if self.seed is None else self.seed))
        return Run(host=host, request=self, workload=wl, params=params, schemes=schemes,
                   baseline=baseline(schemes), outdir=out, cpus=cpus, seed=seed,
                   overrides=overrides, gem5=gem5)

    def _refuse_other_host(self, host: str) -> None:
        if host == "engine":
            for name in sorted(self.given, key=list(GEM5_FLAG_NAMES).index):
                raise UsageError(f"{GEM5_FLAG_NAMES[name]} applies to the gem5 host only "
                                 f"({HOST_COMMANDS['gem5']}): the embedded engine models the "
                                 "machine itself (percpu params)")
        elif self.paging is not None and gem5_refuses_paging(int(self.paging)):
            raise UsageError(f"--paging {self.paging} {gem5_refuses_paging(int(self.paging))}; "
                             f"it is an engine flag ({HOST_COMMANDS['engine']})")

    def gem5_options(self) -> Gem5Options:
        """The gem5 host's options, checked (check_gem5_options)."""
        binary = gem5_binary(self.gem5_path)
        # The binary first: a missing one is said before a missing guest build.
        check_gem5_binary(binary)
        kernel = guest_kernel(self.kernel)
        opts = Gem5Options(gem5=binary, kernel=kernel, kernel_kind=kernel_kind(kernel),
                           kernel_time=self.kernel_time,
                           kernel_kmap=self.kernel_kmap, kernel_roots=self.kernel_roots,
                           cpu_type=self.cpu_type, caches=self.caches, mem_mib=self.mem_mib,
                           timeout_s=self.timeout_s, max_sim_s=self.max_sim_s)
        if self.checkpoint_dir:
            opts.checkpoint_dir = Path(self.checkpoint_dir)
        check_gem5_options(opts)
        return opts


def cache_root() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "percpu"


@dataclass
class Gem5Options:
    """The gem5 host's own flags (beside the engine's common ones)."""

    gem5: Path
    kernel: Path
    # "percpu" for the percpu kernel's build, "stock" for the stock one, None for a
    # vmlinux percpu did not build (kernel_kind).
    kernel_kind: str | None = None
    kernel_time: bool = False
    # The percpu kernel's kmap_local (KERNEL_KMAP_MODES), written to /proc/percpu_roots;
    # None (not given): KERNEL_KMAP_DEFAULT.
    kernel_kmap: str | None = None
    # off: the percpu kernel booted with percpu_roots=off (a checkpoint of its own);
    # None (not given): on.
    kernel_roots: str | None = None
    cpu_type: str = GEM5_DEFAULTS["cpu_type"]
    caches: str = GEM5_DEFAULTS["caches"]
    mem_mib: int = GEM5_DEFAULTS["mem_mib"]
    checkpoint_dir: Path = field(default_factory=lambda: cache_root() / "checkpoints")
    timeout_s: float = GEM5_DEFAULTS["timeout_s"]
    max_sim_s: float = GEM5_DEFAULTS["max_sim_s"]


@dataclass
class Run:
    """A validated run request: what a host runs."""

    host: str
    request: RunRequest
    workload: Any  # percpu.workloads.Workload
    params: dict[str, Any]
    schemes: list[str]
    baseline: str
    outdir: Path
    cpus: int
    seed: int
    # engine: every parameter the run overrides; gem5: the root model's costs.
    overrides: dict[str, float] = field(default_factory=dict)
    gem5: Gem5Options | None = None


# --- the checks, each written once -------------------------------------------------------


def model_default(key: str) -> float:
    """A model parameter's default (core/config/params.cc)."""
    from percpu.params import specs

    return specs()[key].default


def parse_params(items: tuple[str, ...] | list[str]) -> dict[str, str]:
    """--param KEY=VALUE items as a dict (the workload checks keys and values)."""
    out = {}
    for item in items:
        if "=" not in item:
            raise UsageError(f"--param takes key=value, got '{item}' "
                             "(e.g. --param procs_per_cpu=8)")
        key, value = item.split("=", 1)
        out[key.strip()] = value.strip()
    return out


def known_schemes() -> list[str]:
    """The root schemes of core/root/'s registry: the engine's, and the gem5 plugin's (it
    compiles every core/root/impl/*.cc)."""
    from percpu.params import core

    return [name for name, _ in core().scheme_names()]


def check_scheme_list(names: list[Any], where: str = "--scheme") -> list[str]:
    """UsageError unless names are known schemes, each once (where: the flag or spec key)."""
    known = known_schemes()
    if not names:
        raise UsageError(f"{where} needs at least one scheme, e.g. {DEFAULT_SCHEMES}")
    for name in names:
        if name not in known:
            raise UsageError(f"{where}: unknown scheme '{name}': choose from {', '.join(known)} "
                             "(percpu schemes)")
    if len(set(names)) != len(names):
        raise UsageError(f"{where} lists a scheme twice: {', '.join(map(str, names))}")
    return [str(n) for n in names]


def check_schemes(text: str) -> list[str]:
    """--scheme's comma-separated list."""
    return check_scheme_list([s.strip() for s in text.split(",") if s.strip()])


def baseline(schemes: list[str], wanted: str | None = None) -> str:
    """The scheme the others are compared with: wanted, else shared when the run has it,
    else the first."""
    if wanted is not None:
        return wanted
    return PREFERRED_BASELINE if PREFERRED_BASELINE in schemes else schemes[0]


def cpus_range(host: str) -> tuple[int, int]:
    from percpu.params import specs

    spec = specs()["machine.cpus"]  # the range lives once, in core/config/params.cc
    high = int(spec.max) if host == "engine" else min(int(spec.max), GEM5_MAX_CPUS)
    return int(spec.min), high


def check_machine_flags(cpus: int | None, seed: int | None, host: str) -> None:
    if cpus is not None:
        low, high = cpus_range(host)
        if not low <= cpus <= high:
            why = (" (the guest kernel's NR_CPUS; boot time grows with CPUs)"
                   if host == "gem5" and cpus > high else "")
            raise UsageError(f"--cpus {cpus} is out of range on the {host} host: use "
                             f"{low}..{high}{why}")
    if seed is not None and seed < 0:
        raise UsageError("--seed must be a non-negative integer")


def _config_files(config_file: str | tuple[str, ...] | list[str] | None) -> list[str]:
    return [config_file] if isinstance(config_file, str) else list(config_file or ())


def machine_overrides(cpus, no_pcid, pti, paging, seed, sets, config_file) -> dict[str, float]:
    """The engine: every parameter the command line overrides: --config files in order, then
    --set, then the machine flags. A flag and a --set of the same parameter must agree (the
    one would silently win over the other); the geometry must be one the engine can build."""
    from percpu.params import check_geometry, load_toml, parse_set_options

    values: dict[str, float] = {}
    # --config is repeatable: later files override earlier ones (a geometry profile,
    # then a cost profile), and --set overrides them all.
    for path in _config_files(config_file):
        values.update(load_toml(Path(path)))
    set_values = parse_set_options(list(sets))
    values.update(set_values)
    check_machine_flags(cpus, seed, "engine")
    flags = (("--cpus", cpus, "machine.cpus", cpus),
             ("--no-pcid", None, "machine.pcid", 0 if no_pcid else None),
             ("--pti", None, "machine.pti", 1 if pti else None),
             ("--paging", paging, "machine.paging_levels", paging),
             ("--seed", seed, "machine.seed", seed))
    for flag, shown, key, value in flags:
        if value is None:
            continue
        if key in set_values and set_values[key] != value:
            given = flag if shown is None else f"{flag} {shown}"
            raise UsageError(f"{given} and --set {key}={set_values[key]:g} disagree: give it "
                             f"once ({flag} or --set {key})")
        values[key] = value
    check_geometry(values)
    return values


def gem5_refuses_paging(levels: int) -> str | None:
    """Why the gem5 host refuses that many paging levels (None: it runs them)."""
    if levels == GEM5_PAGING_LEVELS:
        return None
    return (f"has no meaning on the gem5 host: the guest kernel is built with "
            f"{GEM5_PAGING_LEVELS}-level paging (X86_5LEVEL off)")


def gem5_refuses_set(key: str) -> str | None:
    """Why the gem5 host refuses a --set of key (None: it takes it)."""
    if key in ROOT_MODEL_COSTS:
        return None
    return ("has no meaning on the gem5 host: gem5 models that hardware itself; only "
            + ", ".join(ROOT_MODEL_COSTS) + " (what the root model charges) can be set")


def default_root_costs() -> dict[str, float]:
    from percpu.params import specs

    table = specs()
    return {key: table[key].default for key in ROOT_MODEL_COSTS}


def root_costs(sets: tuple[str, ...], config_file) -> dict[str, float]:
    """The gem5 host: the cost-table entries the root model charges, with --config and --set
    applied. Every other parameter is the engine's: gem5 models that hardware itself."""
    from percpu.params import load_toml, parse_set_options

    overrides: dict[str, float] = {}
    for path in _config_files(config_file):
        overrides.update(load_toml(Path(path)))
    overrides.update(parse_set_options(list(sets)))
    for key in overrides:
        why = gem5_refuses_set(key)
        if why:
            raise UsageError(f"--set {key} {why}")
    return {**default_root_costs(), **overrides}


GUEST_KERNELS = ("stock", "percpu")  # percpu.guest.cache.KERNELS: the guest builds


def kernel_kind(vmlinux: Path) -> str | None:
    """Which guest build a vmlinux is ("stock" or "percpu"), from the manifest.json
    `percpu guest build` writes beside it; None for a kernel built elsewhere."""
    import json

    manifest = vmlinux.parent / "manifest.json"
    try:
        return str(json.loads(manifest.read_text()).get("kernel", "stock"))
    except (OSError, ValueError):
        return None


def check_kernel_schemes(opts: Gem5Options, schemes: list[str]) -> None:
    """The percpu kernel makes its own roots: gem5 must walk what it loads (shared)."""
    if opts.kernel_kind == "percpu" and schemes != ["shared"]:
        raise UsageError(f"--kernel percpu runs under --scheme shared only: the kernel makes "
                         f"its own per-(cpu, asid) roots, and the plugin's "
                         f"{', '.join(s for s in schemes if s != 'shared')} would make roots "
                         "of them (docs/kernel.md)")
    if opts.kernel_time and opts.kernel_kind != "percpu":
        raise UsageError("--kernel-time needs the percpu kernel (--kernel percpu): only it "
                         "times its root paths")
    if opts.kernel_roots is not None and opts.kernel_kind != "percpu":
        raise UsageError(f"--kernel-roots {opts.kernel_roots} needs the percpu kernel "
                         "(--kernel percpu): the stock kernel has no roots to switch")
    if opts.kernel_kmap is not None and opts.kernel_kind != "percpu":
        raise UsageError(f"--kernel-kmap {opts.kernel_kmap} needs the percpu kernel "
                         "(--kernel percpu): the stock kernel's kmap_local always maps nothing")


def guest_kernel(kernel: str | None) -> Path:
    """--kernel: a vmlinux path, or the name of a guest build (GUEST_KERNELS)."""
    if kernel and kernel not in GUEST_KERNELS:
        return Path(kernel)
    try:
        from percpu.guest import default_kernel
    except ImportError:
        raise UsageError("no --kernel given and this percpu has no guest builder: pass "
                         "--kernel PATH/vmlinux") from None
    return Path(default_kernel(kernel=kernel or GUEST_KERNELS[0]))


def gem5_binary(path: str | None) -> Path:
    """--gem5, else $PERCPU_GEM5."""
    binary = path or os.environ.get(GEM5_ENV)
    if not binary:
        raise UsageError(f"no gem5 binary: pass --gem5 PATH/build/X86/gem5.opt or set "
                         f"{GEM5_ENV} (docs/gem5.md)")
    return Path(binary)


def check_gem5_binary(gem5: Path) -> None:
    if not gem5.is_file() or not os.access(gem5, os.X_OK):
        raise UsageError(f"gem5 binary {gem5} not found or not executable: pass --gem5 "
                         f"PATH/build/X86/gem5.opt or set {GEM5_ENV} (docs/gem5.md)")


def check_gem5_options(opts) -> None:
    """The gem5 host's own options (a Gem5Options): binary, kernel, CPU model, caches,
    memory and time limits."""
    check_gem5_binary(opts.gem5)
    if opts.kernel.is_dir():
        raise UsageError(f"--kernel {opts.kernel} is a directory: pass its vmlinux, or "
                         "'stock' / 'percpu' for a guest build")
    if not opts.kernel.is_file():
        raise UsageError(f"kernel {opts.kernel} not found: run 'percpu guest build' or pass "
                         "--kernel PATH/vmlinux")
    if opts.cpu_type not in GEM5_CPU_TYPES:
        raise UsageError(f"--cpu-type {opts.cpu_type}: choose from {', '.join(GEM5_CPU_TYPES)} "
                         "(the boot always runs on the atomic CPU)")
    if opts.cpu_type == "minor":
        # Seen here (2026-12-02): a restore onto MinorCPU segfaults in X86ISA::Decoder::process
        # at its first fetch; gem5 v24 does not support MinorCPU for X86.
        raise UsageError("--cpu-type minor: gem5 v24's MinorCPU does not run x86 (a restore "
                         "onto it crashes in the x86 decoder); use --cpu-type timing or o3")
    if opts.caches not in GEM5_CACHES:
        raise UsageError(f"--caches {opts.caches}: choose from {', '.join(GEM5_CACHES)}")
    if opts.caches == "ruby" and opts.cpu_type not in ("timing", "o3"):
        raise UsageError("--caches ruby needs --cpu-type timing or o3")
    low, high = GEM5_MEM_MIB
    if not low <= opts.mem_mib <= high:
        raise UsageError(f"--mem {opts.mem_mib} MiB is out of range: use {low}..{high} "
                         "(the X86Board's I/O hole)")
    if opts.timeout_s <= 0 or opts.max_sim_s <= 0:
        raise UsageError("--timeout and --max-sim-seconds must be positive")


# --- output ------------------------------------------------------------------------------


def replaceable_run_dir(sub: Path) -> list[str]:
    """What in an existing OUTDIR/<scheme>/ a run did not write: empty means it is a previous
    percpu run (an engine run's files only, or a gem5 run's directory) and may be replaced."""
    import json

    from percpu.runner import foreign_entries

    try:
        info = json.loads((sub / "percpu.json").read_text())
        if isinstance(info, dict) and info.get("host") == "gem5":
            return []
    except (OSError, ValueError):
        pass
    return foreign_entries(sub)


def check_outdir(outdir: str, schemes: list[str], force: bool) -> Path:
    """Fail before any simulation if the output directory could not be written, or if
    writing it would replace a directory percpu did not write (unless --force). Creates
    nothing: an interrupted or failed run leaves no trace."""
    from percpu.paths import check_writable_dir

    if not outdir.strip():
        raise UsageError("--outdir is empty: name the output directory (e.g. --outdir m5out)")
    out = Path(outdir)
    if out.exists() and not out.is_dir():
        raise UsageError(f"--outdir {out} exists and is not a directory: choose another path")
    check_writable_dir(out, "--outdir")
    for scheme in schemes:
        sub = out / scheme
        if sub.is_symlink() or (sub.exists() and not sub.is_dir()):
            raise UsageError(f"--outdir {out}: {sub} exists and is not a run directory: move it "
                             "away or choose another --outdir")
        foreign = replaceable_run_dir(sub) if sub.is_dir() else []
        if foreign and not force:
            shown = ", ".join(foreign[:3]) + (", ..." if len(foreign) > 3 else "")
            raise UsageError(f"--outdir {out}: {sub} is not a previous percpu run (it holds "
                             f"{shown}), and writing this run would replace it: choose another "
                             "--outdir, or pass --force to replace it")
    return out


def write_run_report(dirs: list[Path], run_baseline: str, out: Path, quiet: bool) -> None:
    """OUTDIR/report/report.{md,html} of a run's scheme directories."""
    try:
        from percpu.analysis.report import write_report
    except ImportError as exc:  # the analysis package is optional at this stage
        click.echo(f"percpu: report skipped ({exc})", err=True)
        return
    written = write_report(dirs, baseline=run_baseline, out=out / "report",
                           formats=("md", "html"))
    if not quiet:
        for path in written:
            click.echo(f"report: {path}", err=True)
