"""``mrv-collector``: ingest, report, export and status."""

from __future__ import annotations

import argparse
import base64
import json
import logging
import signal
import sys
import threading
import time
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from collector import status
from collector.config import CollectorConfig, InfluxStoreSection, load_collector_config
from collector.gateways import (
    RegistryError,
    enroll,
    load_registry,
    parse_enrollment,
    revoke,
    rotate,
    save_registry,
)
from collector.store.base import Store, StoreError
from collector.tokens import ROLES, TokenEntry, TokenError, load_tokens, new_token, save_tokens, token_hash
from mrv_core.config_errors import ConfigError
from mrv_core.keyring import KeyringError, Registry
from mrv_core.methodologies import registry
from mrv_core.secret_files import ExposedSecretError
from mrv_core.timefmt import format_ms, format_time
from mrv_core.verify import Keyring

log = logging.getLogger("mrv-collector")


def open_store(config: CollectorConfig) -> Store:
    section = config.store
    if isinstance(section, InfluxStoreSection):
        from collector.store.influx import InfluxStore  # noqa: PLC0415 - only InfluxDB sites need it

        return InfluxStore(
            section.url,
            org=section.org,
            bucket=section.bucket,
            token=section.token,
            database=section.database,
            timeout_s=section.timeout_s,
        )
    from collector.store.sqlite import SqliteStore  # noqa: PLC0415

    return SqliteStore(section.path)


def load_keyring(config: CollectorConfig) -> Keyring:
    """The registry's keyring; a missing file is an empty registry (enroll gateways into it)."""
    return load_registry(config.keyring).keyring()


def cmd_run(args: argparse.Namespace) -> int:
    from collector.service import CollectorService  # noqa: PLC0415 - keep the other commands light

    config = load_collector_config(args.config)
    keyring = load_keyring(config)  # refuse to start on a broken registry
    store = open_store(config)
    service = CollectorService(config, store, keyring)
    ingest = service.ingest
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    service.start()
    log.info("collector: %d registered key(s), store %s", len(keyring.keys), config.store.type)
    while not stop.wait(args.stats_every):
        totals = ingest.stats.totals
        log.info(
            "ingest: %d messages, %d records stored, %d duplicates, %d gaps, %d quarantined",
            ingest.stats.messages,
            totals.stored,
            totals.duplicates,
            totals.gaps,
            sum(totals.quarantined.values()),
        )
    service.stop()
    store.close()
    return 0


def _day_or_time(text: str) -> datetime:
    try:
        if len(text) == 10:
            return datetime.combine(date.fromisoformat(text), datetime.min.time(), UTC)
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ConfigError(f"{text!r} is not a date (YYYY-MM-DD) or an ISO 8601 time") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def cmd_report(args: argparse.Namespace) -> int:
    from collector import report_formats  # noqa: PLC0415
    from collector.projects import load_project  # noqa: PLC0415
    from mrv_core.report import Period, compute_report  # noqa: PLC0415

    if args.format == "xlsx" and args.out is None:
        raise ConfigError("--format xlsx writes a workbook: give --out FILE.xlsx")
    config = load_collector_config(args.config)
    project = load_project(args.project)
    try:
        period = Period(
            date.fromisoformat(args.date_from), date.fromisoformat(args.date_to), project.timezone
        )
    except ValueError:
        raise ConfigError("--from and --to are local dates of the site, YYYY-MM-DD") from None
    if period.last_day < period.first_day:
        raise ConfigError("--to is before --from")
    spec = project.to_spec()
    store = open_store(config)
    daily = None
    progress = report_formats.TerminalProgress("report")  # stderr, only on a terminal
    try:
        report = compute_report(spec, period, report_formats.CountingSource(store, spec, period, progress))
        progress.close()
        if args.format in ("csv", "html"):
            progress = report_formats.TerminalProgress("daily values")
            daily = report_formats.daily_values(spec, period, store, progress)
            progress.close()
    finally:
        progress.close()
        store.close()
    if daily is not None:
        try:
            report_formats.check_daily(report, daily)
        except ValueError as exc:
            raise ConfigError(f"report: {exc}") from None
    if args.format == "xlsx":
        try:
            report_formats.write_xlsx(report, args.out, project)
        except ValueError as exc:  # a methodology without spreadsheet formulas
            raise ConfigError(f"report: {exc}") from None
        print(f"wrote {args.out}: Monitoring Report Sheet, ER_p = {report['emission_reductions_tco2']} tCO2")
        return 0
    renderers = {
        "text": lambda: render_text(report) + "\n",
        "json": lambda: json.dumps(report, indent=2) + "\n",
        "csv": lambda: report_formats.render_csv(report, daily or []),
        "html": lambda: report_formats.render_html(report, daily or [], project),
    }
    text = renderers[args.format]()
    if args.out is None:
        sys.stdout.write(text)
    else:
        report_formats.write_text(args.out, text)
        print(f"wrote {args.out}: {args.format} report, ER_p = {report['emission_reductions_tco2']} tCO2")
    return 0


