"""Phone channels behind one interface: a sandbox (demo, tests), WeChat template messages and a generic
HTTP adapter (SMS gateways, push services). Each send carries an idempotency key, so a provider that
receives a retry of a message it already accepted drops it: a message reaches the phone at most once."""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass
from typing import Protocol

import httpx

from tuangou.notify import rules


class ChannelError(Exception):
    """The channel did not accept the message; the worker retries it later."""


@dataclass(frozen=True)
class PhoneMessage:
    key: str  # idempotency key: the same message always has the same key
    address: str
    kind: str
    title: str
    body: str


class Channel(Protocol):
    def send(self, message: PhoneMessage) -> None:
        """Deliver or raise ChannelError."""


class SandboxChannel:
    """Keeps what it was sent (the demo's "phone", the tests' probe); `fail_times` makes it fail first."""

    def __init__(self, fail_times: int = 0) -> None:
        self.fail_times, self.attempts = fail_times, 0
        self.sent: dict[str, PhoneMessage] = {}
        self._lock = threading.Lock()

    def send(self, message: PhoneMessage) -> None:
        with self._lock:
            self.attempts += 1
            if self.fail_times > 0:
                self.fail_times -= 1
                raise ChannelError("sandbox: provider unavailable")
            self.sent.setdefault(message.key, message)  # a provider drops a key it has seen


class HttpChannel:
    """POST a JSON message to `url` (a fixed SMS gateway), or to the user's own address when `url` is None;
    signed like webhooks, with `Idempotency-Key`."""

    def __init__(self, http: httpx.Client, url: str | None = None, secret: str = "") -> None:
        self.http, self.url, self.secret = http, url, secret

    def send(self, message: PhoneMessage) -> None:
        body = json.dumps({"id": message.key, "to": message.address, "kind": message.kind,
                           "text": rules.phone_text(message.title, message.body)}, ensure_ascii=False).encode()
        headers = {"content-type": "application/json", "idempotency-key": message.key}
        if self.secret:
            headers["x-tuangou-signature"] = rules.signature(self.secret, int(time.time()), body)
        try:
            r = self.http.post(self.url or message.address, content=body, headers=headers)
        except httpx.HTTPError as exc:
            raise ChannelError(f"{type(exc).__name__}: {exc}"[:300]) from exc
        if not 200 <= r.status_code < 300:
            raise ChannelError(f"HTTP {r.status_code}")


class WeChatTemplateChannel:
    """A WeChat official-account template message to the user's openid (`client_msg_id` de-duplicates)."""

    def __init__(self, http: httpx.Client, url: str, template_id: str) -> None:
        self.http, self.url, self.template_id = http, url, template_id

    def send(self, message: PhoneMessage) -> None:
        payload = {"touser": message.address, "template_id": self.template_id, "client_msg_id": message.key,
                   "data": {"first": {"value": message.title}, "keyword1": {"value": message.kind},
                            "remark": {"value": message.body[:200]}}}
        try:
            r = self.http.post(self.url, json=payload)
            answer = r.json() if r.status_code == 200 else {"errcode": r.status_code}
        except (httpx.HTTPError, ValueError) as exc:
            raise ChannelError(f"{type(exc).__name__}: {exc}"[:300]) from exc
        if answer.get("errcode", 0) != 0:
            raise ChannelError(f"wechat errcode {answer.get('errcode')}: {answer.get('errmsg', '')}"[:300])
