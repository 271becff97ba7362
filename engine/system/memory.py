"""Memory in use, counted as what the kernel could not hand to a new program."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import psutil


def memory_info(virtual_memory: Callable[[], Any] = psutil.virtual_memory) -> dict[str, Any]:
    """{"total_bytes", "used_bytes", "available_bytes", "used_percent"}.

    used = total - available, so page cache that the kernel would drop does not look like
    memory pressure (psutil's own `used` differs between platforms).
    """
    memory = virtual_memory()
    used = max(int(memory.total) - int(memory.available), 0)
    percent = round(100.0 * used / memory.total, 1) if memory.total else 0.0
    return {"total_bytes": int(memory.total), "used_bytes": used,
            "available_bytes": int(memory.available), "used_percent": percent}
