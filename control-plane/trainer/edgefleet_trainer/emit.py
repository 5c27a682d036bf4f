"""JSON lines on stdout: the trainer's only channel to the control plane."""
from __future__ import annotations

import json
import math
import sys
import threading
from typing import Any, Optional

_lock = threading.Lock()


def _clean(value: Any) -> Any:
    # JSON has no NaN/Infinity; the schema on the other side would reject them.
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    return value


def emit(obj: dict) -> None:
    line = json.dumps(_clean(obj), separators=(",", ":"), allow_nan=False)
    with _lock:
        sys.stdout.write(line + "\n")
        sys.stdout.flush()


def log(level: str, message: str, job_id: Optional[str] = None, **fields: Any) -> None:
    obj: dict = {"type": "log", "level": level, "message": message}
    if job_id is not None:
        obj["jobId"] = job_id
    if fields:
        obj["fields"] = fields
    emit(obj)