def cmd_plan(args: argparse.Namespace) -> int:
    """Ex-ante expected ER from the project's plan; exit 1 when the phase's threshold is not met."""
    from collector import planning  # noqa: PLC0415
    from collector.projects import load_project  # noqa: PLC0415

    project = load_project(args.project)
    if project.plan is None:
        raise ConfigError(
            f"{args.project}: plan: the project has no plan section (docs/calculations.md, "
            "'Planning and portfolio')"
        )
    result = planning.evaluate(project)
    if args.format == "json":
        print(json.dumps(planning.to_dict(result), indent=2))
    else:
        print(planning.render_text(result))
    return 0 if result.passed else 1


def cmd_portfolio(args: argparse.Namespace) -> int:
    """Credits of every project's monitoring periods from the store, cumulative, with costs."""
    from collector import portfolio, report_formats  # noqa: PLC0415

    config = load_collector_config(args.config)
    projects = portfolio.load_portfolio(args.projects or config.projects_dir)
    store = open_store(config)
    try:
        summary = portfolio.summarize(projects, store, progress=report_formats.TerminalProgress)
    finally:
        store.close()
    if args.format == "json":
        print(json.dumps(portfolio.to_dict(summary), indent=2))
    else:
        print(portfolio.render_text(summary))
    return 0


def render_text(report: dict[str, Any]) -> str:
    lines = [
        f"Monitoring report: {report['project']['id']} ({report['project']['name']})",
        f"Methodology: {report['methodology']['title']} [{report['methodology']['id']} "
        f"v{report['methodology']['version']}; {report['methodology']['reference']}]",
        f"Period: {report['period']['from']} to {report['period']['to']} ({report['project']['timezone']}), "
        f"i.e. {report['period']['start_utc']} to {report['period']['end_utc']}",
        "",
        "Monitored parameters:",
    ]
    for name, item in report["monitored"].items():
        lines.append(f"  {item['symbol']:<10} = {item['value']} {item['unit']}  ({item['description']})")
        for point in item["points"]:
            start, end = point["start"] or {}, point["end"] or {}
            lines.append(
                f"    point {point['no']}: {point['gateway']}/{point['device']} {point['quantity']}: "
                f"{start.get('value', '-')} {start.get('unit', '')} (seq {start.get('seq', '-')}, "
                f"{start.get('time', '-')}) -> {end.get('value', '-')} (seq {end.get('seq', '-')}, "
                f"{end.get('time', '-')}): {point['value']} {point['unit']} from {point['readings']} readings"
            )
            for adj in point["gaps"] + point["corrections"]:
                lines.append(f"      {adj['rule']}: {adj['detail']} (effect {adj['effect']} {adj['unit']})")
        del name
    lines.append("Fixed parameters:")
    for item in report["fixed"].values():
        lines.append(f"  {item['symbol']:<10} = {item['value']} {item['unit']}  (source: {item['source']})")
    lines += ["", "Calculation:"] + [f"  {eq}" for eq in report["methodology"]["equations"]]
    lines += [
        f"  RE_p = {report['reference_emissions_tco2']} tCO2",
        f"  PE_p = {report['project_emissions_tco2']} tCO2",
        f"  ER_p = {report['emission_reductions_unrounded_tco2']} tCO2 -> "
        f"{report['emission_reductions_tco2']} tCO2 (rounded down)",
        "",
        f"Completeness: {report['completeness']['points_with_data']}/{report['completeness']['points']} "
        f"monitoring points with data, {report['completeness']['missing_records']} missing record(s)",
    ]
    if report["findings"]:
        lines.append(f"Findings ({len(report['findings'])}):")
        lines += [f"  - {f['kind']} (point {f.get('point', '-')}): {f['detail']}" for f in report["findings"]]
    else:
        lines.append("Findings: none")
    return "\n".join(lines)


