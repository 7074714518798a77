"""The README's cliff table ("Cross the 6-ASID cliff"): each row's ctxmix point at seeds 1
to 5 on the engine (`percpu run --seed N`), the paired overhead of percpu vs shared as
mean and 95 % t interval over the seeds, and the root allocations' mean and range.

    python examples/readme_cliff_table.py     # prints the table's rows (a few minutes)
"""

import re
import statistics as st
import subprocess
import sys
import tempfile

from percpu.analysis.tidy.baseline import t_quantile_975

ROWS = [
    ("4 processes per CPU (default)", []),
    ("6 processes per CPU", ["-p", "procs_per_cpu=6"]),
    ("7 processes per CPU (past the cliff)", ["-p", "procs_per_cpu=7"]),
    (
        "7 per CPU, first run in ring order (`--set noise.start_order=0`)",
        ["-p", "procs_per_cpu=7", "--set", "noise.start_order=0"],
    ),
    ("4 per CPU, `--no-pcid`", ["--no-pcid"]),
    ("4 per CPU, `--pti`", ["--pti"]),
]
OUT = tempfile.mkdtemp(prefix="percpu-readme-")


def num(s):
    return float(s.replace(",", "").rstrip("%"))


for name, extra in ROWS:
    ov, busy, roots = [], [], []
    for seed in range(1, 6):
        out = subprocess.run(
            [
                sys.executable,
                "-m",
                "percpu",
                "run",
                "--seed",
                str(seed),
                *extra,
                "-o",
                OUT,
                "--force",
                "--no-report",
            ],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        ov.append(
            num(
                re.search(
                    r"^overhead vs shared \(simulated time\)\s+\S+\s+(\S+)", out, re.MULTILINE
                ).group(1)
            )
        )
        busy.append(
            num(
                re.search(
                    r"^  busy-cycle overhead vs shared\s+\S+\s+(\S+)", out, re.MULTILINE
                ).group(1)
            )
        )
        m = re.search(r"^root allocs: total\s+\S+\s+(\S+)", out, re.MULTILINE)
        roots.append(num(m.group(1)) if m else float("nan"))

    def ci(v):
        m = st.mean(v)
        h = t_quantile_975(len(v) - 1) * st.stdev(v) / len(v) ** 0.5
        return f"{m:+.2f} % [{m - h:+.2f}, {m + h:+.2f}]"

    r = f"{st.mean(roots):,.0f}" + (
        "" if min(roots) == max(roots) else f" ({min(roots):,.0f} to {max(roots):,.0f})"
    )
    print(f"| {name} | {r} | {ci(ov)} | {ci(busy)} |", flush=True)
