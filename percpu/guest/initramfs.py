"""The built-in initramfs as a gen_init_cpio list (usr/gen_init_cpio's format): every
entry gets uid/gid 0 from the list itself, so building it needs neither root nor
fakeroot."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

DIRS = ("/bin", "/dev", "/lib", "/lib/modules", "/proc", "/root", "/sbin", "/sys", "/tmp")


@dataclass
class Initramfs:
    """What goes into the guest's root file system."""

    init: Path                                     # becomes /init
    busybox: Path                                  # becomes /bin/busybox
    applets: list[str] = field(default_factory=list)  # /bin/<applet> -> busybox
    programs: dict[str, Path] = field(default_factory=dict)  # /sbin/<name>
    modules: dict[str, Path] = field(default_factory=dict)   # /lib/modules/<name>

    def cpio_list(self) -> str:
        """The list text; source paths must be absolute and must not contain spaces."""
        lines = ["# percpu guest initramfs (gen_init_cpio list), written by percpu guest build"]
        for d in DIRS:
            mode = "1777" if d == "/tmp" else "0755"
            lines.append(f"dir {d} {mode} 0 0")
        # The kernel opens /dev/console before /init runs (devtmpfs is mounted by /init).
        lines.append("nod /dev/console 0600 0 0 c 5 1")
        lines.append(f"file /init {_source(self.init)} 0755 0 0")
        lines.append(f"file /bin/busybox {_source(self.busybox)} 0755 0 0")
        taken = {"busybox"}
        for applet in sorted(set(self.applets)):
            if applet in taken or not applet or "/" in applet:
                continue
            taken.add(applet)
            lines.append(f"slink /bin/{applet} busybox 0777 0 0")
        for name, path in sorted(self.programs.items()):
            lines.append(f"file /sbin/{_name(name)} {_source(path)} 0755 0 0")
        for name, path in sorted(self.modules.items()):
            lines.append(f"file /lib/modules/{_name(name)} {_source(path)} 0644 0 0")
        return "\n".join(lines) + "\n"

    def guest_paths(self) -> list[str]:
        """Guest paths of the regular files (for the manifest)."""
        return (["/init", "/bin/busybox"] + [f"/sbin/{n}" for n in sorted(self.programs)]
                + [f"/lib/modules/{n}" for n in sorted(self.modules)])


def _source(path: Path) -> str:
    text = str(path)
    if not path.is_absolute() or any(c.isspace() for c in text):
        raise ValueError(f"initramfs source must be an absolute path without spaces: {text}")
    return text


def _name(name: str) -> str:
    if not name or "/" in name or any(c.isspace() for c in name):
        raise ValueError(f"bad guest file name: {name!r}")
    return name