def _progress_bar(done: int, total: int) -> None:
    if not sys.stderr.isatty():
        return
    share = done / total if total else 1.0
    bar = "#" * int(share * 30)
    print(f"\r  [{bar:<30}] {share:6.1%}  {done:,} / {total:,} records", end="", file=sys.stderr, flush=True)


def cmd_export(args: argparse.Namespace) -> int:
    from collector.export import export_bundle  # noqa: PLC0415
    from collector.projects import load_project  # noqa: PLC0415
    from mrv_core.profile_schema import load_profile_dir  # noqa: PLC0415

    config = load_collector_config(args.config)
    project = load_project(args.project).to_spec() if args.project else None
    try:
        first, last = date.fromisoformat(args.date_from), date.fromisoformat(args.date_to)
    except ValueError:
        raise ConfigError(
            "--from and --to are dates, YYYY-MM-DD (local dates of the site with --project)"
        ) from None
    profiles = load_profile_dir(config.profiles_dir) if config.profiles_dir.exists() else {}
    store = open_store(config)
    try:
        summary = export_bundle(
            store,
            args.out,
            registry=load_registry(config.keyring),
            profiles=profiles,
            first_day=first,
            last_day=last,
            project=project,
            progress=_progress_bar,
        )
    except ValueError as exc:
        raise ConfigError(f"export: {exc}") from None
    finally:
        store.close()
    if sys.stderr.isatty():
        print(file=sys.stderr)
    what = f"project {project.id}, " if project else ""
    print(f"wrote {args.out}: {what}{summary.records} records in {summary.seals} seals")
    if summary.missing_profiles:
        print(
            f"warning: {len(summary.missing_profiles)} profile(s) used by these records are not in "
            f"{config.profiles_dir}; verifiers cannot re-decode their values",
            file=sys.stderr,
        )
    if summary.incomplete_seals:
        print(
            f"warning: {summary.incomplete_seals} seal(s) lack records in the store; verifiers will see "
            "them as record_missing",
            file=sys.stderr,
        )
    return 0


def status_snapshot(store: Store, registry: Registry, now_ms: int) -> dict[str, Any]:
    """The operators' picture (the API's and the page's), for a terminal or a script."""
    counts = store.counts()
    return {
        "records": counts.records,
        "seals": counts.seals,
        "quarantined": counts.quarantined,
        "gateways": status.gateways(store, registry, now_ms),
        "devices": status.devices(store, status.Window(now_ms), sparklines=False),
        "quarantine": status.quarantine(store, 20),
    }


