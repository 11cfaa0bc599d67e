"""Every transport under ``ctx.http`` behaves the same on the wire, on both backends (real loopback HTTP).

The transports: httpx's own pool, :class:`~tidings._connections.ConnectionsTransport` (httpcore
connections, any backend) and :class:`~tidings._transport.AiohttpTransport` (asyncio only, so it
is not paired with trio). Each case goes through :class:`tidings.HTTP`, as a plugin's requests do.
"""

from __future__ import annotations

import asyncio
import gzip
import json
import socket
import struct
import threading
from collections.abc import Callable, Iterator
from typing import Any

import anyio
import httpx
import pytest
import tidings
from tidings import HTTP
from tidings._connections import ConnectionsTransport
from tidings._serve import serve_asgi
from tidings._transport import AiohttpTransport, default_transport, transport_name

pytestmark = pytest.mark.anyio

MAKERS: dict[str, Callable[[int], httpx.AsyncBaseTransport]] = {
    "httpx": lambda n: httpx.AsyncHTTPTransport(limits=httpx.Limits(max_connections=n)),
    "httpcore": lambda n: ConnectionsTransport(limits=httpx.Limits(max_connections=n)),
    "aiohttp": lambda n: AiohttpTransport(limits=httpx.Limits(max_connections=n)),
}
CASES = [("asyncio", "httpx"), ("asyncio", "httpcore"), ("asyncio", "aiohttp"), ("trio", "httpx"), ("trio", "httpcore")]


@pytest.fixture(params=CASES, ids=[f"{b}-{t}" for b, t in CASES])
def case(request: pytest.FixtureRequest) -> tuple[str, str]:
    return request.param  # type: ignore[no-any-return]


@pytest.fixture
def anyio_backend(case: tuple[str, str]) -> str:
    return case[0]


@pytest.fixture
def make(case: tuple[str, str]) -> Callable[[int], httpx.AsyncBaseTransport]:
    return MAKERS[case[1]]


class App:
    """A raw ASGI app with one route per behaviour; remembers the client ports and the hits."""

    def __init__(self) -> None:
        self.ports: set[int] = set()
        self.hits: dict[str, int] = {}

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        path = scope["path"]
        self.hits[path] = self.hits.get(path, 0) + 1
        self.ports.add(scope["client"][1])
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break

        async def answer(status: int, content: bytes, *headers: tuple[bytes, bytes], more: bool = False) -> None:
            await send({"type": "http.response.start", "status": status, "headers": list(headers)})
            await send({"type": "http.response.body", "body": content, "more_body": more})

        if path == "/echo":
            echoed = {"method": scope["method"], "query": scope["query_string"].decode(), "body": body.decode(),
                      "headers": {k.decode(): v.decode() for k, v in scope["headers"]}}
            await answer(200, json.dumps(echoed).encode(), (b"content-type", b"application/json"))
        elif path == "/big":
            await answer(200, b"x" * 5000, (b"content-length", b"5000"))
        elif path == "/stream-big":  # no length: the cap must count the bytes as they come
            await send({"type": "http.response.start", "status": 200, "headers": []})
            for _ in range(20):
                await send({"type": "http.response.body", "body": b"y" * 500, "more_body": True})
            await send({"type": "http.response.body", "body": b""})
        elif path in ("/gzip", "/bomb"):
            plain = b'{"ok": true}' if path == "/gzip" else b"0" * 1_000_000
            await answer(200, gzip.compress(plain), (b"content-encoding", b"gzip"))
        elif path == "/slow":
            await asyncio.sleep(1.5)
            await answer(200, b"late")
        elif path == "/redirect":
            await answer(302, b"", (b"location", b"/target"))
        elif path == "/busy":
            await answer(429, b"slow down", (b"retry-after", b"7"))
        else:
            await answer(200, b'{"ok": true}', (b"content-type", b"application/json"))


@pytest.fixture(scope="module")
def app_url() -> Iterator[tuple[App, str]]:
    app = App()
    with serve_asgi(app, name="transport test app") as url:
        yield app, url


def http_for(make: Callable[[int], httpx.AsyncBaseTransport], url: str, n: int = 4, **kwargs: Any) -> HTTP:
    return HTTP(provider="p", base_url=url, transport=make(n), **kwargs)


