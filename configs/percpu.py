"""percpu's entry point for both hosts.

Under plain Python (`python configs/percpu.py [flags]`) it runs the embedded engine:
the same as `percpu run [flags]`. Under gem5 (`gem5.opt configs/percpu.py`) it would
build an X86Board with the patched MMU; that host needs gem5 built with
src_patches/ and is not available in this version.
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
    sys.stderr.write(
        "configs/percpu.py: error: the gem5 host is not implemented yet in this version; "
        "run 'python configs/percpu.py' for the embedded engine\n"
    )
    sys.exit(2)

from percpu.cli import run_main

if __name__ == "__main__":
    run_main(sys.argv[1:])
