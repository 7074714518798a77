#!/usr/bin/env python3
"""The engine against gem5, point by point: now the documented command `percpu compare`
(docs/compare.md), which also runs the percpu kernel's column, several seeds per point on
every host and longer regions of interest, and resumes where an interrupted run stopped.

This pointer says how the old flags map and exits 2:

    --only NAMES         ->  --points A,B (pingpong, ctxmix-4, ctxmix-6, ctxmix-7, ctxmix-8,
                             forkexec, threads-munmap, server, kmap-io)
    --cpus 2 4           ->  --cpus 2,4
    --pcid on|off|both   ->  --machines pcid | nopcid | pcid,nopcid   (--pti: add pti)
    --engine-seeds N     ->  --seeds N (every host)
    --engine-config F    ->  --profile F (engine and gem5's root-model costs; 'none': defaults)
    --reuse-gem5         ->  the same command with the same --out (finished runs are skipped)
"""

import sys

if __name__ == "__main__":
    sys.stderr.write("examples/compare_hosts.py is now 'percpu compare' (docs/compare.md): "
                     "e.g. percpu compare --gem5 $PERCPU_GEM5 --cpus 2,4 --out runs/hosts; "
                     "see this file's docstring for how its flags map\n")
    sys.exit(2)