async def test_requests_and_answers_arrive_whole(make: Any, app_url: tuple[App, str]) -> None:
    http = http_for(make, app_url[1], auth=tidings.BearerToken("tok-1"))
    response = await http.request("POST", "echo", params={"q": "a/b", "n": "1 2"}, json={"k": "é"},
                                  headers={"X-Trace": "t1"})
    echoed = http.json(response)
    assert echoed["method"] == "POST" and echoed["query"] == "q=a%2Fb&n=1+2"
    assert json.loads(echoed["body"]) == {"k": "é"}
    assert echoed["headers"]["authorization"] == "Bearer tok-1" and echoed["headers"]["x-trace"] == "t1"
    assert response.status_code == 200 and response.headers["content-type"] == "application/json"
    assert http.json(await http.request("GET", "gzip")) == {"ok": True}  # decoded by httpx, whatever carries it
    await http.aclose()


async def test_the_pool_reuses_at_most_its_connections(make: Any, app_url: tuple[App, str]) -> None:
    app, url = app_url
    http = http_for(make, url, n=3)
    before = set(app.ports)
    async with anyio.create_task_group() as tg:
        for i in range(30):
            tg.start_soon(http.get_json, f"ok/{i}")
    assert 1 <= len(app.ports - before) <= 3
    await http.aclose()


async def test_bodies_over_the_cap_are_refused_and_the_next_request_works(
    make: Any, app_url: tuple[App, str]
) -> None:
    http = http_for(make, app_url[1], n=1, max_body_bytes=1000)
    for path in ("big", "stream-big", "bomb"):
        with pytest.raises(tidings.ResponseTooLarge, match="over the cap of 1000"):
            await http.request("GET", path)
        assert http.json(await http.request("GET", "ok")) == {"ok": True}
    await http.aclose()


async def test_a_slow_answer_times_out_as_a_transient_fault(make: Any, app_url: tuple[App, str]) -> None:
    http = http_for(make, app_url[1], timeout=httpx.Timeout(0.3))
    with pytest.raises(tidings.TransientError) as info:
        await http.request("GET", "slow")
    assert isinstance(info.value.__cause__, httpx.TimeoutException)
    assert info.value.__cause__.__class__.__name__ in info.value.message
    await http.aclose()


async def test_a_refused_connection_is_a_transient_connect_error(make: Any) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # nothing listens once it is closed
    http = http_for(make, f"http://127.0.0.1:{port}")
    with pytest.raises(tidings.TransientError, match="ConnectError") as info:
        await http.request("GET", "x")
    assert isinstance(info.value.__cause__, httpx.ConnectError)
    await http.aclose()


async def test_redirects_are_returned_not_followed_and_links_stay_on_the_host(
    make: Any, app_url: tuple[App, str]
) -> None:
    app, url = app_url
    http = http_for(make, url)
    target_hits = app.hits.get("/target", 0)
    response = await http.request("GET", "redirect")
    assert response.status_code == 302 and response.headers["location"] == "/target"
    assert app.hits.get("/target", 0) == target_hits
    with pytest.raises(tidings.ForeignHostError):
        await http.request("GET", "https://elsewhere.test/x")
    await http.aclose()


async def test_retry_after_is_read_from_a_busy_answer(make: Any, app_url: tuple[App, str]) -> None:
    http = http_for(make, app_url[1])
    with pytest.raises(tidings.TransientError) as info:
        await http.request("GET", "busy")
    assert info.value.retry_after == 7
    await http.aclose()


class RawServer:
    """A TCP server that treats each connection by the next behaviour in a list (then answers normally).

    ``reset``: read the request, then close with a TCP reset. ``truncate``: promise 100 bytes,
    send 10, close. ``close``: answer, say ``Connection: close`` and close. ``once``: answer as if
    the connection stayed open, then close it.
    """

    def __init__(self, behaviours: list[str]) -> None:
        self.behaviours = list(behaviours)
        self.connections = 0
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.connections += 1
            behaviour = self.behaviours.pop(0) if self.behaviours else "ok"
            threading.Thread(target=self._serve, args=(conn, behaviour), daemon=True).start()

    def _serve(self, conn: socket.socket, behaviour: str) -> None:
        with conn:
            while True:
                data = b""
                while b"\r\n\r\n" not in data:
                    chunk = conn.recv(65536)
                    if not chunk:
                        return
                    data += chunk
                if behaviour == "reset":
                    conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                    return
                if behaviour == "truncate":
                    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n0123456789")
                    return
                closing = b"Connection: close\r\n" if behaviour == "close" else b""
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n" + closing
                             + b"Content-Length: 11\r\n\r\n{\"ok\": 1}  ")
                if behaviour in ("close", "once"):
                    return

    def close(self) -> None:
        self.sock.close()


