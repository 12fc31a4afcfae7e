"""The collector's HTTP service: status API (OpenAPI at /openapi.json), page, metrics, gateway admin.

Every route needs a token (``Authorization: Bearer <token>``, or the cookie the
page's login sets) except ``/health``. Roles: operator reads, verifier also
exports, admin also manages gateways (collector/tokens.py). Errors are JSON
``{"error": ..., "detail": ...}`` with 400 (a request that makes no sense, e.g.
a key that does not match its id), 401, 403, 404 or 409; malformed requests get
FastAPI's 422 with the fields at fault. Never a 500 for bad input.
"""

import logging
import tempfile
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import Depends, FastAPI, HTTPException, Query, Request
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, RedirectResponse, Response
from pydantic import BaseModel, ConfigDict, Field
from starlette.background import BackgroundTask

from collector import status
from collector.export import export_bundle
from collector.gateways import (
    RegistryError,
    enroll,
    load_registry,
    parse_enrollment,
    revoke,
    rotate,
    save_registry,
)
from collector.metrics import Metrics
from collector.page import login_page, status_page
from collector.store.base import Store, StoreError
from collector.tokens import TokenEntry, Tokens
from mrv_core.keyring import KeyringError
from mrv_core.profile import Profile
from mrv_core.report import ProjectSpec
from mrv_core.timefmt import format_ms

log = logging.getLogger(__name__)

COOKIE = "mrv_token"
API = "/api/v1"


class ErrorBody(BaseModel):
    error: str
    detail: str = ""


class Health(BaseModel):
    status: Literal["ok", "degraded"]
    broker: bool
    store: bool


class CollectorHealth(BaseModel):
    broker_connected: bool
    store_type: str
    store_reachable: bool
    store_last_error: str
    messages: int
    records_stored: int
    duplicates: int
    quarantined: int
    gaps: int
    ingest_rate_per_s: float
    queue_depth: int
    lag_s: float | None
    registry_errors: int


class GatewayKey(BaseModel):
    key_id: str
    state: str


class DeviceError(BaseModel):
    consecutive_failures: int | None
    last_error: str | None


class GatewayView(BaseModel):
    site: str
    gateway: str
    status: str
    last_seen: str | None
    last_seen_age_s: float | None
    heartbeat_age_s: float | None
    clock_offset_s: float | None
    clock: str | None
    buffer_pending_records: int | None
    oldest_pending: str | None
    buffer_alarm: Literal["high water", "full"] | None = Field(
        description="'full': the gateway refuses readings (quota or disk full); 'high water': nearly so"
    )
    resends: int | None = Field(
        description="times since the agent started that it sent unconfirmed seals again: growing means "
        "the broker drops messages or the collector refuses a seal (see the quarantine)"
    )
    device_errors: dict[str, DeviceError]
    keys: list[GatewayKey]


class DayCompleteness(BaseModel):
    day: str
    records: int
    expected: int | None
    ratio: float | None


class GapView(BaseModel):
    model_config = ConfigDict(populate_by_name=True)
    first_seq: int
    last_seq: int
    missing: int
    from_: str = Field(alias="from")
    to: str


class ValueView(BaseModel):
    value: str | None
    unit: str


class Sparkline(BaseModel):
    quantity: str | None
    unit_per: str = "hour"
    values: list[float]


class DeviceView(BaseModel):
    site: str
    gateway: str
    device: str
    last_seq: int | None
    last_time: str | None
    values: dict[str, ValueView]
    quality: list[str]
    poll_interval_s: float | None
    completeness: list[DayCompleteness]
    open_gaps: list[GapView]
    missing_records: int
    sparkline: Sparkline | None = None


class QuarantineEntry(BaseModel):
    received: str
    reason: str
    detail: str
    gateway: str
    topic: str
    bytes: int


class QuarantineView(BaseModel):
    total: int
    recent_reasons: dict[str, int]
    items: list[QuarantineEntry]


class EnrollmentBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    type: Literal["mrv-enrollment-request"]
    gateway: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
    site: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
    key_id: str = Field(pattern=r"^[0-9a-f]{32}$")
    public_key: str = Field(min_length=1, max_length=100)
    fingerprint: str = ""
    created: str = ""


class RevokeBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    key_id: str | None = Field(default=None, pattern=r"^[0-9a-f]{32}$")
    reason: str = Field(min_length=1, max_length=500)
    valid_through_seal: int | None = Field(default=None, ge=0)


class RegistryChange(BaseModel):
    gateway: str
    keys: list[GatewayKey]


@dataclass
class LiveState:
    """What only the running collector knows (connection, queue, rates)."""

    broker_connected: Callable[[], bool]
    queue_depth: Callable[[], int]
    oldest_queued_age_s: Callable[[], float | None]
    totals: Callable[[], dict[str, int]]
    rate_per_s: Callable[[], float]
    store_last_error: Callable[[], str]
    registry_errors: Callable[[], int]


@dataclass
class ApiContext:
    store: Store
    store_type: str
    registry_path: Path
    tokens: Callable[[], Tokens]
    metrics: Metrics
    live: LiveState | None = None
    profiles: Callable[[], dict[str, Profile]] = dict
    projects: Callable[[], dict[str, ProjectSpec]] = dict
    clock_ms: Callable[[], int] = lambda: int(time.time() * 1000)


AUTH_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorBody, "description": "missing or unknown token"},
    403: {"model": ErrorBody, "description": "the token's role does not allow this"},
}


def _presented(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    if header.lower().startswith("bearer "):
        return header[7:].strip()
    return request.cookies.get(COOKIE)


@dataclass
class _Deps:
    """Dependencies the routes share: the context and one checker per permission."""

    ctx: ApiContext

    def require(self, permission: str) -> Callable[[Request], TokenEntry]:
        ctx = self.ctx

        def check(request: Request) -> TokenEntry:
            entry = ctx.tokens().check(_presented(request))
            if entry is None:
                ctx.metrics.auth_failures.inc()
                raise HTTPException(
                    401, "unauthorized: a valid API token is required", headers={"WWW-Authenticate": "Bearer"}
                )
            if not entry.allows(permission):
                ctx.metrics.auth_failures.inc()
                raise HTTPException(403, f"forbidden: role {entry.role} may not {permission}")
            return entry

        return check

    def store_call(self, fn: Callable[[], Any]) -> Any:
        try:
            return fn()
        except StoreError as exc:
            raise HTTPException(503, f"store unavailable: {exc}") from None

    def store_ok(self) -> bool:
        try:
            self.ctx.store.counts()
        except StoreError:
            return False
        return True

    def registry(self) -> Any:
        try:
            return load_registry(self.ctx.registry_path)
        except KeyringError as exc:
            raise HTTPException(503, f"registry unreadable: {exc}") from None

    def now(self) -> str:
        return format_ms(self.ctx.clock_ms())


def _status_routes(app: FastAPI, deps: _Deps) -> None:
    ctx = deps.ctx
    reader = Annotated[TokenEntry, Depends(deps.require("read"))]

    @app.get("/health", response_model=Health, responses={503: {"model": Health}})
    def health() -> Any:
        """Liveness and readiness, without a token: broker connected and store reachable."""
        broker = ctx.live.broker_connected() if ctx.live else True
        store = deps.store_ok()
        body = Health(status="ok" if broker and store else "degraded", broker=broker, store=store)
        return JSONResponse(body.model_dump(), status_code=200 if body.status == "ok" else 503)

    @app.get(f"{API}/collector", response_model=CollectorHealth, responses=AUTH_ERRORS)
    def collector_health(_: reader) -> CollectorHealth:
        live = ctx.live
        totals = live.totals() if live else {}
        return CollectorHealth(
            broker_connected=live.broker_connected() if live else False,
            store_type=ctx.store_type,
            store_reachable=deps.store_ok(),
            store_last_error=live.store_last_error() if live else "",
            messages=totals.get("messages", 0),
            records_stored=totals.get("stored", 0),
            duplicates=totals.get("duplicates", 0),
            quarantined=totals.get("quarantined", 0),
            gaps=totals.get("gaps", 0),
            ingest_rate_per_s=live.rate_per_s() if live else 0.0,
            queue_depth=live.queue_depth() if live else 0,
            lag_s=live.oldest_queued_age_s() if live else None,
            registry_errors=live.registry_errors() if live else 0,
        )

    def all_gateways() -> Any:
        return deps.store_call(lambda: status.gateways(ctx.store, deps.registry(), ctx.clock_ms()))

    @app.get(f"{API}/gateways", response_model=list[GatewayView], responses=AUTH_ERRORS)
    def gateways(_: reader) -> Any:
        """Every enrolled or heard-from gateway: status, last seen, buffer depth, clock offset, keys."""
        return all_gateways()

    @app.get(
        f"{API}/gateways/{{gateway}}",
        response_model=GatewayView,
        responses={**AUTH_ERRORS, 404: {"model": ErrorBody}},
    )
    def gateway(gateway: str, _: reader) -> Any:
        for view in all_gateways():
            if view["gateway"] == gateway:
                return view
        raise HTTPException(404, f"not found: no gateway {gateway}")

    @app.get(f"{API}/devices", response_model=list[DeviceView], responses=AUTH_ERRORS)
    def devices(
        _: reader,
        days: Annotated[int, Query(ge=1, le=90, description="days of completeness")] = 30,
        sparklines: bool = True,
    ) -> Any:
        """Every device: last reading and values, quality flags, completeness per UTC day, open gaps."""
        window = status.Window(ctx.clock_ms(), days)
        return deps.store_call(lambda: status.devices(ctx.store, window, sparklines=sparklines))

    @app.get(f"{API}/quarantine", response_model=QuarantineView, responses=AUTH_ERRORS)
    def quarantine(_: reader, limit: Annotated[int, Query(ge=1, le=1000)] = 100) -> Any:
        """What failed verification or could not be stored as good, newest first, with the reason."""
        return deps.store_call(lambda: status.quarantine(ctx.store, limit))

    @app.get(
        "/metrics", response_class=Response, responses={**AUTH_ERRORS, 200: {"content": {"text/plain": {}}}}
    )
    def metrics(_: reader) -> Response:
        """Prometheus metrics (scrape with an operator token as bearer)."""
        return Response(ctx.metrics.exposition(), media_type="text/plain; version=0.0.4")


def _admin_routes(app: FastAPI, deps: _Deps) -> None:
    ctx = deps.ctx
    manager = Annotated[TokenEntry, Depends(deps.require("manage"))]
    conflict: dict[int | str, dict[str, Any]] = {
        **AUTH_ERRORS,
        400: {"model": ErrorBody},
        409: {"model": ErrorBody},
    }

    def parse(body: EnrollmentBody) -> Any:
        try:
            return parse_enrollment(body.model_dump_json(), "request")
        except RegistryError as exc:
            raise HTTPException(400, f"invalid enrollment request: {exc}") from None

    def change(name: str, registry: Any) -> RegistryChange:
        entry = registry.gateway(name)
        keys = [GatewayKey(key_id=k.key_id, state=k.state) for k in entry.keys] if entry else []
        return RegistryChange(gateway=name, keys=keys)

    def apply(name: str, update: Callable[[Any], Any]) -> RegistryChange:
        try:
            registry = update(deps.registry())
        except RegistryError as exc:
            raise HTTPException(409, f"conflict: {exc}") from None
        save_registry(ctx.registry_path, registry)
        log.info("gateway registry changed for %s", name)
        return change(name, registry)

    @app.post(f"{API}/gateways", response_model=RegistryChange, status_code=201, responses=conflict)
    def add_gateway(body: EnrollmentBody, _: manager) -> Any:
        """Enroll a gateway from its enrollment request ('mrv-agent enroll')."""
        request = parse(body)
        return apply(request.gateway, lambda registry: enroll(registry, request, deps.now()))

    @app.post(f"{API}/gateways/{{gateway}}/rotate", response_model=RegistryChange, responses=conflict)
    def rotate_gateway(gateway: str, body: EnrollmentBody, _: manager) -> Any:
        """Retire the gateway's active key now and enroll the new one."""
        request = parse(body)
        return apply(gateway, lambda registry: rotate(registry, gateway, request, deps.now()))

    @app.post(f"{API}/gateways/{{gateway}}/revoke", response_model=RegistryChange, responses=conflict)
    def revoke_gateway(gateway: str, body: RevokeBody, _: manager) -> Any:
        """Revoke a key (the active one by default); seals after the last stored one are refused."""
        known = deps.registry().gateway(gateway)
        target = body.key_id or (known.active_key.key_id if known and known.active_key else None)
        through = body.valid_through_seal
        if through is None and target is not None:
            through = deps.store_call(lambda: ctx.store.last_seal_by_key(gateway, target))

        def update(registry: Any) -> Any:
            updated, _entry = revoke(
                registry,
                gateway,
                key_id=target,
                reason=body.reason,
                now=deps.now(),
                valid_through_seal=through,
            )
            return updated

        return apply(gateway, update)


def _export_routes(app: FastAPI, deps: _Deps) -> None:
    ctx = deps.ctx
    exporter = Annotated[TokenEntry, Depends(deps.require("export"))]

    @app.get(
        f"{API}/export",
        response_class=FileResponse,
        responses={
            **AUTH_ERRORS,
            400: {"model": ErrorBody},
            404: {"model": ErrorBody},
            200: {"content": {"application/zip": {}}},
        },
    )
    def export(
        _: exporter,
        start: Annotated[date, Query(alias="from", description="first day (local to the project's site)")],
        end: Annotated[date, Query(alias="to", description="last day, inclusive")],
        project: Annotated[str | None, Query(description="project id: its period, with its report")] = None,
    ) -> Any:
        """An evidence bundle for mrv-verify: whole seals, keys, profiles, and the project's report."""
        if end < start:
            raise HTTPException(400, "invalid range: 'to' is before 'from'")
        if project is not None and ctx.projects().get(project) is None:
            raise HTTPException(404, f"not found: no project {project}")
        folder = Path(tempfile.mkdtemp(prefix="mrv-export-"))
        out = folder / f"{project or 'bundle'}-{start}-{end}.zip"
        spec = ctx.projects().get(project) if project else None
        deps.store_call(
            lambda: export_bundle(
                ctx.store,
                out,
                registry=deps.registry(),
                profiles=ctx.profiles(),
                first_day=start,
                last_day=end,
                project=spec,
            )
        )

        def cleanup() -> None:
            out.unlink(missing_ok=True)
            folder.rmdir()

        return FileResponse(
            out, media_type="application/zip", filename=out.name, background=BackgroundTask(cleanup)
        )


def _page_routes(app: FastAPI, deps: _Deps) -> None:
    ctx = deps.ctx

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def page(request: Request) -> HTMLResponse:
        if ctx.tokens().check(_presented(request)) is None:
            return HTMLResponse(login_page(), status_code=401)
        return HTMLResponse(status_page())

    @app.post("/login", include_in_schema=False)
    async def login(request: Request) -> Response:
        form = urllib.parse.parse_qs((await request.body()).decode("utf-8", "replace"))
        token = (form.get("token") or [""])[0].strip()
        if ctx.tokens().check(token) is None:
            ctx.metrics.auth_failures.inc()
            return HTMLResponse(login_page("That token is not valid."), status_code=401)
        response = RedirectResponse("/", status_code=303)
        response.set_cookie(COOKIE, token, httponly=True, samesite="strict", path="/")
        return response

    @app.get("/logout", include_in_schema=False)
    def logout() -> Response:
        response = RedirectResponse("/", status_code=303)
        response.delete_cookie(COOKIE, path="/")
        return response


def create_app(ctx: ApiContext) -> FastAPI:
    # No unauthenticated documentation routes: the description is served below, behind a token.
    app = FastAPI(
        title="JCM MRV collector",
        version="1",
        description="Status of gateways, devices and ingest; quarantine; gateway registry; evidence export.",
        openapi_url=None,
        docs_url=None,
        redoc_url=None,
    )

    @app.middleware("http")
    async def _count(request: Request, call_next: Callable[[Request], Any]) -> Response:
        response: Response = await call_next(request)
        ctx.metrics.api_responses.labels(str(response.status_code)).inc()
        return response

    @app.exception_handler(HTTPException)
    async def _http_error(_request: Request, exc: HTTPException) -> JSONResponse:
        error, _, detail = str(exc.detail).partition(": ")
        return JSONResponse(
            {"error": error, "detail": detail},
            status_code=exc.status_code,
            headers=getattr(exc, "headers", None),
        )

    deps = _Deps(ctx)

    @app.get("/openapi.json", include_in_schema=False)
    def openapi(_: Annotated[TokenEntry, Depends(deps.require("read"))]) -> JSONResponse:
        return JSONResponse(app.openapi())

    _status_routes(app, deps)
    _admin_routes(app, deps)
    _export_routes(app, deps)
    _page_routes(app, deps)
    return app