def _render_status(snapshot: dict[str, Any]) -> str:
    reasons = ", ".join(f"{r} {n}" for r, n in snapshot["quarantine"]["recent_reasons"].items())
    lines = [
        f"store: {snapshot['records']} records, {snapshot['seals']} seals, "
        f"{snapshot['quarantined']} quarantined{f' ({reasons})' if reasons else ''}",
        "",
        f"{'GATEWAY':<28} {'STATUS':<12} {'LAST SEEN':<12} {'BUFFER':>7}  {'OLDEST UNSENT':<25} "
        f"{'CLOCK OFFSET':>12}  DEVICE ERRORS",
    ]
    for g in snapshot["gateways"]:
        seen = "never" if g["last_seen_age_s"] is None else f"{g['last_seen_age_s']:.0f} s ago"
        offset = "-" if g["clock_offset_s"] is None else f"{g['clock_offset_s']} s"
        errors = "; ".join(f"{d}: {e['last_error']}" for d, e in g["device_errors"].items()) or "-"
        buffer = "-" if g["buffer_pending_records"] is None else str(g["buffer_pending_records"])
        if g["buffer_alarm"]:
            errors = f"BUFFER {g['buffer_alarm'].upper()}; {errors}"
        lines.append(
            f"{g['site'] + '/' + g['gateway']:<28} {g['status']:<12} {seen:<12} {buffer:>7}  "
            f"{g['oldest_pending'] or '-':<25} {offset:>12}  {errors}"
        )
    lines += ["", f"{'DEVICE':<28} {'LAST READING':<25} {'SEQ':>8}  {'OPEN GAPS':<24} LAST 7 DAYS (%)"]
    for d in snapshot["devices"]:
        gaps = f"{d['missing_records']} missing in {len(d['open_gaps'])}" if d["open_gaps"] else "none"
        week = " ".join(
            "-" if c["ratio"] is None else f"{c['ratio'] * 100:.0f}" for c in d["completeness"][-7:]
        )
        lines.append(
            f"{d['gateway'] + '/' + d['device']:<28} {d['last_time'] or '-':<25} "
            f"{d['last_seq'] if d['last_seq'] is not None else '-':>8}  {gaps:<24} {week}"
        )
        for quality in d["quality"]:
            lines.append(f"{'':<28} quality: {quality}")
    for item in snapshot["quarantine"]["items"][:5]:
        lines.append(f"quarantined {item['received']} {item['reason']}: {item['detail']}")
    return "\n".join(lines)


def cmd_status(args: argparse.Namespace) -> int:
    config = load_collector_config(args.config)
    registry = load_registry(config.keyring)
    store = open_store(config)
    try:
        snapshot = status_snapshot(store, registry, int(time.time() * 1000))
    finally:
        store.close()
    print(json.dumps(snapshot, indent=2) if args.json else _render_status(snapshot))
    return 0


def cmd_quarantine(args: argparse.Namespace) -> int:
    """What failed verification or could not be stored as good, newest first, kept whole."""
    config = load_collector_config(args.config)
    store = open_store(config)
    try:
        items = store.quarantined(args.limit)
    finally:
        store.close()
    if args.json:
        print(
            json.dumps(
                [
                    {
                        "received": format_ms(q.received_ms),
                        "topic": q.topic,
                        "gateway": q.gateway,
                        "reason": q.reason,
                        "detail": q.detail,
                        "payload_b64": base64.b64encode(q.payload).decode("ascii"),
                    }
                    for q in items
                ],
                indent=2,
            )
        )
        return 0
    if not items:
        print("quarantine is empty")
    for q in items:
        received = format_ms(q.received_ms)
        print(f"{received}  {q.reason:<20} {q.gateway or '-':<16} {q.topic}")
        print(f"    {q.detail} ({len(q.payload)} bytes kept)")
    return 0


def _now_text() -> str:
    return format_time(datetime.now(UTC))


def _print_registry(registry: Registry, path: Path) -> None:
    if not registry.gateways:
        print(f"no gateways enrolled in {path}")
    for gateway in registry.gateways:
        print(f"{gateway.site}/{gateway.gateway}")
        for key in gateway.keys:
            extra = f" retired {key.retired}" if key.retired else ""
            if key.revoked:
                through = "none" if key.valid_through_seal is None else f"up to seal {key.valid_through_seal}"
                extra += f" revoked {key.revoked} ({key.reason}); valid: {through}"
            print(f"  {key.key_id}  {key.state:<8} enrolled {key.enrolled or '-'}{extra}")


