#!/usr/bin/env python3
"""A stand-in gem5.opt for `percpu compare`'s tests: tests/gem5host/fake_gem5.py does what
gem5 and the guest would (console, phase.json, checkpoint, the plugin's and the percpu
kernel's counters), then the region of interest's header lines are replaced by those of a
real gem5 run (tests/fixtures/gem5-v24-fs-ruby-ctxmix: simTicks, hostSeconds, simInsts
...), with simTicks made longer by percpu's roots (+5 % and 0.2 points per seed for the
plugin's percpu scheme, +3 % for the percpu kernel unless booted percpu_roots=off) and by the seed the guest script sees
(+1 % per exec before the program), so the comparison has overheads and seed ranges to
compute."""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
REAL = HERE.parent / "fixtures" / "gem5-v24-fs-ruby-ctxmix" / "stats.txt"
INNER = HERE.parent / "gem5host" / "fake_gem5.py"

args = sys.argv[1:]
code = subprocess.run([sys.executable, str(INNER), *args], check=False).returncode
if code or args[-1].endswith("probe.py"):
    sys.exit(code)

outdir = Path(args[args.index("-d") + 1])
plan = json.loads(Path(args[-1]).read_text())
stats = outdir / "stats.txt"
if plan["phase"] != "roi" or not stats.is_file():
    sys.exit(0)
script = Path(plan["readfile"]).read_text()
seed = int(re.search(r"while \[ \$i -lt (\d+) \]", script).group(1))
kernel = "/proc/percpu_roots" in script
factor = 1 + 0.01 * seed
if plan["roots"]["scheme"] != "shared":
    factor *= 1.05 + 0.002 * seed
if kernel and "percpu_roots=off" not in plan["kernel_args"]:
    factor *= 1.03  # the percpu kernel's roots; booted percpu_roots=off, none
header = {}
for line in REAL.read_text().splitlines():
    name = line.split(maxsplit=1)[0] if line.strip() else ""
    if name in ("simSeconds", "simTicks", "finalTick", "simFreq", "hostSeconds", "simInsts",
                "simOps", "hostInstRate"):
        header[name] = line
ticks = round(1889960481 * factor)
header["simTicks"] = f"simTicks {ticks} # Number of ticks simulated (Tick)"
header["simSeconds"] = f"simSeconds {ticks / 1e12:.6f} # Number of seconds simulated (Second)"
lines = [ln for ln in stats.read_text().splitlines()
         if not ln.startswith(("simSeconds ", "simTicks "))]
lines[1:1] = list(header.values())
stats.write_text("\n".join(lines) + "\n")
os.chmod(stats, 0o644)
