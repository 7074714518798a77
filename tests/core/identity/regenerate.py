"""Regenerates reference.json.gz: every statistic of the identity matrix (collect.py) as
the engine of the base revision produced it.

    python tests/core/identity/regenerate.py [--base REV] [--out PATH]

It exports REV (default: BASE_REVISION, the last commit meant to alter behaviour:
ctxmix's engine program passing a token over channels after a start pass, as the guest's
does, its first process taking the last one back; before it, the last commit before the
engine was split into the directories of core/ (README, Layout)) from this checkout's git
history into a temporary
directory, installs that tree with pip into a private --target directory (the C++
extension built from REV's own core/), and runs collect.py there with the editable
install of the working tree hidden, so the numbers come from REV's engine and REV's
Python (workload rendering, trace replay). Nothing is hand-kept: the file is this
script's output. It takes a few minutes (one build of the extension).

test_identity.py compares the live engine against the file. A change that is meant to
alter behaviour moves BASE_REVISION to the commit that makes it and reruns this script.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

BASE_REVISION = "65d5166cd90c5f6a9810495ce5f7891d6e79fabe"
HERE = Path(__file__).resolve().parent
REPO = HERE.parents[2]
REFERENCE = HERE / "reference.json.gz"

# Runs collect.py with the working tree's editable finder removed from sys.meta_path, so
# `import percpu` finds the copy installed in the --target directory on PYTHONPATH.
_ISOLATED = (
    "import sys, runpy\n"
    "sys.meta_path[:] = [f for f in sys.meta_path\n"
    "                    if not type(f).__module__.startswith('_editable')]\n"
    "import percpu\n"
    "assert percpu.__file__.startswith(sys.argv[1]), percpu.__file__\n"
    "sys.argv = [sys.argv[2]]\n"
    "runpy.run_path(sys.argv[0], run_name='__main__')\n"
)


def regenerate(base: str, out: Path) -> None:
    rev = subprocess.run(["git", "-C", str(REPO), "rev-parse", base], check=True,
                         capture_output=True, text=True).stdout.strip()
    with tempfile.TemporaryDirectory(prefix="percpu-identity-") as tmp:
        src, site = Path(tmp) / "src", Path(tmp) / "site"
        src.mkdir()
        archive = subprocess.run(["git", "-C", str(REPO), "archive", rev], check=True,
                                 capture_output=True).stdout
        subprocess.run(["tar", "-x", "-C", str(src)], input=archive, check=True)
        print(f"building the engine of {rev[:12]} (a few minutes)...", file=sys.stderr)
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps",
                        "--target", str(site), str(src)], check=True)
        env = dict(os.environ, PYTHONPATH=str(site))
        stats = subprocess.run(
            [sys.executable, "-c", _ISOLATED, str(site), str(HERE / "collect.py")],
            check=True, capture_output=True, text=True, env=env, cwd=tmp).stdout
    data = {"base_revision": rev, "generated_by": "tests/core/identity/regenerate.py",
            "points": json.loads(stats)}
    with gzip.open(out, "wt", compresslevel=9) as f:
        json.dump(data, f, sort_keys=True, separators=(",", ":"))
    print(f"{out}: {len(data['points'])} points from {rev[:12]}", file=sys.stderr)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", default=BASE_REVISION, help="revision to build (default: %(default)s)")
    parser.add_argument("--out", type=Path, default=REFERENCE, help="file to write")
    args = parser.parse_args()
    regenerate(args.base, args.out)


if __name__ == "__main__":
    main()
