"""Logging: JSON lines with the service name, and never a full phone number."""

from __future__ import annotations

import json
import logging

from hvc.common.logging import JsonFormatter, mask_msisdns


def test_msisdns_are_masked_in_every_form():
    assert mask_msisdns("call 13800138000 now") == "call 138****8000 now"
    assert mask_msisdns("+8613912345678") == "139****5678"
    assert mask_msisdns("8615012345678,") == "150****5678,"


def test_other_numbers_are_left_alone():
    assert mask_msisdns("10086") == "10086"
    assert mask_msisdns("order 123456789012345") == "order 123456789012345"
    assert mask_msisdns("12345678901") == "12345678901"  # no mobile prefix 1[3-9]


def test_formatter_masks_message_and_extra_fields():
    rec = logging.makeLogRecord(
        {"msg": "from %s", "args": ("13800138000",), "levelname": "INFO", "name": "t"}
    )
    rec.msisdns = ["13912345678"]
    rec.customer_id = "c1"
    line = json.loads(JsonFormatter("tiering").format(rec))
    assert line["service"] == "tiering"
    assert line["message"] == "from 138****8000"
    assert line["msisdns"] == ["139****5678"]
    assert line["customer_id"] == "c1"
    assert "13800138000" not in json.dumps(line)
