"""JSON-lines logging with the service name, and MSISDNs masked wherever they appear."""

from __future__ import annotations

import datetime as dt
import json
import logging
import re
import sys
from typing import Any, Final, TextIO

# Mainland mobile numbers, with or without +86/86; kept: first 3 and last 4 digits.
_MSISDN = re.compile(r"(?<!\d)(?:\+?86)?(1[3-9]\d)(\d{4})(\d{4})(?!\d)")
# Record attributes that are not ours to repeat (uvicorn adds an ANSI-coloured copy).
_STANDARD: Final = set(vars(logging.makeLogRecord({})).keys()) | {
    "message",
    "asctime",
    "color_message",
}


def mask_msisdns(text: str) -> str:
    return _MSISDN.sub(lambda m: f"{m.group(1)}****{m.group(3)}", text)


def _mask(value: Any) -> Any:
    if isinstance(value, str):
        return mask_msisdns(value)
    if isinstance(value, dict):
        return {k: _mask(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set):
        return [_mask(v) for v in value]
    return value


class JsonFormatter(logging.Formatter):
    def __init__(self, service: str) -> None:
        super().__init__()
        self.service = service

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(
                timespec="milliseconds"
            ),
            "level": record.levelname,
            "service": self.service,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in record.__dict__.items():
            if key not in _STANDARD and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(_mask(entry), default=str, ensure_ascii=False)


def configure_logging(service: str, level: str = "INFO", stream: TextIO | None = None) -> None:
    """Route every logger (ours, the engine's, aiokafka's, uvicorn's) to JSON lines on stdout
    (stderr for commands whose stdout is their result)."""
    handler = logging.StreamHandler(stream or sys.stdout)
    handler.setFormatter(JsonFormatter(service))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access", "quixstreams", "aiokafka"):
        lg = logging.getLogger(name)
        lg.handlers[:] = []
        lg.propagate = True
    logging.getLogger("aiokafka").setLevel(max(logging.getLevelName(level), logging.WARNING))
