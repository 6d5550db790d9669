"""The fake provider's HTTP server and its log of every response it sent.

``FakeProvider`` serves OpenAI ``POST /v1/chat/completions`` and ``POST /v1/responses``, Anthropic
``POST /v1/messages`` (and, routed by path pattern, the Bedrock runtime and Gemini APIs:
``bedrock_api``, ``gemini_api``) on 127.0.0.1 and a free port, from a daemon thread. Each request
plays one scenario (see ``scenarios``), and each response is logged as a :class:`SentResponse` whose
``usage`` is read back from the bytes that were sent. A response's entry is in the log before its
client can have read the whole response, so a client that has finished its calls can read the log at
once.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import threading
import time
from collections.abc import Callable, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import ModuleType, TracebackType
from typing import Any, Final

from . import anthropic_api, bedrock_api, gemini_api, openai_api, responses_api
from .scenarios import (
    SCENARIO_HEADER,
    SCENARIOS,
    ErrorReply,
    JsonObject,
    Provider,
    Scenario,
    default_scenario,
)
from .wire import DONE, PathCall, Reply, encode_json

_POLL_INTERVAL_S: Final = 0.05
"""How often the serving thread looks for ``shutdown``: the worst-case shutdown delay."""

_ROUTES: Final[dict[str, Provider]] = {
    "/v1/chat/completions": "openai",
    "/v1/messages": "anthropic",
    "/v1/responses": "openai",  # issue 8: the OpenAI Responses API
}
# Routes whose replies another module than the provider's own (openai_api / anthropic_api) shapes.
_APIS: Final[dict[str, ModuleType]] = {"/v1/responses": responses_api}

_REQUEST_ID_HEADERS: Final = ("request-id", "x-request-id", "x-amzn-RequestId")
# APIs whose path names the model (and whether it streams): Bedrock runtime, Gemini.
_PATH_APIS: Final[tuple[tuple[Provider, Any], ...]] = (("bedrock", bedrock_api), ("gemini", gemini_api))

UsageReader = Callable[[JsonObject | Sequence[JsonObject | str]], tuple[object, list[object] | None]]
"""Reads the usage back from a sent body or from the data of every sent event."""


@dataclasses.dataclass(frozen=True)
class SentResponse:
    """One response the fake provider sent — the ground truth that recorded spans are compared with.

    ``response_id`` is the ``id`` of the completion / message (``gen_ai.response.id`` in most spans).
    ``usage`` is the usage object exactly as sent (for a stream: the final usage the client accumulates
    from it), ``stream_usage`` every usage object a stream carried in order, ``error`` the error body.
    """

    seq: int
    scenario: str
    provider: Provider
    path: str
    requested_model: str | None
    response_model: str | None
    response_id: str | None
    streaming: bool
    http_status: int
    request_id: str | None
    usage: object
    stream_usage: list[object] | None
    error: object

    def to_json(self) -> JsonObject:
        """The entry as a JSON object."""
        return dataclasses.asdict(self)


class FakeProvider:
    """A fake OpenAI + Anthropic API on 127.0.0.1; use as a context manager or call ``start``/``shutdown``.

    ``chunk_delay_s`` is slept before each streamed event, so that time-to-first-token and stream
    durations in recorded spans are plausible rather than zero.
    """

    def __init__(self, *, host: str = "127.0.0.1", port: int = 0, chunk_delay_s: float = 0.0) -> None:
        self._server = _Server((host, port), _Handler)
        self._server.provider = self
        self._chunk_delay_s = chunk_delay_s
        self._lock = threading.Lock()
        self._sent: list[SentResponse] = []
        self._seq = itertools.count(1)
        self._thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:<port>``: the Anthropic SDK's ``base_url``."""
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    @property
    def openai_base_url(self) -> str:
        """``http://127.0.0.1:<port>/v1``: the OpenAI SDK's ``base_url``."""
        return self.base_url + "/v1"

    @property
    def chunk_delay_s(self) -> float:
        """Seconds slept before each streamed event."""
        return self._chunk_delay_s

    def start(self) -> None:
        """Serve from a daemon thread; returns at once, the socket is already listening."""
        if self._thread is not None:
            return
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": _POLL_INTERVAL_S},
            name="fake-provider",
            daemon=True,
        )
        self._thread.start()

    def shutdown(self) -> None:
        """Stop serving and close the socket; idempotent."""
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join()
            self._thread = None
        self._server.server_close()

    def sent(self) -> list[SentResponse]:
        """Every response sent so far, in order."""
        with self._lock:
            return list(self._sent)

    def clear(self) -> None:
        """Forget the responses sent so far."""
        with self._lock:
            self._sent.clear()

    def __enter__(self) -> FakeProvider:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.shutdown()

    def _next_seq(self) -> int:
        with self._lock:
            return next(self._seq)

    def _log(self, entry: SentResponse) -> None:
        with self._lock:
            self._sent.append(entry)


