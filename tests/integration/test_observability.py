"""Logs are JSON with the request id. (What the middleware costs is measured by `tuangou bench
flash-sale`: the no-op route the ratio is taken against runs behind it; no test asserts a duration.)"""

from __future__ import annotations

import io
import json
import logging

from tuangou.core.observability import JsonFormatter, request_id


def test_json_log_lines_carry_the_request_id():
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    log = logging.getLogger("tuangou.test-json")
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    token = request_id.set("req-42")
    try:
        log.info("paid %s", 7, extra={"order_id": 7})
    finally:
        request_id.reset(token)
        log.removeHandler(handler)
    line = json.loads(stream.getvalue())
    assert line["msg"] == "paid 7" and line["request_id"] == "req-42" and line["order_id"] == 7
