"""The HTTP server's own limits, against a real `vwe-pool serve` over real sockets: huge or
endless requests cost bounded memory and time, cross-site writes and CORS are refused."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Callable

import httpx
import pytest
from apiclient import eventually, metric, submit
from conftest import DaemonProcess

pytestmark = pytest.mark.integration

TIMEOUT_S = 2.0
HUGE = 32 << 20


def rss_bytes(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


def exchange(port: int, data: bytes, read_timeout: float = 10) -> tuple[bytes, float]:
    """Send ``data`` (as far as the server reads it), then read until the server closes;
    returns the answer and the seconds until the server closed."""
    started = time.monotonic()
    with socket.create_connection(("127.0.0.1", port)) as s:
        s.settimeout(read_timeout)
        # The server may stop reading (its answer is still readable below).
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            s.sendall(data)
        answer = b""
        try:
            while chunk := s.recv(65536):
                answer += chunk
        except ConnectionResetError:
            pass
        return answer, time.monotonic() - started


def status_of(answer: bytes) -> int:
    assert answer.startswith(b"HTTP/1.1 "), answer[:200]
    return int(answer[9:12])


@pytest.fixture
def api(daemon_factory: Callable[..., DaemonProcess]) -> DaemonProcess:
    return daemon_factory(VWE_HTTP_HEADER_TIMEOUT_S=str(TIMEOUT_S),
                          VWE_HTTP_BODY_TIMEOUT_S=str(TIMEOUT_S),
                          VWE_API_TOKEN="tok").start(role="api")


def test_huge_headers_cost_bounded_memory(api: DaemonProcess) -> None:
    assert api.proc is not None
    for _ in range(20):  # warm up the routes and allocator
        assert httpx.get(f"{api.url}/v1/pool", timeout=10).status_code == 200
    idle = rss_bytes(api.proc.pid)
    peak = idle
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not done.is_set():
            peak = max(peak, rss_bytes(api.proc.pid))  # type: ignore[union-attr]
            time.sleep(0.01)

    request = b"GET /v1/pool HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * HUGE + b"\r\n\r\n"
    answers: list[bytes] = []
    sampler = threading.Thread(target=sample)
    sampler.start()
    threads = [threading.Thread(target=lambda: answers.append(exchange(api.port, request)[0]))
               for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    done.set()
    sampler.join()
    assert len(answers) == 8
    assert all(status_of(a) in (400, 431) for a in answers), [a[:60] for a in answers]
    assert b"headers_too_large" in answers[0]
    assert peak - idle <= 20 << 20, f"RSS rose {(peak - idle) >> 20} MiB over idle"


def test_too_many_headers_are_refused(api: DaemonProcess) -> None:
    headers = b"".join(b"X-H%d: 1\r\n" % i for i in range(10_000))
    answer, _ = exchange(api.port, b"GET /healthz HTTP/1.1\r\nHost: x\r\n" + headers + b"\r\n")
    assert status_of(answer) == 431 and b"too_many_headers" in answer


@pytest.mark.parametrize("request_bytes", [
    b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: 1\r\n",  # the head never ends
    b"POST /v1/worlds HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
    b"Content-Length: 100\r\n\r\n{\"seed\"",  # body shorter than its Content-Length
    b"POST /v1/worlds HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
    b"Transfer-Encoding: chunked\r\n\r\n5\r\n{\"see\r\n",  # chunked body never finished
], ids=["head", "short-body", "chunked"])
def test_slow_requests_are_closed_within_the_timeout(api: DaemonProcess,
                                                     request_bytes: bytes) -> None:
    answer, elapsed = exchange(api.port, request_bytes, read_timeout=TIMEOUT_S + 10)
    assert status_of(answer) == 408 and b"request_timeout" in answer, answer
    assert TIMEOUT_S - 0.5 <= elapsed <= TIMEOUT_S + 3, elapsed


def test_an_idle_connection_is_closed_too(api: DaemonProcess) -> None:
    _, elapsed = exchange(api.port, b"", read_timeout=TIMEOUT_S + 10)
    assert elapsed <= TIMEOUT_S + 3


def test_a_declared_huge_body_is_refused_before_it_is_read(api: DaemonProcess) -> None:
    answer, _ = exchange(api.port, b"POST /v1/worlds HTTP/1.1\r\nHost: x\r\nContent-Type: "
                                   b"application/json\r\nContent-Length: 999999999\r\n\r\n{")
    assert status_of(answer) == 413 and b"body_too_large" in answer


@pytest.mark.parametrize("content_type", [None, "text/plain",
                                          "application/x-www-form-urlencoded",
                                          "multipart/form-data; boundary=x"])
def test_writes_take_json_only(api: DaemonProcess, content_type: str | None) -> None:
    headers = {"content-type": content_type} if content_type else {}
    r = httpx.post(f"{api.url}/v1/worlds", content=b'{"seed": "plain"}', headers=headers)
    assert r.status_code == 415 and r.json()["error"]["code"] == "unsupported_media_type"
    r = httpx.patch(f"{api.url}/v1/pool", content=b'{"size": 1}',
                    headers={**headers, "Authorization": "Bearer tok"})
    assert r.status_code == 415, r.text
    ok = httpx.post(f"{api.url}/v1/worlds", content=b'{"seed": "plain"}',
                    headers={"content-type": "application/json; charset=utf-8"})
    assert ok.status_code == 202


def test_patch_checks_the_token_before_the_body(api: DaemonProcess) -> None:
    r = httpx.patch(f"{api.url}/v1/pool", content=b"{not json",
                    headers={"content-type": "text/plain"})
    assert r.status_code == 401 and r.json()["error"]["code"] == "unauthorized"
    r = httpx.patch(f"{api.url}/v1/pool", content=b"{not json",
                    headers={"content-type": "application/json", "Authorization": "Bearer tok"})
    assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_json"
    r = httpx.patch(f"{api.url}/v1/pool", json={"legacy": 1, "autoscale": 0},
                    headers={"Authorization": "Bearer tok"})
    assert r.status_code == 422 and "autoscale" in r.json()["error"]["message"]


def test_no_cors_by_default_and_a_true_allow_header(api: DaemonProcess) -> None:
    r = httpx.get(f"{api.url}/v1/pool", headers={"Origin": "http://elsewhere.invalid"})
    assert r.status_code == 200 and "access-control-allow-origin" not in r.headers
    r = httpx.options(f"{api.url}/v1/pool", headers={
        "Origin": "http://elsewhere.invalid", "Access-Control-Request-Method": "PATCH"})
    assert r.status_code == 405 and "access-control-allow-origin" not in r.headers
    assert set(r.headers["allow"].split(", ")) >= {"GET", "PATCH"}


def test_cors_origins_setting_allows_the_viewer_origin(
        daemon_factory: Callable[..., DaemonProcess]) -> None:
    d = daemon_factory(VWE_CORS_ORIGINS="http://viewer.invalid").start(role="api")
    pre = httpx.options(f"{d.url}/v1/worlds", headers={
        "Origin": "http://viewer.invalid", "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "content-type"})
    assert pre.status_code == 200
    assert pre.headers["access-control-allow-origin"] == "http://viewer.invalid"
    other = httpx.get(f"{d.url}/v1/pool", headers={"Origin": "http://elsewhere.invalid"})
    assert "access-control-allow-origin" not in other.headers


def test_requests_past_the_concurrency_limit_get_503_but_probes_still_answer(
        daemon_factory: Callable[..., DaemonProcess]) -> None:
    d = daemon_factory(VWE_HTTP_MAX_CONCURRENCY="2").start(role="api")
    job_id = submit(d.url, "waiting").json()["job_id"]  # queued for good: no daemon runs it

    def long_poll() -> None:
        # Retried when refused: a probe below can take a slot before this poll arrives.
        while httpx.get(f"{d.url}/v1/jobs/{job_id}", params={"wait": 12},
                        timeout=20).status_code == 503:
            time.sleep(0.05)

    polls = [threading.Thread(target=long_poll) for _ in range(2)]
    for t in polls:
        t.start()
    # Once both long-polls are in flight, a third request is refused...
    busy = eventually(lambda: (r := httpx.get(f"{d.url}/v1/jobs/{job_id}", timeout=5)
                               ).status_code == 503 and r, timeout=8, interval=0.05)
    assert busy.json()["error"]["code"] == "server_busy"
    assert busy.headers["retry-after"] == "1"
    # ... while the operator's probes have slots of their own: a busy daemon is not a dead one.
    for probe in ("/healthz", "/readyz", "/metrics"):
        assert httpx.get(f"{d.url}{probe}", timeout=5).status_code == 200, probe
    assert httpx.get(f"{d.url}/v1/jobs/{job_id}", timeout=5).status_code == 503
    assert (metric(d.url, "vwe_http_requests_total", method="GET", route="refused",
                   code="503") or 0) >= 2
    for t in polls:
        t.join(20)
    assert httpx.get(f"{d.url}/v1/jobs/{job_id}", timeout=5).status_code == 200


def test_the_guards_answers_are_counted_in_the_request_metric(api: DaemonProcess) -> None:
    def refused(method: str, code: str) -> float:
        return metric(api.url, "vwe_http_requests_total", method=method, route="refused",
                      code=code) or 0.0

    exchange(api.port, b"POST /v1/worlds HTTP/1.1\r\nHost: x\r\nContent-Type: "
                       b"application/json\r\nContent-Length: 999999999\r\n\r\n{")
    exchange(api.port, b"GET /healthz HTTP/1.1\r\nHost: x\r\n"
             + b"".join(b"X-H%d: 1\r\n" % i for i in range(1000)) + b"\r\n")
    exchange(api.port, b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: 1\r\n",
             read_timeout=TIMEOUT_S + 10)
    exchange(api.port, b"", read_timeout=TIMEOUT_S + 10)  # idle: closed, but no request
    assert refused("POST", "413") == 1
    assert refused("GET", "431") == 1
    assert refused("GET", "408") == 1
    assert refused("unknown", "408") == 0
