#!/usr/bin/env python3
"""A stand-in for gem5.opt in the orchestrator's tests: it reads the plan exactly as
percpu/gem5host/system.py would and writes what gem5 and the guest would leave in the
outdir (console log, phase.json, stats.txt, a checkpoint). FAKE_GEM5 picks a scenario:
ok (default), panic, hang, nodump, pcid-missing, crash, stock (no plugin), violation
(the root model's checker finds one), calib-fail (a calibration benchmark fails). It tests percpu's handling of
gem5 processes, not gem5."""

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

args = sys.argv[1:]
if args[-1].endswith("probe.py"):  # percpu gem5 check / the orchestrator's probe
    plugin = os.environ.get("FAKE_GEM5") != "stock"
    objects = ("PercpuCr3Monitor", "PercpuRootModel", "PercpuWalker")
    print("percpu-probe: " + json.dumps({"gem5_version": "24.0.0.1", "x86": True,
                                         "objects": {name: plugin for name in objects}}))
    sys.exit(0)
outdir = Path(args[args.index("-d") + 1])
plan = json.loads(Path(args[-1]).read_text())
scenario = os.environ.get("FAKE_GEM5", "ok")
with open(Path(os.environ["FAKE_GEM5_CALLS"]), "a") as fh:
    fh.write(plan["phase"] + "\n")
console = outdir / "board.pc.com_1.device"
pcid = "yes" if plan["pcid"] and scenario != "pcid-missing" else "no"
pti = "Not_affected ptiflag=" + ("yes" if "pti=on" in plan["kernel_args"] else "no")
lines = [(f"percpu-guest: booted kernel=6.1.0 cpus={plan['cpus']} pcid={pcid} invpcid={pcid} "
         f"pti={pti}"), "percpu-selftest: 9 passed, 0 failed", "percpu-guest: ready"]
if scenario == "crash":
    sys.stderr.write("fatal: something gem5 did not like\n")
    (outdir / "simerr.txt").write_text("fatal: something gem5 did not like\n")
    sys.exit(1)
if scenario == "panic" and plan["phase"] == "roi":
    console.write_text("\n".join(lines) + "\nKernel panic - not syncing: Attempted to kill init!\n")
    time.sleep(600)
if scenario == "hang" and plan["phase"] == "roi":
    console.write_text("\n".join(lines) + "\n")
    time.sleep(600)
if plan["phase"] == "boot":
    console.write_text("\n".join(lines) + "\n")
    cpt = Path(plan["checkpoint"])
    cpt.mkdir(parents=True)
    (cpt / "m5.cpt").write_text("[root]\n")
    (outdir / "phase.json").write_text(json.dumps({"phase": "boot", "cause": "m5_exit",
                                                   "tick": 10, "checkpointed": True}))
    sys.exit(0)
script = Path(plan["readfile"]).read_text()
if "calib-info" in script:  # percpu gem5 calibrate: the real script, on programs built here
    bindir = os.environ["FAKE_GEM5_BINDIR"]
    if scenario == "calib-fail":
        script = script.replace("/sbin/calib_syscall", "/bin/false")
    done = subprocess.run(["sh", "-c", script.replace("/sbin/", bindir + "/")],
                          capture_output=True, text=True, check=False)
    lines += ["percpu-guest: running script", *done.stdout.splitlines(),
              f"percpu-guest: script exited with status {done.returncode}"]
    console.write_text("\n".join(lines) + "\n")
    (outdir / "phase.json").write_text(json.dumps({"phase": "roi", "cause": "m5_exit",
                                                   "tick": 1, "monitors": plan["cpus"],
                                                   "fallback_dump": True}))
    sys.exit(0)
prog = re.search(r"^/sbin/(\w+)", script, re.MULTILINE).group(1)
if m := re.search(r"^echo (\S+) >/proc/percpu_roots", script, re.MULTILINE):
    # The percpu kernel: the guest program prints its counters over the ROI.
    timed = "time" in m.group(1).split(",")
    kernel = {"enabled": 1, "rootAllocs::firstUse": 4, "rootAllocs::evicted": 12,
              "rootAllocs::flushedInactive": 0, "rootAllocs::noPcid": 0,
              "rootAllocs::total": 16, "lazyFaults": 40, "rootPoolPeakBytes": 8192,
              "checkerViolations": 0, "timing": int(timed),
              "rootMakeCycles": 16 * 900 if timed else 0}
    # kmap_local as the options ask: nothing mapped (kmapdirect), or 10 in the root's own
    # slot (kmap) or in the fixmap (nokmap).
    options = m.group(1).split(",")
    where = None if "kmapdirect" in options else "private" if "kmap" in options else "fixmap"
    kernel |= {"kmap.private": int(where == "private"), "kmap.direct": int(where is None),
               **{f"kmap.{n}::{p}": (10 if n == "localMaps" else 0) * (where == p)
                  for n in ("localMaps", "restores") for p in ("private", "fixmap")},
               "kmap.inPlace": 0, "kmap.invalidateOther": 0}
    lines += [f"percpu-roots: {k} {v}" for k, v in kernel.items()]
lines += [f"{prog}: procs=4 cpus={plan['cpus']} failed=0 ns_per_turn=100"]
console.write_text("\n".join(lines) + "\n")
if scenario != "nodump":
    cpu = "board.processor.cores{}.core"
    stats = ["---------- Begin Simulation Statistics ----------",
             "simSeconds 0.001000 # Number of seconds simulated (Second)",
             "simTicks 1000000000 # Number of ticks simulated (Tick)"]
    for i in range(plan["cpus"]):
        stats += [f"{cpu.format(i)}.commitStats0.numInsts 1000 # insts (Count)",
                  f"{cpu.format(i)}.percpu.cr3Writes 100 # CR3 writes (Count)",
                  f"{cpu.format(i)}.percpu.mmSwitches 80 # mm switches (Count)",
                  (f"{cpu.format(i)}.percpu.mmSwitchesFlushed {0 if pcid == 'yes' else 80} "
                  "# flushing (Count)"),
                  f"{cpu.format(i)}.mmu.dtb.rdMisses 7 # misses (Count)"]
        roots = plan["roots"]["scheme"] != "shared"
        stats += [f"{cpu.format(i)}.percpu.rootAllocs::firstUse {3 if roots else 0} # (Count)",
                  f"{cpu.format(i)}.percpu.rootAllocs::total {3 if roots else 0} # (Count)",
                  f"{cpu.format(i)}.percpu.lazyFaults {5 if roots else 0} # (Count)"]
    roots = plan["roots"]["scheme"] != "shared"
    violations = 1 if scenario == "violation" and plan["roots"]["check"] else 0
    stats += [f"board.percpu.rootPoolPeakBytes {4096 * 3 if roots else 0} # (Byte)",
              f"board.percpu.checkerViolations {violations} # (Count)"]
    stats.append("---------- End Simulation Statistics   ----------")
    (outdir / "stats.txt").write_text("\n".join(stats) + "\n")
(outdir / "config.ini").write_text("[root]\ntype=Root\nfull_system=true\n")
(outdir / "phase.json").write_text(json.dumps({"phase": "roi", "cause": "m5_exit", "tick": 1,
                                               "monitors": plan["cpus"],
                                               "fallback_dump": scenario == "nodump"}))
