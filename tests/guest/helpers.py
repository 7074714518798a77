"""Constants the guest tests share."""

from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
GUEST = REPO / "workloads" / "guest"
PACKAGES = {"linux-source-6.1": "6.1.192-3", "busybox-static": "1:1.35.0-4", "gcc": "4:12.2.0-3"}
