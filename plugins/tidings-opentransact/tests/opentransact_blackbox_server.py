"""An independent OpenTransact Activities server for black-box tests of ``tidings follow``.

Written from PROVIDERS.md and the seed only (it shares no code with the plugin or its
emulator). ``GET /v1/activities``: JSON:API, ``page[number]`` from 1, ``page[size]``
(default 30, silently capped at ``max_size``), ``meta {current-page, page-count, count}``,
absolute percent-encoded ``links`` on a host of its own, the documented filters,
strict UTC second timestamps, JSON:API errors with the documented codes.

Switches (attributes, changed freely between runs):

- ``newest_first``: list order; ties share one second and keep a stable order
  (``tie_by_id`` sorts them by id instead, so an arrival lands among them);
- ``inclusive``: whether ``filter[created-between][start]``/``[finish]`` include their ends;
- ``max_size``: the silent cap on ``page[size]``;
- ``auth``: ``"bearer"``, ``"basic"`` or ``"either"``;
- ``with_meta`` / ``with_links``: whether pages carry ``meta`` / ``links``;
- ``faults``: a list consumed one per request: ``None``, ``500``, ``502``, ``503``,
  ``"429"`` (Retry-After in seconds), ``"429-date"`` (as an HTTP date), ``"truncated"``
  (a 200 whose JSON is cut short), ``"reset"`` (the connection dropped mid-body),
  ``"slow"`` (answers late), ``"error-200"`` (an error document in a 200);
- ``on_page``: called with the page number before each list request is answered
  (to create activities while the client pages);
- ``delay``: seconds every answer waits (for interrupt tests).
"""

from __future__ import annotations

import asyncio
import email.utils
import json
import re
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

MEDIA = "application/vnd.api+json"
STAMP = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$")
BASE = datetime(2021, 8, 11, 4, 38, 14, tzinfo=UTC)
KNOWN = {
    "page[number]", "page[size]",
    "filter[created-between][start]", "filter[created-between][finish]",
    "filter[updated-between][start]", "filter[updated-between][finish]",
    "filter[subject-id]", "filter[subject-type]", "filter[action]",
    "filter[profile-id]", "filter[application-id]",
}


