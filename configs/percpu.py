"""percpu's entry point for both hosts.

Under plain Python (`python configs/percpu.py [flags]`) it runs the embedded engine:
the same as `percpu run [flags]`. Under gem5 (`gem5.opt configs/percpu.py [flags]`)
it runs the gem5 host, the same as `percpu gem5 run --gem5 <this gem5.opt> [flags]`:
that orchestrator needs percpu's own Python (jinja2, pandas), which gem5's embedded
interpreter need not have, so this script hands over to it (PERCPU_PYTHON, default
python3) and it starts one gem5 process per phase (docs/gem5.md).
"""

import os
import sys

# This script is named like the package: drop its own directory from the path so that
# `import percpu` finds the installed package, not this file.
_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) != _HERE]

try:  # gem5 puts its m5 package on the path of scripts it runs
    import m5  # noqa: F401

    UNDER_GEM5 = True
except ImportError:
    UNDER_GEM5 = False

if UNDER_GEM5:
    import shutil

    gem5_binary = os.readlink("/proc/self/exe")
    python = os.environ.get("PERCPU_PYTHON") or shutil.which("python3") or "python3"
    argv = [python, "-m", "percpu", "gem5", "run", "--gem5", gem5_binary, *sys.argv[1:]]
    sys.stdout.flush()
    try:
        os.execvp(python, argv)
    except OSError as exc:
        sys.stderr.write(f"configs/percpu.py: error: cannot start {python} ({exc.strerror}): "
                         "set PERCPU_PYTHON to the python that has percpu installed\n")
        sys.exit(2)

from percpu.cli import run_main

if __name__ == "__main__":
    run_main(sys.argv[1:])
