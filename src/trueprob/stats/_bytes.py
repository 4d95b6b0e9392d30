"""State serialisation shared by every mergeable state: an ``.npz`` archive of plain arrays
plus a JSON header stored as a uint8 array. Never pickled in either direction."""

from __future__ import annotations

import io
import json
from typing import Any

import numpy as np


def pack(header: dict[str, Any], arrays: dict[str, np.ndarray]) -> bytes:
    """``header`` (JSON-able) and ``arrays`` as the bytes of one ``.npz`` archive."""
    members = {"header": np.frombuffer(json.dumps(header).encode(), dtype=np.uint8), **arrays}
    buffer = io.BytesIO()
    np.savez(buffer, **members)  # type: ignore[arg-type]
    return buffer.getvalue()


def unpack(data: bytes, *, fmt: str, version: int,
           what: str) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """(header, arrays) of :func:`pack` output, checking the format name and version.

    ``what`` names the state in errors ("trueprob state", "trueprob regression state", ...).
    """
    try:
        with np.load(io.BytesIO(data), allow_pickle=False) as archive:
            arrays = {key: archive[key] for key in archive.files}
        header = json.loads(arrays.pop("header").tobytes().decode())
    except (ValueError, OSError, KeyError, UnicodeDecodeError, EOFError) as exc:
        raise ValueError(f"not a {what}: {exc}") from exc
    if not isinstance(header, dict) or header.get("format") != fmt:
        raise ValueError(f"not a {what} (missing or wrong format header)")
    if header.get("version", 0) > version:
        raise ValueError(f"state format version {header.get('version')} is newer than "
                         f"this trueprob reads ({version})")
    return header, arrays
