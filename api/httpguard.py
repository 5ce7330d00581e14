"""HTTP limits below the application: head size and count, body size, read timeouts, and
caps on connections and requests in flight.

uvicorn's own knobs do not bound what a client can make the server hold: with httptools (the
parser `uvicorn[standard]` selects) there is no limit on the size or number of headers,
`h11_max_incomplete_event_size` applies only to the h11 parser, `timeout_keep_alive` stops as
soon as one byte arrives, and nothing times out a head or a body that never finishes. So this
module subclasses uvicorn's httptools protocol and adds, per connection
(docs/architecture.md, "Trust boundaries"; settings `VWE_HTTP_*`):

- head (request line + headers) of at most `max_header_bytes` and `max_headers` headers, else
  431; bytes are counted before they reach the parser, which buffers a header until it ends;
- a declared `Content-Length` or a chunked body beyond `max_body_bytes`: 413 at once;
- a head not complete `header_timeout_s` after the connection opened or the previous response
  ended: 408 and close; a body not complete `body_timeout_s` after its head: 408 and close;
- more than `max_connections` open connections: the new one gets 503 and is closed; more than
  `max_concurrency` requests in flight: 503 with Retry-After (uvicorn's `limit_concurrency`
  counts idle keep-alive connections too and answers in plain text, so it is not used);
  the operator's probes (`/healthz`, `/readyz`, `/metrics`) have `PROBE_RESERVE` slots of
  their own above that cap, so open long-polls cannot make a health check or a scrape fail
  and a busy daemon look dead to its orchestrator and its alerts.

Every such answer is the API's error model, ``{"error": {"code", "message"}}``, and is
counted in `vwe_http_requests_total` with the route label `refused` (the guard answers before
any route is matched; the method is `unknown` when none was read). After an error
the connection is half-closed and whatever the client still sends is read and dropped for a
moment (as nginx's lingering close does), so a client busy sending a huge head still gets to
read the status instead of a reset.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httptools
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

from pool.infra.settings import Settings

# Seconds a refused connection keeps draining what the client still sends before closing.
LINGER_S = 2.0
RETRY_AFTER_S = 1
# Paths answered within PROBE_RESERVE extra requests in flight once the cap is reached.
PROBE_PATHS = frozenset({b"/healthz", b"/readyz", b"/metrics"})
PROBE_RESERVE = 16


@dataclass(frozen=True)
class HttpLimits:
    """The limits (settings `VWE_HTTP_*`; defaults in config/settings.env.example).

    Sizes are bytes, timeouts seconds, counts ints."""

    max_header_bytes: int = 16 * 1024
    max_headers: int = 100
    max_body_bytes: int = 64 * 1024
    header_timeout_s: float = 10.0
    body_timeout_s: float = 10.0
    max_connections: int = 1024
    max_concurrency: int = 256


def error_response(status: int, code: str, message: str,
                   extra: tuple[tuple[bytes, bytes], ...] = ()) -> bytes:
    """A complete HTTP/1.1 response with the error model as its body, closing the connection."""
    body = json.dumps({"error": {"code": code, "message": message}}).encode()
    head = [STATUS_LINE[status], b"content-type: application/json\r\n",
            b"content-length: %d\r\n" % len(body), b"connection: close\r\n"]
    head += [name + b": " + value + b"\r\n" for name, value in extra]
    return b"".join([*head, b"\r\n", body])


class _Refuse(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


# Told of every answer the guard gives itself: (method or "unknown", status).
OnRefusal = Callable[[str, int], None]


def _ignore(_method: str, _status: int) -> None:
    pass


def _busy_app(limit: int, on_refusal: OnRefusal = _ignore) -> Any:
    body = json.dumps({"error": {"code": "server_busy", "message": (
        f"more than {limit} requests in flight; retry in {RETRY_AFTER_S} s")}}).encode()

    async def busy(scope: Any, receive: Any, send: Any) -> None:
        on_refusal(scope.get("method", "unknown"), 503)
        await send({"type": "http.response.start", "status": 503, "headers": [
            (b"content-type", b"application/json"), (b"content-length", b"%d" % len(body)),
            (b"retry-after", str(RETRY_AFTER_S).encode()), (b"connection", b"close")]})
        await send({"type": "http.response.body", "body": body})

    return busy


class GuardedHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with the limits of `HttpLimits` (see the module doc)."""

    limits = HttpLimits()
    # staticmethod: a plain function stored on a class would be called as a bound method
    # (the protocol instance as `scope`), which made every refused request a 500.
    busy_app: Any = staticmethod(_busy_app(HttpLimits.max_concurrency))
    on_refusal: OnRefusal = staticmethod(_ignore)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._in_head = True  # the parser waits for (the rest of) a request head
        self._head_bytes = 0  # bytes of whole chunks fed while in the head
        self._head_size = 0  # url + header names and values, as parsed
        self._header_count = 0
        self._body_bytes = 0
        self._body_deadline = 0.0
        self._head_timer: asyncio.TimerHandle | None = None
        self._body_timer: asyncio.TimerHandle | None = None
        self._refusal: _Refuse | None = None
        self._lingering = False
        # Set once the parser has read a request line's method (before that, the parser
        # reports DELETE: method number 0).
        self._request_method = ""

    # ---- connection ----
    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        if len(self.connections) > self.limits.max_connections:
            self._refuse(503, "too_many_connections",
                         f"more than {self.limits.max_connections} open connections; retry "
                         f"in {RETRY_AFTER_S} s", ((b"retry-after", str(RETRY_AFTER_S).encode()),))
            return
        self._arm_head_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_timers()
        super().connection_lost(exc)

    def _cancel_timers(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None
        if self._body_timer is not None:
            self._body_timer.cancel()
            self._body_timer = None

    def _arm_head_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
        self._head_timer = self.loop.call_later(self.limits.header_timeout_s, self._head_timeout)

    def data_received(self, data: bytes) -> None:
        if self._lingering:
            return  # after an error answer: read and drop
        if self._in_head and self._head_bytes >= self.limits.max_header_bytes:
            self._refuse_head_size()
            return
        self._unset_keepalive_if_required()
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            # As uvicorn does: this API has no WebSocket route, so it only warns.
            if self._should_upgrade():
                self.handle_websocket_upgrade()
            else:
                self._unsupported_upgrade_warning()
            return
        except httptools.HttpParserError:
            refusal, self._refusal = self._refusal, None
            if refusal is not None:
                self._refuse(refusal.status, refusal.code, refusal.message)
            else:
                self.logger.warning("Invalid HTTP request received.")
                self._refuse(400, "bad_request", "the request is not valid HTTP/1.1")
            return
        if self._in_head:
            self._head_bytes += len(data)
        elif self._body_deadline and self._body_timer is None:
            # Armed only when a body did not arrive with its head (rare for a valid client).
            self._body_timer = self.loop.call_at(self._body_deadline, self._body_timeout)

    def _refuse_head_size(self) -> None:
        self._refuse(431, "headers_too_large",
                     f"request line and headers are limited to {self.limits.max_header_bytes} "
                     "bytes")

    def _refuse(self, status: int, code: str, message: str,
                extra: tuple[tuple[bytes, bytes], ...] = ()) -> None:
        """Answer an error now (unless a response already started), half-close, then drop
        whatever else arrives for LINGER_S before closing."""
        self._cancel_timers()
        cycle = self.cycle
        started = cycle is not None and not cycle.response_complete and cycle.response_started
        if cycle is not None and not cycle.response_complete:
            # The application's task must not write after this; it sees a disconnect.
            cycle.disconnected = True
            cycle.message_event.set()
        if self.transport.is_closing():
            return
        # A head timeout on a connection idle between requests is no request: not counted.
        if status != 408 or self._head_bytes or not self._in_head:
            self.on_refusal(self._request_method or "unknown", status)
        self._lingering = True
        if started:
            self.transport.close()
            return
        self.transport.write(error_response(status, code, message, extra))
        if self.transport.can_write_eof():
            self.transport.write_eof()
            self.loop.call_later(LINGER_S, self._close)
        else:
            self.transport.close()

    def _close(self) -> None:
        if not self.transport.is_closing():
            self.transport.close()

    def _head_timeout(self) -> None:
        self._head_timer = None
        if self.cycle is not None and not self.cycle.response_complete:
            return  # a response is under way; on_response_complete re-arms
        self._refuse(408, "request_timeout",
                     f"the request head did not arrive within {self.limits.header_timeout_s} s")

    def _body_timeout(self) -> None:
        self._body_timer = None
        self._refuse(408, "request_timeout",
                     f"the request body did not arrive within {self.limits.body_timeout_s} s")

    # ---- parser callbacks ----
    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._in_head = True
        self._head_size = self._header_count = self._body_bytes = 0
        self._body_deadline = 0.0
        self._request_method = ""

    def on_url(self, url: bytes) -> None:
        # The method is parsed before the first piece of the URL: known from here on.
        self._request_method = self.parser.get_method().decode("ascii", "replace")
        self._head_size += len(url)
        if self._head_size > self.limits.max_header_bytes:
            self._refusal = _Refuse(431, "headers_too_large", "the request line is too long")
            raise self._refusal
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._header_count += 1
        self._head_size += len(name) + len(value) + 4
        if self._header_count > self.limits.max_headers:
            self._refusal = _Refuse(431, "too_many_headers",
                                    f"requests may carry at most {self.limits.max_headers} "
                                    "headers")
            raise self._refusal
        if self._head_size > self.limits.max_header_bytes:
            self._refusal = _Refuse(431, "headers_too_large",
                                    "request line and headers are limited to "
                                    f"{self.limits.max_header_bytes} bytes")
            raise self._refusal
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self._in_head = False
        self._head_bytes = 0
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None
        length = _declared_length(self.headers)
        if length is not None and length > self.limits.max_body_bytes:
            self._refusal = _Refuse(413, "body_too_large",
                                    f"request bodies are limited to {self.limits.max_body_bytes} "
                                    "bytes")
            raise self._refusal
        self._body_deadline = self.loop.time() + self.limits.body_timeout_s
        in_flight, cap = len(self.tasks), self.limits.max_concurrency
        if in_flight >= cap and (in_flight >= cap + PROBE_RESERVE
                                 or self.url.split(b"?", 1)[0] not in PROBE_PATHS):
            app, self.app = self.app, self.busy_app
            try:
                super().on_headers_complete()
            finally:
                self.app = app
            return
        super().on_headers_complete()

    def on_body(self, body: bytes) -> None:
        self._body_bytes += len(body)
        if self._body_bytes > self.limits.max_body_bytes:
            self._refusal = _Refuse(413, "body_too_large",
                                    f"request bodies are limited to {self.limits.max_body_bytes} "
                                    "bytes")
            raise self._refusal
        super().on_body(body)

    def on_message_complete(self) -> None:
        self._body_deadline = 0.0
        if self._body_timer is not None:
            self._body_timer.cancel()
            self._body_timer = None
        super().on_message_complete()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing() and not self.pipeline:
            self._arm_head_timer()


def _declared_length(headers: list[tuple[bytes, bytes]]) -> int | None:
    for name, value in headers:
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


def protocol_class(limits: HttpLimits, on_refusal: OnRefusal = _ignore
                   ) -> type[GuardedHttpToolsProtocol]:
    """A protocol class bound to ``limits``, for ``uvicorn.Config(http=...)``; `on_refusal`
    is told of each answer the guard gives itself (method, status)."""
    return type("GuardedHttpToolsProtocol", (GuardedHttpToolsProtocol,),
                {"limits": limits, "on_refusal": staticmethod(on_refusal),
                 "busy_app": staticmethod(_busy_app(limits.max_concurrency, on_refusal))})


def limits_from(settings: Settings) -> HttpLimits:
    """The `VWE_HTTP_*` settings as `HttpLimits`."""
    return HttpLimits(
        max_header_bytes=settings.http_max_header_bytes, max_headers=settings.http_max_headers,
        max_body_bytes=settings.http_max_body_bytes,
        header_timeout_s=settings.http_header_timeout_s,
        body_timeout_s=settings.http_body_timeout_s,
        max_connections=settings.http_max_connections,
        max_concurrency=settings.http_max_concurrency)


def server_options(settings: Settings, on_refusal: OnRefusal = _ignore) -> dict[str, Any]:
    """uvicorn.Config keyword arguments for the guarded protocol (what `vwe-pool serve` uses)."""
    return {"http": protocol_class(limits_from(settings), on_refusal),
            # Only read by the h11 parser, which the guarded protocol replaces; set anyway so
            # a configuration that falls back to h11 keeps the same head limit.
            "h11_max_incomplete_event_size": settings.http_max_header_bytes}