def _revoke(config: CollectorConfig, registry: Registry, args: argparse.Namespace) -> Registry:
    if not args.gateway:
        raise ConfigError("gateways revoke: name the gateway (--gateway)")
    known = registry.gateway(args.gateway)
    target = args.key or (known.active_key.key_id if known and known.active_key else None)
    through = args.valid_through_seal
    if through is None and target is not None:
        store = open_store(config)
        try:
            through = store.last_seal_by_key(args.gateway, target)
        finally:
            store.close()
    registry, revoked = revoke(
        registry, args.gateway, key_id=target, reason=args.reason, now=_now_text(), valid_through_seal=through
    )
    kept = "no seal" if through is None else f"seals up to {through}"
    print(f"revoked key {revoked.key_id} of {args.gateway}: {kept} stay valid; later ones are quarantined")
    return registry


def cmd_gateways(args: argparse.Namespace) -> int:
    """Enroll, list, rotate and revoke gateway keys in the registry (the keyring file)."""
    config = load_collector_config(args.config)
    registry = load_registry(config.keyring)
    if args.action == "list":
        if args.json:
            print(registry.to_json(), end="")
        else:
            _print_registry(registry, config.keyring)
        return 0
    if args.action == "revoke":
        save_registry(config.keyring, _revoke(config, registry, args))
        return 0
    if not args.request:
        raise ConfigError(f"gateways {args.action}: give the enrollment request file ('mrv-agent enroll')")
    request = parse_enrollment(args.request.read_text(encoding="utf-8"), str(args.request))
    if args.action == "add":
        registry = enroll(registry, request, _now_text())
    else:
        registry = rotate(registry, args.gateway or request.gateway, request, _now_text())
    save_registry(config.keyring, registry)
    print(f"{args.action}: {request.site}/{request.gateway} key {request.key_id} is active")
    return 0


def cmd_tokens(args: argparse.Namespace) -> int:
    """API tokens: shown once when created, stored hashed in a mode-0600 file."""
    config = load_collector_config(args.config)
    if config.http is None:
        raise ConfigError(f"{args.config}: http: no HTTP section, so no tokens file is configured")
    path = config.http.tokens_file
    tokens = load_tokens(path)
    if args.action == "list":
        for entry in tokens.entries:
            print(f"{entry.name:<24} {entry.role:<9} created {entry.created or '-'}")
        if not tokens.entries:
            print(f"no tokens in {path}")
        return 0
    if not args.name:
        raise ConfigError(f"tokens {args.action}: --name is required")
    if args.action == "revoke":
        save_tokens(path, tokens.without(args.name))
        print(f"revoked token {args.name}")
        return 0
    token = new_token()
    save_tokens(path, tokens.with_entry(TokenEntry(args.name, args.role, token_hash(token), _now_text())))
    print(token)
    print(f"(token {args.name!r}, role {args.role}: shown once, stored hashed in {path})", file=sys.stderr)
    return 0


def cmd_methodologies(_args: argparse.Namespace) -> int:
    for methodology in registry().values():
        print(f"{methodology.id}: {methodology.title} ({methodology.family})")
        for equation in methodology.equations:
            print(f"    {equation}")
        for p in methodology.parameters:
            optional = "" if p.required else ", optional"
            # the name is the key of the project config (fixed.<name>, a point's parameter); a fixed
            # parameter's direction is that of ER (η_RE "raises PE" would read as if it were in PE)
            if p.kind == "monitored":
                direction = f"raises {p.raises}"
            else:
                direction = "raises ER" if p.raises == "RE" else "lowers ER"
            columns = f"{p.name:<13} {p.symbol:<12} {p.unit:<9}"
            print(f"    {columns} {p.kind}, {direction}{optional}: {p.description}")
    return 0


