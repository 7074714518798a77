"""What a gem5 binary has: run inside gem5.opt by `percpu gem5 check`.

Prints one JSON line: the gem5 version, whether the ISA is X86, and which of
percpu's SimObjects it was built with (they exist only in a build with
src_patches/'s patches and EXTRAS directory: the plugin uses the patches' probe
points and walker hooks)."""

import json

import _m5
import m5  # noqa: F401
from m5 import objects

PLUGIN_OBJECTS = ("PercpuCr3Monitor", "PercpuRootModel", "PercpuWalker")

if __name__ == "__m5_main__":
    found = {name: hasattr(objects, name) for name in PLUGIN_OBJECTS}
    print("percpu-probe: " + json.dumps({
        "gem5_version": _m5.core.gem5Version,
        "x86": hasattr(objects, "X86ISA"),
        "objects": found,
    }))