def _path_route(path: str) -> tuple[Provider, Any, PathCall] | None:
    """The provider, API module and parsed path of a path-routed request, or None."""
    for provider, api in _PATH_APIS:
        if (call := api.match(path)) is not None:
            return provider, api, call
    return None


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    provider: FakeProvider


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Without TCP_NODELAY, Nagle + the client's delayed ACK hold small writes back ~40 ms, which shows up
    # as fake latency and time-to-first-token in recorded spans.
    disable_nagle_algorithm = True
    server: _Server

    def log_message(self, format: str, *args: object) -> None:
        """Stay quiet; the provider's log is ``FakeProvider.sent``."""

    def do_POST(self) -> None:
        """Answer a chat-completions or messages request."""
        route = self.path.split("?", 1)[0]
        provider = _ROUTES.get(route)
        length = int(self.headers.get("content-length") or 0)
        raw = self.rfile.read(length)
        path_route = _path_route(self.path)
        if provider is None and path_route is None:
            self._send_plain(404, {"error": {"message": f"unknown path {self.path}", "type": "not_found"}})
            return
        try:
            request = json.loads(raw or b"{}")
        except json.JSONDecodeError:
            request = None
        if not isinstance(request, dict):
            self._send_plain(400, {"error": {"message": "body is not a JSON object", "type": "invalid_request_error"}})
            return
        seq = self.server.provider._next_seq()
        if path_route is not None:
            path_provider, path_api, call = path_route
            scenario = self._scenario(path_provider, streaming=call.streaming)
            reply = path_api.build_reply(scenario, call, request, seq)
            self._send(reply, path_api.usage_as_sent, scenario.name, path_provider, call.model, seq)
            return
        assert provider is not None
        scenario = self._scenario(provider, streaming=request.get("stream") is True)
        api = _APIS.get(route) or (openai_api if provider == "openai" else anthropic_api)
        reply = api.build_reply(scenario, request, seq)
        model = request.get("model")
        self._send(reply, api.usage_as_sent, scenario.name, provider, model if isinstance(model, str) else None, seq)

    def _scenario(self, provider: Provider, *, streaming: bool) -> Scenario:
        name = self.headers.get(SCENARIO_HEADER)
        if name is None:
            return default_scenario(provider, streaming=streaming)
        scenario = SCENARIOS.get(name)
        if scenario is None or scenario.provider != provider:
            known = ", ".join(sorted(s for s, v in SCENARIOS.items() if v.provider == provider))
            message = f"{SCENARIO_HEADER}: unknown {provider} scenario {name!r}; known: {known}"
            error = ErrorReply(status=400, error_type="invalid_request_error", message=message)
            return Scenario(name=f"unknown:{name}", provider=provider, error=error)
        return scenario

    def _send(
        self,
        reply: Reply,
        read_usage: UsageReader,
        scenario: str,
        provider: Provider,
        model: str | None,
        seq: int,
    ) -> None:
        entry = SentResponse(
            seq=seq,
            scenario=scenario,
            provider=provider,
            path=self.path,
            requested_model=model,
            response_model=reply.response_model,
            response_id=reply.response_id,
            streaming=reply.streaming,
            http_status=reply.status,
            request_id=next((reply.headers[h] for h in _REQUEST_ID_HEADERS if h in reply.headers), None),
            usage=None,
            stream_usage=None,
            error=None,
        )
        self.send_response(reply.status)
        for name, value in reply.headers.items():
            self.send_header(name, value)
        if reply.body is not None:
            payload = encode_json(reply.body)
            sent = json.loads(payload)
            if reply.status == 200:
                usage, _ = read_usage(sent)
                entry = dataclasses.replace(entry, usage=usage)
            else:
                entry = dataclasses.replace(entry, error=sent)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(payload)))
            self.end_headers()
            self.server.provider._log(entry)
            self.wfile.write(payload)
            return
        self.send_header("content-type", reply.stream_content_type)
        self.send_header("cache-control", "no-cache")
        self.send_header("transfer-encoding", "chunked")
        self.end_headers()
        delay_s = self.server.provider.chunk_delay_s
        sent_data: list[JsonObject | str] = []
        for event in reply.events:
            if delay_s > 0:
                time.sleep(delay_s)
            self._write_chunk(event.encode())
            text = event.data_text()
            sent_data.append(text if text == DONE else json.loads(text))
        usage, stream_usage = read_usage(sent_data)
        self.server.provider._log(dataclasses.replace(entry, usage=usage, stream_usage=stream_usage))
        self._write_chunk(b"")

    def _write_chunk(self, data: bytes) -> None:
        """One HTTP/1.1 chunk; an empty one ends the body."""
        self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
        self.wfile.flush()

    def _send_plain(self, status: int, body: JsonObject) -> None:
        payload = encode_json(body)
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)