def _add_planning_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    plan = sub.add_parser(
        "plan",
        help="expected ER from the project's plan, against the programme's threshold (exit 1: not met)",
    )
    plan.add_argument("--project", type=Path, required=True, help="project YAML with a plan: section")
    plan.add_argument("--format", choices=["text", "json"], default="text")
    plan.set_defaults(func=cmd_plan)

    portfolio = sub.add_parser("portfolio", help="credits of every project and monitoring period, with costs")
    portfolio.add_argument("--config", type=Path, required=True)
    portfolio.add_argument(
        "--projects", type=Path, help="folder of project YAMLs (default: the config's projects_dir)"
    )
    portfolio.add_argument("--format", choices=["text", "json"], default="text")
    portfolio.set_defaults(func=cmd_portfolio)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mrv-collector", description=__doc__)
    parser.add_argument("-v", "--verbose", action="store_true")
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="subscribe, verify, store, acknowledge")
    run.add_argument("--config", type=Path, required=True)
    run.add_argument("--stats-every", type=float, default=30.0, help="seconds between ingest log lines")
    run.set_defaults(func=cmd_run)

    report = sub.add_parser("report", help="emission reductions of a monitoring period")
    report.add_argument("--config", type=Path, required=True)
    report.add_argument("--project", type=Path, required=True, help="project YAML (config/projects/)")
    report.add_argument("--from", dest="date_from", required=True, help="first local date, YYYY-MM-DD")
    report.add_argument("--to", dest="date_to", required=True, help="last local date (inclusive)")
    report.add_argument(
        "--format",
        choices=["text", "json", "xlsx", "csv", "html"],
        default="text",
        help="xlsx: the JCM Monitoring Report Sheet with live formulas (needs --out); csv: daily values per "
        "monitoring point; html: a page to read (docs/calculations.md, 'Report formats')",
    )
    report.add_argument("--out", type=Path, help="write the report to this file (required for xlsx)")
    report.set_defaults(func=cmd_report)

    _add_planning_commands(sub)

    export = sub.add_parser("export", help="write an evidence bundle for verifiers (mrv-verify)")
    export.add_argument("--config", type=Path, required=True)
    export.add_argument(
        "--project", type=Path, help="project YAML: the period is its local dates, with the report"
    )
    export.add_argument("--from", dest="date_from", required=True, help="first day, YYYY-MM-DD")
    export.add_argument("--to", dest="date_to", required=True, help="last day, inclusive")
    export.add_argument("--out", type=Path, required=True, help="the bundle (.zip)")
    export.set_defaults(func=cmd_export)

    status = sub.add_parser("status", help="stored records, gaps and quarantine")
    status.add_argument("--config", type=Path, required=True)
    status.add_argument("--json", action="store_true")
    status.set_defaults(func=cmd_status)

    quarantine = sub.add_parser(
        "quarantine", help="messages and records that failed verification, with reasons"
    )
    quarantine.add_argument("--config", type=Path, required=True)
    quarantine.add_argument("--limit", type=int, default=50)
    quarantine.add_argument("--json", action="store_true", help="include the kept payloads (base64)")
    quarantine.set_defaults(func=cmd_quarantine)

    gateways = sub.add_parser("gateways", help="enroll, list, rotate and revoke gateway keys")
    gateways.add_argument("action", choices=["add", "list", "rotate", "revoke"])
    gateways.add_argument("request", nargs="?", type=Path, help="enrollment request file (add, rotate)")
    gateways.add_argument("--config", type=Path, required=True)
    gateways.add_argument("--gateway", help="gateway id (revoke; rotate defaults to the request's)")
    gateways.add_argument("--key", help="key id to revoke (default: the active key)")
    gateways.add_argument("--reason", default="", help="why the key is revoked (kept in the registry)")
    gateways.add_argument(
        "--valid-through-seal", type=int, help="last seal seq that stays valid (default: the last one stored)"
    )
    gateways.add_argument("--json", action="store_true")
    gateways.set_defaults(func=cmd_gateways)

    tokens = sub.add_parser("tokens", help="create, list and revoke API tokens")
    tokens.add_argument("action", choices=["add", "list", "revoke"])
    tokens.add_argument("--config", type=Path, required=True)
    tokens.add_argument("--name", help="who or what the token is for")
    tokens.add_argument("--role", choices=list(ROLES), default="operator")
    tokens.set_defaults(func=cmd_tokens)

    methodologies = sub.add_parser("methodologies", help="list methodologies and their equations")
    methodologies.set_defaults(func=cmd_methodologies)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    try:
        return int(args.func(args))
    except (
        ConfigError,
        KeyringError,
        StoreError,
        RegistryError,
        TokenError,
        ExposedSecretError,
        OSError,
    ) as exc:
        print(f"mrv-collector: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
