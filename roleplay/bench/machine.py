"""The machine a benchmark ran on: every benchmark prints it first, so its figures can be compared."""

from __future__ import annotations

import os
import platform
from pathlib import Path


def machine() -> dict[str, str]:
    cpu = platform.processor() or "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem_gb = "?"
    try:
        pages = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        mem_gb = f"{pages / 2**30:.0f}"
    except (ValueError, OSError):
        pass
    return {"cpu": cpu, "cores": str(os.cpu_count()), "memory_gb": mem_gb,
            "python": platform.python_version(), "system": f"{platform.system()} {platform.release()}"}


def print_machine() -> None:
    m = machine()
    print(f"machine: {m['cpu']}, {m['cores']} cores, {m['memory_gb']} GB, Python {m['python']}, {m['system']}")
