"""The composition root: builds the process and owns its life (docs/architecture.md, "Process").

`Root` builds the Redis clients, the stores, the Docker runtime, the daemon and the HTTP app,
starts them, owns SIGINT/SIGTERM, and shuts down in one fixed order (`Root.shutdown`, a
checklist of named steps), carrying out every step even when an earlier one (or a component)
failed; a failed step is logged with its name:

1. stop HTTP intake (stop listening, let open requests finish for a few seconds);
2. stop taking jobs (the dispatcher loop, the supervised loops and the schedule end);
3. drain in-flight jobs (wait for them, up to VWE_DRAIN_TIMEOUT_S);
4. give back the rest (unfinished jobs go back to the queue);
5. remove containers (every one this daemon owns, and what dead daemons left);
6. leave (forget the heartbeat record, release the instance lease);
7. stop the remaining supervised loops (the API's event listener);
8. close the Docker and Redis clients.

Steps 2-6 are the daemons' (`pool.daemon.service.Daemon`, one per served template, all at
once), absent in the `api` role.
`Root.run` returns the process exit code: 0 when start-up and every shutdown step succeeded,
1 otherwise. Nothing else in the code base installs signal handlers or closes shared clients.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import signal
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field

import uvicorn

from api.answer_cache import AnswerCache
from api.app import Role, create_app
from api.httpguard import server_options
from api.state import ApiState, TemplateApi
from api.waiters import JobWaiters
from pool.core.exceptions import ConfigError
from pool.core.jobs import DEFAULT_TEMPLATE
from pool.core.ports import PoolControl
from pool.daemon import preflight
from pool.daemon.control import DaemonPool
from pool.daemon.runtime import DockerRuntime
from pool.daemon.service import Daemon
from pool.daemon.worlds import DiskCollector
from pool.infra.logs import get_logger
from pool.infra.metrics import Metrics
from pool.infra.settings import Settings
from pool.infra.supervisor import Supervisor
from pool.infra.templates import Template, load_templates, template_settings
from pool.store.clients import RedisClients
from pool.store.pool_view import StoredPool

log = get_logger("vwe.root")

# A request allocates a few thousand short-lived objects; at the default 700 the collector
# runs several times per request. Cycles are rare here, so collecting less often costs little.
GC_YOUNG_THRESHOLD = 10_000
# Open HTTP requests (long-polls included) get this long to finish once intake stops.
HTTP_GRACE_S = 5
# How often start-up checks whether uvicorn is listening: it offers no event to await.
HTTP_STARTED_POLL_S = 0.02

# One shutdown step: fails by raising or by returning False.
Step = Callable[[], Awaitable[bool | None]]


class _HttpServer(uvicorn.Server):
    """uvicorn without its own signal handling (the root owns the signals) and without its
    ten wake-ups a second: uvicorn polls `should_exit` every 0.1 s, about 2 ms of CPU per
    second in an idle process; this one waits for the flag to be set and wakes once a second
    only to refresh the Date header."""

    def __init__(self, config: uvicorn.Config) -> None:
        self._exit_requested = asyncio.Event()
        super().__init__(config)

    @property
    def should_exit(self) -> bool:
        return self._exit_requested.is_set()

    @should_exit.setter
    def should_exit(self, value: bool) -> None:
        if value:
            self._exit_requested.set()
        else:
            self._exit_requested.clear()

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield

    async def main_loop(self) -> None:
        counter = 0  # uvicorn refreshes the Date header on ticks divisible by ten
        while not await self.on_tick(counter):
            counter = (counter + 10) % 864_000
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._exit_requested.wait(), timeout=1.0)


class HttpServerFailed(RuntimeError):
    """uvicorn stopped on its own (for example, the port was taken)."""


@dataclass
class Root:
    """One process of vwe-pool: `role` api (HTTP only), worker (pool only) or all (both).

    Every role serves HTTP (metrics and readiness at least); `worker` and `all` run a daemon
    for each template in `serving` (docs/deploy.md, "Templates"); `templates` are the defined
    ones (default: `default` alone).
    """

    settings: Settings
    role: Role = "all"
    templates: dict[str, Template] = field(default_factory=lambda: load_templates(None))
    serving: list[str] = field(default_factory=lambda: [DEFAULT_TEMPLATE])
    metrics: Metrics = field(default_factory=Metrics)
    supervisor: Supervisor | None = None
    redis: RedisClients | None = None
    daemon: Daemon | None = None  # the first of `daemons`
    daemons: dict[str, Daemon] = field(default_factory=dict)
    runtime: DockerRuntime | None = None
    api: ApiState | None = None
    http: _HttpServer | None = None
    _http_task: asyncio.Task[None] | None = None
    _stop: asyncio.Event = field(default_factory=asyncio.Event)

    # ---------- building ----------
    def build(self) -> None:
        """Build every component; no I/O yet (Redis and Docker clients connect lazily).
        Raises ConfigError when a template breaks a rule."""
        s = self.settings
        self.metrics.watch_disk(DiskCollector(s.data_dir))
        self.supervisor = Supervisor(self.metrics.task_restarts)
        self.redis = RedisClients.connect(s)
        if self.role in ("all", "worker"):
            # `api` runs no pool and needs no Docker engine.
            self.runtime = DockerRuntime()
        # Any process takes any defined template's jobs; it runs the pools of `serving`.
        served: dict[str, TemplateApi] = {}
        for name, ts in template_settings(s, self.templates).items():
            api_store = self.redis.store(self.redis.api, ts)
            pool: PoolControl
            if self.runtime is not None and name in self.serving:
                # The first daemon's loops are the process's; each other one supervises its
                # own, so its drain stops only those.
                supervisor = (self.supervisor if not self.daemons
                              else Supervisor(self.metrics.task_restarts))
                daemon = Daemon(ts, self.metrics, self.redis.store(self.redis.daemon, ts),
                                self.runtime, supervisor)
                self.daemons[name] = daemon
                pool = DaemonPool(daemon)
            else:
                pool = StoredPool(api_store, ts.pool_policy(), ts.redis_timeout_s)
            served[name] = TemplateApi(api_store, pool, ts.map_resolution,
                                       self.templates[name].options.as_dict(),
                                       local=name in self.daemons)
        self.daemon = next(iter(self.daemons.values()), None)
        default = served[DEFAULT_TEMPLATE]
        self.api = ApiState(settings=s, metrics=self.metrics, store=default.store,
                            waiters=JobWaiters(self.redis.events, default.store.events),
                            pool=default.pool, answers=AnswerCache(s.api_answer_cache_s),
                            supervisor=self.supervisor, templates=served)
        config = uvicorn.Config(create_app(self.api, self.role), host=s.api_host, port=s.api_port,
                                log_config=None, access_log=False, lifespan="off",
                                timeout_graceful_shutdown=HTTP_GRACE_S,
                                **server_options(s, self._count_refusal))
        self.http = _HttpServer(config)

    # ---------- running ----------
    def _count_refusal(self, method: str, status: int) -> None:
        """An answer the HTTP guard gave before any route (api/httpguard.py)."""
        self.metrics.http_requests.labels(method, "refused", str(status)).inc()

    def request_stop(self) -> None:
        """Begin the shutdown (what SIGINT/SIGTERM do): open long-polls answer at once (503 with
        Retry-After) and /readyz says not ready; a second request forces HTTP closed."""
        if self._stop.is_set() and self.http is not None:
            log.warning("second stop request: closing open HTTP connections now")
            self.http.force_exit = True
        if self.api is not None:
            self.api.waiters.close()
        self._stop.set()

    async def run(self) -> int:
        """Build, start, serve until a signal (or `request_stop`), shut down; the exit code."""
        loop = asyncio.get_running_loop()
        handled = (signal.SIGINT, signal.SIGTERM)
        for sig in handled:
            loop.add_signal_handler(sig, self.request_stop)
        try:
            started = await self._start_logged()
            if started:
                await self._serve_until_stopped()
            clean = await self.shutdown()
        finally:
            for sig in handled:
                loop.remove_signal_handler(sig)
        ok = started and clean
        log.info("process exiting", exit_code=0 if ok else 1)
        return 0 if ok else 1

    async def _start_logged(self) -> bool:
        try:
            await self.start()
            return True
        except ConfigError as exc:  # a refused setting, a held instance id
            log.error("refusing to start", error=str(exc))
            return False
        except Exception:
            log.exception("start-up failed; shutting down")
            return False

    async def start(self) -> None:
        """Start the components: job store, waiters, daemon, its loops, then HTTP last."""
        preflight.check_listen(self.settings.api_host, self.settings.api_port)
        if self.api is None:
            self.build()
        assert self.api is not None and self.http is not None and self.supervisor is not None
        for template in self.api.templates.values():
            await template.store.ensure_group()
        if self.role != "worker":  # a worker serves no long-polls
            self.supervisor.spawn("events", self.api.waiters.run)
        for daemon in self.daemons.values():
            await daemon.start()  # spawns the dispatcher, schedules the periodic jobs
        self._http_task = asyncio.create_task(self._serve_http(), name="http")
        while not self.http.started:
            if self._http_task.done():
                self._http_task.result()  # raises what stopped it
                raise HttpServerFailed("the HTTP server stopped during start-up")
            await asyncio.sleep(HTTP_STARTED_POLL_S)
        # Everything allocated so far lives as long as the process. Frozen, it is left out of
        # the collector's full passes, which otherwise scan ~80k objects for ~45 ms on this
        # kind of machine and show up as the p99 of every route.
        gc.collect()
        gc.freeze()
        gc.set_threshold(GC_YOUNG_THRESHOLD, 10, 10)
        log.info("process started", role=self.role, host=self.settings.api_host,
                 port=self.settings.api_port)

    async def _serve_http(self) -> None:
        assert self.http is not None
        try:
            await self.http.serve()
        except SystemExit as exc:  # uvicorn exits on start-up errors (e.g. the port is taken)
            raise HttpServerFailed(f"the HTTP server exited with {exc.code}") from None

    async def _serve_until_stopped(self) -> None:
        assert self._http_task is not None
        stop = asyncio.create_task(self._stop.wait())
        await asyncio.wait({stop, self._http_task}, return_when=asyncio.FIRST_COMPLETED)
        stop.cancel()
        if not self._stop.is_set():
            log.error("the HTTP server stopped on its own; shutting down")

    # ---------- shutdown ----------
    def shutdown_steps(self) -> list[tuple[str, Step]]:
        """The shutdown checklist, in order: (name, action). An action fails by raising or by
        returning False. The daemons' steps run for every template's daemon together: none
        takes jobs while another waits for its own."""
        steps: list[tuple[str, Step]] = [("stop HTTP intake", self._stop_http)]
        if self.daemons:
            steps += [("stop taking jobs", self._each_daemon(Daemon.stop_taking_jobs)),
                      ("drain in-flight jobs", self._each_daemon(Daemon.wait_inflight)),
                      ("give back the rest", self._each_daemon(Daemon.give_back_unfinished)),
                      ("remove containers", self._each_daemon(Daemon.remove_containers)),
                      ("leave", self._each_daemon(Daemon.leave))]
        if self.supervisor is not None:
            steps.append(("stop background loops", self.supervisor.stop))
        steps.append(("close clients", self._close_clients))
        return steps

    async def shutdown(self) -> bool:
        """Every step of `shutdown_steps` in order, each attempted whatever happened before;
        True when all succeeded."""
        clean = True
        for name, action in self.shutdown_steps():
            try:
                ok = await action() is not False
            except Exception:
                ok = False
                log.exception("shutdown step failed; shutdown goes on", step=name)
            else:
                if not ok:
                    log.error("shutdown step failed; shutdown goes on", step=name)
            clean = clean and ok
        log.info("shutdown finished", clean=clean)
        return clean

    def _each_daemon(self, step: Callable[[Daemon], Awaitable[bool | None]]) -> Step:
        """`step` for every template's daemon at once; it fails when one of them fails (each
        failure is logged with its template)."""
        async def run() -> bool:
            results = await asyncio.gather(*(step(d) for d in self.daemons.values()),
                                           return_exceptions=True)
            ok = True
            for template, result in zip(self.daemons, results, strict=True):
                if isinstance(result, asyncio.CancelledError):
                    raise result
                if isinstance(result, BaseException):
                    log.error("shutdown step failed for a template", template=template,
                              step=step.__name__, exc_info=result)
                ok = ok and not isinstance(result, BaseException) and result is not False
            return ok
        return run

    async def _stop_http(self) -> None:
        if self.http is None or self._http_task is None:
            return
        self.http.should_exit = True
        await self._http_task

    async def _close_clients(self) -> None:
        errors: list[BaseException] = []
        for close in (self.runtime.close if self.runtime is not None else None,
                      self.redis.close if self.redis is not None else None):
            if close is None:
                continue
            try:
                await close()
            except Exception as exc:  # close the others anyway
                errors.append(exc)
        if errors:
            raise errors[0]


def serve(settings: Settings, role: Role = "all", templates: dict[str, Template] | None = None,
          serving: list[str] | None = None) -> int:
    """Run one process until SIGINT/SIGTERM; the exit code (0 = clean shutdown). Raises
    ConfigError when a template breaks a rule."""
    root = Root(settings, role, templates or load_templates(None),
                serving or [DEFAULT_TEMPLATE])
    root.build()
    assert root.http is not None
    # uvloop when installed, as uvicorn chooses it ("auto").
    with asyncio.Runner(loop_factory=root.http.config.get_loop_factory()) as runner:
        return runner.run(root.run())
