"""Helpers shared by the benchmarks: machine description, percentiles and tables."""

from __future__ import annotations

import logging
import os
import platform
import sys
from collections.abc import Sequence
from pathlib import Path

from knowledge.evaluation import percentile  # noqa: F401 - re-exported for the benchmarks

logger = logging.getLogger(__name__)

PROJECT_ROOT = Path(__file__).resolve().parent.parent
# Shared evaluation data sets live beside the checkout, never inside it.
SHARED_DATA = PROJECT_ROOT.parent / "shared" / "data"


def quiet_bm25s() -> None:
    """Keep the bm25s baseline's debug lines out of the report.

    bm25s sets its own logger to DEBUG when imported, so the level is set
    after importing it.
    """
    import bm25s  # noqa: F401 - imported for its logger set-up

    logging.getLogger("bm25s").setLevel(logging.WARNING)


def cpu_model() -> str:
    """Return the CPU model name from /proc/cpuinfo, or the platform's processor string."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
            for line in cpuinfo:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def memory_gib() -> float | None:
    """Return the total memory in GiB, or None when psutil is not installed."""
    try:
        import psutil
    except ImportError:
        return None
    return psutil.virtual_memory().total / 2**30


def machine_info() -> dict[str, str]:
    """Describe the machine a benchmark ran on: CPU, usable cores, memory, OS and Python."""
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    memory = memory_gib()
    return {
        "cpu": cpu_model(),
        "cores": f"{usable} usable of {os.cpu_count()}",
        "memory": f"{memory:.1f} GiB" if memory is not None else "unknown (psutil missing)",
        "os": f"{platform.system()} {platform.release()}",
        "python": f"{platform.python_implementation()} {sys.version.split()[0]}",
    }


def format_table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """Format rows as a Markdown table, with floats at three decimals."""
    cells = [[_cell(value) for value in row] for row in rows]
    widths = [max(len(str(header)), *(len(row[i]) for row in cells)) for i, header in enumerate(headers)]
    lines = [
        "| " + " | ".join(str(header).ljust(widths[i]) for i, header in enumerate(headers)) + " |",
        "|" + "|".join("-" * (width + 2) for width in widths) + "|",
    ]
    lines += ["| " + " | ".join(value.ljust(widths[i]) for i, value in enumerate(row)) + " |" for row in cells]
    return "\n".join(lines)


def machine_table() -> str:
    """Format ``machine_info()`` as a two-column Markdown table."""
    return format_table(["machine", "value"], list(machine_info().items()))


def _cell(value: object) -> str:
    if isinstance(value, float):
        return f"{value:.3f}"
    return str(value)