def stamp(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


class Refused(Exception):
    def __init__(self, status: int, code: int, title: str, detail: str) -> None:
        super().__init__(detail)
        self.status, self.code, self.title, self.detail = status, code, title, detail

    def document(self) -> dict[str, Any]:
        return {"errors": [{"status": str(self.status), "title": self.title, "detail": self.detail,
                            "code": str(self.code)}]}


class Server:
    """The server's state and switches; ``app`` is the raw ASGI application."""

    def __init__(self, token: str = "ot-secret-key-1234") -> None:
        self.token = token
        self.rows: list[tuple[datetime, int, dict[str, Any]]] = []  # (created, seq, raw)
        self.newest_first = True
        self.tie_by_id = False
        self.inclusive = True
        self.max_size = 100
        self.auth = "either"
        self.with_meta = True
        self.with_links = True
        self.faults: list[Any] = []
        self.on_page: Callable[[int], None] | None = None
        self.delay = 0.0
        self.requests: list[dict[str, str]] = []
        self.seq = 0

    # -- data -------------------------------------------------------------------------------
    def add(self, created: datetime, *, action: str = "created", subject_type: str = "transactions",
            metadata: dict[str, Any] | None = None, extra: bool = True) -> dict[str, Any]:
        aid = str(uuid.uuid4())
        raw: dict[str, Any] = {
            "type": "activities",
            "id": aid,
            "attributes": {
                "action": action,
                "previous": {} if action == "created" else {"amount": 1},
                "current": {"amount": 2, "nested": {"list": [1, 2.5, None, "é"]}},
                "diff": {"amount": [1, 2]},
                "metadata": metadata or {},
                "created-at": stamp(created),
                "updated-at": stamp(created),
            },
            "relationships": {
                "profile": {"data": {"type": "profiles", "id": "p-1"}},
                "author": {"data": {"type": "profiles", "id": "p-2"}},
                "application": {"data": {"type": "applications", "id": "app-1"}},
                "subject": {"data": {"type": subject_type, "id": f"s-{self.seq}"}},
            },
        }
        if extra:  # fields the documents do not mention
            raw["links"] = {"self": f"https://api.opentransact.com/v1/activities/{aid}"}
            raw["attributes"]["x-unknown"] = {"deep": [True, 0]}
        self.rows.append((created, self.seq, raw))
        self.seq += 1
        return raw

    def fill(self, count: int, per_second: int = 4, start: datetime = BASE, **kw: Any) -> list[dict[str, Any]]:
        return [self.add(start + timedelta(seconds=i // per_second), **kw) for i in range(count)]

    def newest(self) -> datetime:
        return max(r[0] for r in self.rows)

    @property
    def all_raw(self) -> list[dict[str, Any]]:
        return [r[2] for r in self.rows]

    # -- the API ----------------------------------------------------------------------------
    def _check_auth(self, header: str | None) -> None:
        if not header:
            raise Refused(401, 10002, "Missing Authorization header", "The Authorization header is missing")
        scheme, _, value = header.partition(" ")
        allowed = {"bearer": ("bearer",), "basic": ("basic",), "either": ("bearer", "basic")}[self.auth]
        if scheme.lower() not in allowed:
            raise Refused(401, 10004, "Invalid authorization scheme", f"Scheme {scheme!r} is not accepted")
        if value != self.token:
            raise Refused(401, 10003, "Invalid token", "The API key is not valid")

    def _time(self, params: dict[str, str], key: str) -> datetime | None:
        text = params.get(key)
        if text is None:
            return None
        if not STAMP.match(text):
            raise Refused(422, 10009, "Invalid timestamp", f"{key} must look like 2021-08-11T04:38:14Z, got {text!r}")
        return datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)

    def _int(self, params: dict[str, str], key: str, default: int) -> int:
        text = params.get(key)
        if text is None:
            return default
        if not text.isdigit() or int(text) < 1:
            raise Refused(422, 10007, "Invalid page parameter", f"{key} must be a positive integer")
        return int(text)

    def list_page(self, params: dict[str, str], url_base: str) -> dict[str, Any]:
        for key in params:
            if key not in KNOWN and not re.fullmatch(r"filter\[metadata\]\[[^\]]+\]", key):
                raise Refused(422, 10006, "Unknown parameter", f"{key} is not a known parameter")
        number = self._int(params, "page[number]", 1)
        size = min(self._int(params, "page[size]", 30), self.max_size)
        if self.on_page is not None:
            self.on_page(number)
        start = self._time(params, "filter[created-between][start]")
        finish = self._time(params, "filter[created-between][finish]")
        action = params.get("filter[action]")
        if action is not None and action not in ("created", "updated", "deleted"):
            raise Refused(422, 10008, "Invalid filter", "filter[action] must be created, updated or deleted")

        def keep(created: datetime, raw: dict[str, Any]) -> bool:
            if start is not None and (created < start or (not self.inclusive and created == start)):
                return False
            if finish is not None and (created > finish or (not self.inclusive and created == finish)):
                return False
            attrs_ = raw["attributes"]
            rel = raw["relationships"]
            checks = {
                "filter[action]": attrs_["action"],
                "filter[subject-type]": rel["subject"]["data"]["type"],
                "filter[subject-id]": rel["subject"]["data"]["id"],
                "filter[profile-id]": rel["profile"]["data"]["id"],
                "filter[application-id]": rel["application"]["data"]["id"],
            }
            for key, value in checks.items():
                if key in params and params[key] != value:
                    return False
            for key, value in params.items():
                m = re.fullmatch(r"filter\[metadata\]\[([^\]]+)\]", key)
                if m and str(attrs_["metadata"].get(m.group(1))) != value:
                    return False
            return True

        rows = [r for r in self.rows if keep(r[0], r[2])]
        tie = (lambda r: r[2]["id"]) if self.tie_by_id else (lambda r: r[1])
        rows.sort(key=lambda r: (r[0], tie(r)), reverse=self.newest_first)
        count = len(rows)
        pages = max(1, -(-count // size))
        body: dict[str, Any] = {"data": [r[2] for r in rows[(number - 1) * size : number * size]],
                                "jsonapi": {"version": "1.0"}}
        if self.with_meta:
            body["meta"] = {"current-page": number, "page-count": pages, "count": count}
        if self.with_links:
            others = [(k, v) for k, v in params.items() if k not in ("page[number]", "page[size]")]

            def link(n: int) -> str:
                return f"{url_base}?" + urlencode([("page[number]", n), ("page[size]", size), *others])

            links = {"self": link(number), "first": link(1), "last": link(pages)}
            if number > 1:
                links["prev"] = link(number - 1)
            if number < pages:
                links["next"] = link(number + 1)
            body["links"] = links
        return body

    # -- ASGI -------------------------------------------------------------------------------
    async def app(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
        from urllib.parse import parse_qsl

        params = dict(parse_qsl(scope["query_string"].decode(), keep_blank_values=True))
        self.requests.append({"path": scope["path"], "authorization": headers.get("authorization", ""),
                              "accept": headers.get("accept", ""), **params})
        fault = self.faults.pop(0) if self.faults else None
        if self.delay:
            await asyncio.sleep(self.delay)
        if fault == "slow":
            await asyncio.sleep(0.4)

        async def answer(status: int, body: bytes, extra: list[tuple[bytes, bytes]] = ()) -> None:  # type: ignore[assignment]
            await send({"type": "http.response.start", "status": status,
                        "headers": [(b"content-type", MEDIA.encode()),
                                    (b"content-length", str(len(body)).encode()), *extra]})
            await send({"type": "http.response.body", "body": body})

        if fault in (500, 502, 503):
            await answer(fault, b"<html>upstream trouble</html>")
            return
        if fault == "429":
            await answer(429, json.dumps({"errors": [{"status": "429", "title": "Too many requests"}]}).encode(),
                         [(b"retry-after", b"1")])
            return
        if fault == "429-date":
            when = email.utils.formatdate(time.time() + 1, usegmt=True)
            await answer(429, b"", [(b"retry-after", when.encode())])
            return
        if not scope["path"].rstrip("/").endswith("/v1/activities"):
            await answer(404, json.dumps(Refused(404, 10001, "Not found", "No such route").document()).encode())
            return
        try:
            self._check_auth(headers.get("authorization"))
            host = "https://api.opentransact.com/v1/activities"
            body = self.list_page(params, host)
        except Refused as exc:
            await answer(exc.status, json.dumps(exc.document()).encode())
            return
        data = json.dumps(body).encode()
        if fault == "error-200":
            await answer(200, json.dumps(Refused(503, 10000, "Unavailable", "try later").document()).encode())
            return
        if fault == "truncated":
            await answer(200, data[: len(data) // 2])
            return
        if fault == "reset":
            await send({"type": "http.response.start", "status": 200,
                        "headers": [(b"content-type", MEDIA.encode()), (b"content-length", str(len(data)).encode())]})
            await send({"type": "http.response.body", "body": data[:20], "more_body": True})
            raise ConnectionResetError("dropped mid-body")
        await answer(200, data)