@pytest.mark.parametrize("behaviours", [["reset"], ["truncate"], ["once"]])
async def test_a_broken_connection_is_transient_and_the_next_request_reconnects(
    make: Any, behaviours: list[str]
) -> None:
    server = RawServer(behaviours)
    http = http_for(make, server.url, n=1)
    if behaviours[0] == "once":  # a kept-alive connection the server then drops: the pool must notice
        assert http.json(await http.request("GET", "a")) == {"ok": 1}
        await anyio.sleep(0.05)
    for _ in range(3):
        try:
            assert http.json(await http.request("GET", "b")) == {"ok": 1}
            break
        except tidings.TransientError as exc:
            assert isinstance(exc.__cause__, httpx.TransportError)
    else:
        pytest.fail("never recovered")
    await http.aclose()
    server.close()


async def test_a_server_that_closes_after_each_answer_is_followed(make: Any) -> None:
    server = RawServer(["close", "close", "close"])
    http = http_for(make, server.url, n=1)
    for _ in range(4):
        assert http.json(await http.request("GET", "x")) == {"ok": 1}
    assert server.connections == 4
    await http.aclose()
    server.close()


# -- choosing the transport --------------------------------------------------------------------


async def test_the_default_is_aiohttp_on_asyncio_and_httpcore_on_trio(
    anyio_backend: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("TIDINGS_HTTP_TRANSPORT", raising=False)
    monkeypatch.delenv("HTTP_PROXY", raising=False)
    monkeypatch.delenv("http_proxy", raising=False)
    transport = default_transport("http://api.test", 7)
    expected = AiohttpTransport if anyio_backend == "asyncio" else ConnectionsTransport
    assert isinstance(transport, expected)
    monkeypatch.setenv("TIDINGS_HTTP_TRANSPORT", "httpx")
    assert isinstance(default_transport("http://api.test", 7), httpx.AsyncHTTPTransport)
    monkeypatch.setenv("TIDINGS_HTTP_TRANSPORT", "HTTPcore")
    assert isinstance(default_transport("http://api.test", 7), ConnectionsTransport)
    monkeypatch.setenv("TIDINGS_HTTP_TRANSPORT", "curl")
    with pytest.raises(tidings.ConfigurationError, match=r"unknown HTTP transport 'curl'.*auto, aiohttp"):
        transport_name()
    if anyio_backend == "trio":
        with pytest.raises(tidings.ConfigurationError, match="asyncio only"):
            transport_name("aiohttp")
    monkeypatch.delenv("TIDINGS_HTTP_TRANSPORT")
    monkeypatch.setenv("HTTP_PROXY", "http://proxy.test:3128")  # httpx's own transports honour a proxy
    assert default_transport("http://api.test", 7) is None
    assert default_transport("https://api.test", 7) is not None  # the proxy is for http:// only


def test_loopback_servers_answer_without_nagle_delays() -> None:
    """serve_asgi (emulators, webhook receivers) sends headers and body in two writes; with Nagle's
    algorithm on, the body waited for the client's delayed ACK: about 40 ms an answer."""
    import time

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"2")]})
            await send({"type": "http.response.body", "body": b"ok"})

    with serve_asgi(app, name="nagle test") as url:
        host, port = url.removeprefix("http://").split(":")
        with socket.create_connection((host, int(port))) as conn:
            began = time.perf_counter()
            for _ in range(20):
                conn.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
                data = b""
                while not data.endswith(b"ok"):
                    data += conn.recv(4096)
            took = time.perf_counter() - began
    assert took < 0.4, f"20 answers took {took:.2f}s"  # about 0.8 s with Nagle on, a few ms without
