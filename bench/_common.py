"""Timing and memory helpers shared by the benchmarks in ``bench/``.

A benchmark runs each library in its own subprocess (a *worker*) so that one library's
imports, caches and allocator state never count against another. Inside a worker:

1. load the input and call :func:`release_free_memory`;
2. :func:`measure_memory` resets the kernel's peak-RSS mark (``/proc/self/clear_refs``),
   reads the current RSS as the baseline, runs the call once and reads the peak back
   (``VmHWM``, and ``ru_maxrss`` which the same reset clears): extra peak = peak - baseline;
3. :func:`time_calls` times further calls with ``time.perf_counter``;
4. :func:`emit_result` prints one JSON line that :func:`run_worker` in the parent reads.

Where the peak mark cannot be reset (not Linux), ``MemoryUse.reset`` is False and the peak
includes everything before the call, so the extra figure is then an upper bound.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import gc
import importlib.metadata
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
import tracemalloc
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

MiB = float(1 << 20)
RESULT_MARK = "@@bench-result@@ "
T = TypeVar("T")


# ---------------------------------------------------------------------------- memory
def _status_bytes(field: str) -> int | None:
    """A ``kB`` field of ``/proc/self/status`` (``VmRSS``, ``VmHWM``) in bytes; None off Linux."""
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def rss_bytes() -> int:
    """Resident set size now (falls back to the peak where the current value is unknown)."""
    now = _status_bytes("VmRSS")
    return now if now is not None else ru_maxrss_bytes()


def ru_maxrss_bytes() -> int:
    """``getrusage(RUSAGE_SELF).ru_maxrss`` in bytes (Linux reports KiB, macOS bytes)."""
    value = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(value) if sys.platform == "darwin" else int(value) * 1024


def peak_rss_bytes() -> int:
    """Peak resident set size since start or since the last :func:`reset_peak_rss`."""
    hwm = _status_bytes("VmHWM")
    return hwm if hwm is not None else ru_maxrss_bytes()


def reset_peak_rss() -> bool:
    """Reset the kernel's peak-RSS mark to the current RSS (Linux >= 4.0); False if impossible."""
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
    except OSError:
        return False
    return True


def release_free_memory() -> None:
    """Collect garbage and hand the allocator's free pages back to the OS (glibc only).

    Without this, memory freed earlier in the process can be reused without raising the
    RSS, and a later measurement would under-count.
    """
    gc.collect()
    name = ctypes.util.find_library("c")
    if name and sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL(name).malloc_trim(0)


@dataclass(frozen=True)
class MemoryUse:
    """Resident memory around one call, in bytes."""

    baseline: int
    peak: int
    peak_ru_maxrss: int
    reset: bool

    @property
    def extra(self) -> int:
        """Peak RSS during the call minus the RSS just before it."""
        return max(0, self.peak - self.baseline)

    @property
    def extra_ru_maxrss(self) -> int:
        return max(0, self.peak_ru_maxrss - self.baseline)


def measure_memory(fn: Callable[[], T]) -> tuple[T, MemoryUse]:
    """Run ``fn()`` once and return its result with the extra peak RSS it caused."""
    release_free_memory()
    reset = reset_peak_rss()
    baseline = rss_bytes()
    out = fn()
    use = MemoryUse(baseline, peak_rss_bytes(), ru_maxrss_bytes(), reset)
    return out, use


def traced_peak(fn: Callable[[], T]) -> tuple[T, int]:
    """Run ``fn()`` under tracemalloc; the peak of traced Python and numpy allocations, bytes.

    numpy reports its array buffers to tracemalloc, so this counts (n, K) temporaries;
    memory allocated by native libraries that do not report (torch) is not seen.
    """
    release_free_memory()
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        start, _ = tracemalloc.get_traced_memory()
        out = fn()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return out, max(0, peak - start)


# ---------------------------------------------------------------------------- time
def time_calls(fn: Callable[[], Any], repeat: int) -> list[float]:
    """Wall-clock seconds of ``repeat`` calls of ``fn()`` (garbage collected in between)."""
    times = []
    for _ in range(repeat):
        gc.collect()
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return times


def summarise(times: Sequence[float]) -> dict[str, float | list[float]]:
    return {"time_min": min(times), "time_median": statistics.median(times),
            "times": list(times)}


# ---------------------------------------------------------------------------- workers
def emit_result(payload: object) -> None:
    """Print the worker's result as the one line :func:`run_worker` looks for."""
    sys.stdout.write(RESULT_MARK + json.dumps(payload) + "\n")
    sys.stdout.flush()


def run_worker(args: Sequence[str], *, timeout: float, python: str | None = None) -> Any:
    """Run ``python args...`` and return the payload of its :func:`emit_result` line.

    A crash, a timeout or a missing result gives ``{"status": "error", "reason": ...}``.
    """
    cmd = [python or sys.executable, *args]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout,
                              check=False)
    except subprocess.TimeoutExpired:
        return {"status": "error", "reason": f"timed out after {timeout:g} s"}
    for line in reversed(proc.stdout.splitlines()):
        if line.startswith(RESULT_MARK):
            return json.loads(line[len(RESULT_MARK):])
    tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
    return {"status": "error",
            "reason": f"exit status {proc.returncode}: " + " | ".join(tail)}


def module_available(name: str) -> bool:
    """Whether ``import name`` can find the module, without importing it."""
    import importlib.util

    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


def version_of(distribution: str) -> str | None:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return None


def machine_info() -> dict[str, Any]:
    """Where the numbers were taken (the machine is shared: the load average matters)."""
    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "loadavg": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
    }


# ---------------------------------------------------------------------------- output
def format_table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A plain-text table; numbers right-aligned, text left-aligned."""
    cells = [[str(h) for h in headers]] + [["" if c is None else str(c) for c in r]
                                          for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]

    def numeric(text: str) -> bool:
        return text.replace(".", "", 1).replace("e-", "", 1).replace("-", "", 1) \
            .replace("x", "", 1).isdigit()

    lines = []
    for j, row in enumerate(cells):
        parts = [c.rjust(w) if j and numeric(c) else c.ljust(w)
                 for c, w in zip(row, widths, strict=True)]
        lines.append("  ".join(parts).rstrip())
        if j == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)
