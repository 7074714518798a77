"""What the calibration records about the machine it measured: CPU, caches (sysfs),
kernel, PTI, whether it is virtualised, the load it ran under, the date."""

from __future__ import annotations

import datetime as _dt
import os
import platform
import re
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

SYS_CPU = Path("/sys/devices/system/cpu")


@dataclass
class Cache:
    level: str      # L1D, L1I, L2, LLC
    size_kib: int
    ways: int


@dataclass
class Machine:
    cpu_model: str
    cpus: int
    kernel: str
    pti: str                 # "on", "off" or "unknown"
    pcid: bool
    hypervisor: str          # "" on bare metal, else its name ("KVM", "gem5"?, "unknown")
    thp: str
    caches: list[Cache] = field(default_factory=list)
    date: str = ""
    load_before: tuple[float, float, float] = (0.0, 0.0, 0.0)
    source: str = "sysfs"    # where the caches came from
    timer: str = "CLOCK_MONOTONIC"  # what the samples were timed with ("m5 rpns" in gem5)
    simulator: str = ""      # "" on a real machine, else the simulator that ran the guest

    @property
    def virtualised(self) -> bool:
        return bool(self.hypervisor)

    def cache_kib(self, level: str) -> int | None:
        return next((c.size_kib for c in self.caches if c.level == level), None)

    def cache_ways(self, level: str) -> int | None:
        return next((c.ways for c in self.caches if c.level == level), None)

    def slug(self) -> str:
        """A file name for its profile: cpu model, CPU count, vm, metal or simulated."""
        model = re.sub(r"[^a-z0-9]+", "-", self.cpu_model.lower()).strip("-") or "cpu"
        kind = re.sub(r"[^a-z0-9]+", "-", self.hypervisor.lower()) + "-vm" if self.hypervisor \
            else "sim" if self.simulator else "metal"
        return f"{model}-{self.cpus}cpu-{kind}"


def _read(path: Path) -> str:
    try:
        return path.read_text().strip()
    except OSError:
        return ""


def _cpuinfo() -> dict[str, str]:
    out: dict[str, str] = {}
    for line in _read(Path("/proc/cpuinfo")).splitlines():
        if ":" in line:
            key, value = (s.strip() for s in line.split(":", 1))
            out.setdefault(key, value)
    return out


def _caches() -> list[Cache]:
    out: list[Cache] = []
    levels = []
    for index in sorted((SYS_CPU / "cpu0" / "cache").glob("index*")):
        level = _read(index / "level")
        kind = _read(index / "type")
        size = _read(index / "size")
        ways = _read(index / "ways_of_associativity")
        m = re.fullmatch(r"(\d+)([KMG]?)", size)
        if not level or not m:
            continue
        kib = int(m.group(1)) * {"": 1, "K": 1, "M": 1024, "G": 1 << 20}[m.group(2)]
        levels.append((int(level), kind, kib, int(ways) if ways.isdigit() else 0))
    if not levels:
        return out
    top = max(level for level, *_ in levels)
    for level, kind, kib, ways in levels:
        if level == 1:
            name = "L1D" if kind == "Data" else "L1I" if kind == "Instruction" else "L1"
        elif level == top and level >= 3:
            name = "LLC"
        else:
            name = f"L{level}"
        out.append(Cache(name, kib, ways))
    return out


def _pti() -> str:
    text = _read(SYS_CPU / "vulnerabilities" / "meltdown")
    if not text:
        return "unknown"
    return "on" if "PTI" in text else "off"


def _hypervisor(flags: set[str]) -> str:
    """The hypervisor's name when the CPU says it runs under one (cpuid's hypervisor bit)."""
    if "hypervisor" not in flags:
        return ""
    tool = shutil.which("lscpu")
    if tool:
        done = subprocess.run([tool], capture_output=True, text=True, check=False)
        m = re.search(r"Hypervisor vendor:\s*(\S+)", done.stdout)
        if m:
            return m.group(1)
    tool = shutil.which("systemd-detect-virt")
    if tool:
        done = subprocess.run([tool, "--vm"], capture_output=True, text=True, check=False)
        if done.returncode == 0 and done.stdout.strip() not in ("", "none"):
            return done.stdout.strip()
    return "unknown"


def describe_machine() -> Machine:
    info = _cpuinfo()
    flags = set(info.get("flags", "").split())
    model = info.get("model name", platform.processor() or "unknown CPU")
    if info.get("cpu family"):
        model += f" (family {info['cpu family']} model {info.get('model', '?')})"
    thp = _read(Path("/sys/kernel/mm/transparent_hugepage/enabled"))
    m = re.search(r"\[(\w+)\]", thp)
    return Machine(
        cpu_model=model,
        cpus=os.cpu_count() or 1,
        kernel=f"Linux {platform.release()}",
        pti=_pti(),
        pcid="pcid" in flags,
        hypervisor=_hypervisor(flags),
        thp=m.group(1) if m else "unknown",
        caches=_caches(),
        date=_dt.datetime.now(_dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        load_before=os.getloadavg(),
    )


def machine_from_info(lines: list[str], source: str) -> Machine:
    """A machine described by "calib-info KEY VALUE..." lines (a guest's console log:
    the gem5 guest prints them before its samples). Keys: cpu, cpus, kernel, pti,
    pcid, hypervisor, simulator, thp, timer, cache LEVEL KIB WAYS."""
    m = Machine(cpu_model=f"unknown CPU ({source})", cpus=1, kernel="unknown", pti="unknown",
                pcid=False, hypervisor="", thp="unknown",
                date=_dt.datetime.now(_dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
                source=f"calib-info lines of {source}")
    for line in lines:
        parts = line.split()
        if len(parts) < 3 or parts[0] != "calib-info":
            continue
        key, rest = parts[1], " ".join(parts[2:])
        if key == "cpu":
            m.cpu_model = rest
        elif key == "cpus" and rest.isdigit():
            m.cpus = int(rest)
        elif key == "kernel":
            m.kernel = rest
        elif key == "pti":
            m.pti = rest
        elif key == "pcid":
            m.pcid = rest in ("1", "yes", "true", "on")
        elif key == "hypervisor":
            m.hypervisor = "" if rest in ("none", "-") else rest
        elif key == "thp":
            m.thp = rest
        elif key == "timer":
            m.timer = rest
        elif key == "simulator":
            m.simulator = rest
        elif key == "cache" and len(parts) == 5 and parts[3].isdigit() and parts[4].isdigit():
            m.caches.append(Cache(parts[2], int(parts[3]), int(parts[4])))
    return m
