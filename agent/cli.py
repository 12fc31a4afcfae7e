"""``mrv-agent``: run the gateway, manage its key, simulate and probe meters."""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import ValidationError

from agent.buffer import Buffer, BufferError, open_stats
from agent.clock import Clock, ScaledClock, SystemClock
from agent.config import AgentConfig, RtuTransport, load_agent_config
from agent.keys import KeyFileError, create_signer, load_or_create_signer, load_signer
from mrv_core.config_errors import ConfigError
from mrv_core.profile import Profile
from mrv_core.profile_schema import load_profile, load_profile_dir
from mrv_core.secret_files import ExposedSecretError
from mrv_core.signing import b64, fingerprint
from mrv_core.timefmt import format_time

if TYPE_CHECKING:
    from agent.commissioning import UnitFinding

log = logging.getLogger("mrv-agent")


def _setup_logging(verbose: bool) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    logging.getLogger("pymodbus").setLevel(logging.CRITICAL if not verbose else logging.INFO)
    logging.getLogger("apscheduler").setLevel(logging.WARNING if not verbose else logging.INFO)


# glibc's mallopt parameters (malloc.h)
M_TRIM_THRESHOLD, M_MMAP_THRESHOLD, M_ARENA_MAX = -1, -3, -8


def _lean_malloc() -> bool:
    """Keep a long-running gateway's memory to what it uses (Raspberry Pis, industrial boxes with
    little RAM). glibc gives each thread that allocates an arena of its own, and after a large
    buffer is freed (a seal's message, ~1 MB) it raises its mmap threshold so that the next ones
    come from the heap and stay there: ~4 MB for nothing (docs/BENCHMARKS.md). Two arenas (the
    threads mostly wait on I/O) and a fixed threshold return them. False where there is no glibc."""
    import ctypes  # noqa: PLC0415 - only the agent's run needs it

    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False  # not glibc (musl, macOS): its allocator, its defaults
    return all(
        mallopt(param, value) == 1
        for param, value in (
            (M_ARENA_MAX, 2),
            (M_MMAP_THRESHOLD, 256 * 1024),
            (M_TRIM_THRESHOLD, 1024 * 1024),
        )
    )


def _profiles_for(config: AgentConfig, config_path: Path) -> dict[str, Profile]:
    profiles = load_profile_dir(config.profiles_dir)
    for index, device in enumerate(config.devices):
        profile = profiles.get(device.profile)
        if profile is None:
            raise ConfigError(
                f"{config_path}: devices[{index}].profile: no profile {device.profile!r} in "
                f"{config.profiles_dir} (known: {', '.join(sorted(profiles)) or 'none'})"
            )
        if device.quantities is not None:
            try:
                profile.select(device.quantities)
            except KeyError as exc:
                raise ConfigError(f"{config_path}: devices[{index}].quantities: {exc.args[0]}") from None
    return profiles


def _clock(config: AgentConfig) -> Clock:
    sim = config.simulated_clock
    if sim is None:
        return SystemClock()
    return ScaledClock(start=sim.start, anchor=sim.anchor_unix, speed=sim.speed)


def cmd_run(args: argparse.Namespace) -> int:
    from agent.service import AgentService  # noqa: PLC0415

    _lean_malloc()
    config = load_agent_config(args.config)
    profiles = _profiles_for(config, args.config)
    signer, created = load_or_create_signer(config.gateway.key_file)
    if created:
        log.info(
            "created gateway key %s (key id %s); register it with the collector ('mrv-agent key show')",
            config.gateway.key_file,
            signer.key_id,
        )
    buffer = Buffer(
        config.buffer.path,
        config.gateway.id,
        config.buffer.synchronous,
        quota_bytes=int(config.buffer.quota_mb * 1e6),
        reserve_bytes=int(config.buffer.min_free_mb * 1e6),
    )
    service = AgentService(config, profiles, signer, _clock(config), buffer)
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    service.start()
    stop.wait()
    log.info("stopping: sealing and delivering what was read (up to %.0f s)", args.drain_timeout)
    service.stop(args.drain_timeout)
    return 0


def _key_entry(config: AgentConfig) -> dict[str, str]:
    signer = load_signer(config.gateway.key_file)
    return {
        "gateway": config.gateway.id,
        "site": config.gateway.site,
        "key_id": signer.key_id,
        "public_key": b64(signer.public_key_raw),
        "fingerprint": fingerprint(signer.public_key_raw),
    }


def cmd_key(args: argparse.Namespace) -> int:
    config = load_agent_config(args.config)
    if args.action == "init":
        signer = create_signer(config.gateway.key_file)
        print(f"created {config.gateway.key_file} (key id {signer.key_id})")
        return 0
    if args.action == "rotate":
        old = load_signer(config.gateway.key_file)
        kept = config.gateway.key_file.with_name(f"{config.gateway.key_file.name}.retired-{old.key_id}")
        config.gateway.key_file.rename(kept)
        signer = create_signer(config.gateway.key_file)
        print(f"new key {signer.key_id} (old key {old.key_id} kept as {kept});")
        print("restart the agent, and have the operator run 'mrv-collector gateways rotate'")
        print("with the request that 'mrv-agent enroll' prints")
        return 0
    entry = _key_entry(config)
    if args.json:
        print(json.dumps(entry))
    else:
        print(f"gateway     {entry['site']}/{entry['gateway']}")
        print(f"key id      {entry['key_id']}")
        print(f"fingerprint {entry['fingerprint']}")
        print(f"public key  {entry['public_key']}  (Ed25519, raw, base64)")
    return 0


def enrollment_request(config: AgentConfig) -> dict[str, str]:
    entry = _key_entry(config)
    return {"type": "mrv-enrollment-request", **entry, "created": format_time(datetime.now(UTC))}


def cmd_enroll(args: argparse.Namespace) -> int:
    """Print (or write) the request an operator feeds to 'mrv-collector gateways add'."""
    config = load_agent_config(args.config)
    _, created = load_or_create_signer(config.gateway.key_file)
    if created:
        print(f"created the gateway key {config.gateway.key_file} (mode 0600)", file=sys.stderr)
    text = json.dumps(enrollment_request(config), indent=2) + "\n"
    if args.out:
        args.out.write_text(text)
        print(f"wrote {args.out}: give it to the operator ('mrv-collector gateways add {args.out.name}')")
    else:
        print(text, end="")
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    config = load_agent_config(args.config)
    stats = open_stats(config.buffer.path)
    body = {
        "gateway": config.gateway.id,
        "site": config.gateway.site,
        "pending_records": stats.pending_records,
        "unsealed_records": stats.unsealed_records,
        "sealed_undelivered_records": stats.sealed_records,
        "oldest_undelivered": stats.oldest_time,
        "counters": stats.counters,
        "devices": {d: {"last_seq": s, "last_time": t} for d, (s, t) in stats.chains.items()},
    }
    if args.json:
        print(json.dumps(body, indent=2))
        return 0
    print(f"gateway {body['site']}/{body['gateway']}")
    print(f"  waiting for delivery: {stats.pending_records} records (oldest {stats.oldest_time or '-'})")
    for name, value in stats.counters.items():
        print(f"  {name:<18} {value}")
    for device, (seq, at) in sorted(stats.chains.items()):
        print(f"  device {device:<16} last seq {seq:<8} at {at}")
    return 0


def cmd_check_config(args: argparse.Namespace) -> int:
    """Everything ``run`` checks before it starts, without starting: config, profiles, key file."""
    from agent.modbus import endpoint_for  # noqa: PLC0415

    config = load_agent_config(args.config)
    profiles = _profiles_for(config, args.config)
    key = config.gateway.key_file
    key_state = "no key yet (run creates it)"
    if key.exists():
        key_state = f"key {fingerprint(load_signer(key).public_key_raw)}"  # refuses an exposed key file
    mqtt, buffer = config.mqtt, config.buffer
    print(f"{args.config}: valid")
    print(f"  gateway  {config.gateway.site}/{config.gateway.id}, {key_state}")
    print(f"  broker   mqtt{'s' if mqtt.tls else ''}://{mqtt.host}:{mqtt.port} (MQTT {mqtt.protocol})")
    print(f"  buffer   {buffer.path}, quota {buffer.quota_mb:g} MB, synchronous {buffer.synchronous}")
    for device in config.devices:
        profile = profiles[device.profile]
        where = endpoint_for(device.transport).name
        print(
            f"  device   {device.id}: {profile.manufacturer} {profile.model} ({profile.id}), "
            f"unit {device.unit_id} at {where}, every {device.poll_interval_s:g} s"
        )
    return 0


def cmd_profiles(args: argparse.Namespace) -> int:
    """The firmware profiles a technician can choose from, with where their register maps come from."""
    profiles = load_profile_dir(args.dir)
    if args.json:
        print(json.dumps([{**p.canonical(), "sha256": p.sha256} for p in profiles.values()], indent=1))
        return 0
    print(f"{'ID':<24} {'MANUFACTURER':<14} {'MODEL':<26} {'FIRMWARE':<12} {'REGS':>4}  SOURCE")
    for profile in sorted(profiles.values(), key=lambda p: p.id):
        source = ", ".join(f"{k}: {v}" for k, v in sorted(profile.source.items()))
        print(
            f"{profile.id:<24} {profile.manufacturer:<14} {profile.model:<26} {profile.firmware:<12} "
            f"{len(profile.registers):>4}  {source}"
        )
    return 0


def _meters(specs: list[str]) -> dict[int, float]:
    meters: dict[int, float] = {}
    for spec in specs:
        unit, _, kw = spec.partition(":")
        try:
            meters[int(unit)] = float(kw or 50)
        except ValueError:
            raise ConfigError(f"--meter {spec!r}: expected UNIT[:CAPACITY_KW], e.g. 1:50") from None
    return meters or {1: 50.0}


def _faults(specs: list[str]) -> dict[int, str]:
    from agent.simulator import FAULTS  # noqa: PLC0415

    faults: dict[int, str] = {}
    for spec in specs:
        unit, _, kind = spec.partition(":")
        if not unit.isdigit() or kind not in FAULTS:
            raise ConfigError(f"--fault {spec!r}: expected UNIT:KIND, KIND one of {', '.join(FAULTS)}")
        faults[int(unit)] = kind
    return faults


def cmd_simulate(args: argparse.Namespace) -> int:
    from agent.simulator import Simulator, default_meters, sunspec_meters  # noqa: PLC0415

    clock: Clock = SystemClock()
    if args.clock_start:
        start = datetime.fromisoformat(args.clock_start.replace("Z", "+00:00"))
        clock = ScaledClock(start=start, anchor=args.clock_anchor or time.time(), speed=args.clock_speed)
    line = _rtu(args) if args.serial else None
    if args.sunspec is not None:
        meters = sunspec_meters(args.sunspec, clock, _meters(args.meter), args.sunspec_base)
        profile = meters[0].profile
    else:
        profile = load_profile(args.profile)
        meters = default_meters(profile, clock, _meters(args.meter))
    for unit, kind in _faults(args.fault).items():
        matching = [meter for meter in meters if meter.unit_id == unit]
        if not matching:
            raise ConfigError(f"--fault {unit}:{kind}: no simulated meter has unit id {unit}")
        matching[0].fault = kind
    simulator = Simulator(meters, port=args.port, serial=line)
    simulator.start()
    log.info(
        "simulating %s on %s, unit(s) %s",
        profile.id,
        simulator.where,
        ", ".join(str(u) for u in _meters(args.meter)),
    )
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    stop.wait()
    simulator.stop()
    return 0


def cmd_probe(args: argparse.Namespace) -> int:
    from agent.acquisition import decode_reading  # noqa: PLC0415
    from agent.modbus import ModbusReadError, RtuEndpoint, TcpEndpoint  # noqa: PLC0415
    from agent.plan import plan_reads  # noqa: PLC0415

    profile = load_profile(args.profile)
    plan = plan_reads(profile.registers, profile.max_registers_per_request, profile.max_gap_registers)
    endpoint = (
        RtuEndpoint(_rtu(args, args.timeout))
        if args.serial
        else TcpEndpoint(args.host, args.port, args.timeout)
    )
    try:
        words = endpoint.read(plan, args.unit)
    except ModbusReadError as exc:
        print(f"read failed ({exc.reason}): {exc}", file=sys.stderr)
        return 2
    finally:
        endpoint.close()
    reading = decode_reading(plan, words)
    print(
        f"{profile.manufacturer} {profile.model} ({profile.id}) at "
        f"{endpoint.name} unit {args.unit}, {len(plan.requests)} request(s)"
    )
    for name, value in reading.values.items():
        shown = "-" if value.value is None else str(value.value)
        print(f"  {name:<28} {shown:>16} {value.unit:<4} raw {value.raw}")
    for flag in reading.quality:
        print(f"  quality: {flag}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mrv-agent", description=__doc__)
    parser.add_argument("-v", "--verbose", action="store_true")
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="poll meters, sign, buffer and publish")
    run.add_argument("--config", type=Path, required=True)
    run.add_argument(
        "--drain-timeout", type=float, default=10.0, help="seconds to keep delivering after a stop signal"
    )
    run.set_defaults(func=cmd_run)

    check = sub.add_parser("check-config", help="validate the config, profiles and key without running")
    check.add_argument("--config", type=Path, required=True)
    check.set_defaults(func=cmd_check_config)

    profiles = sub.add_parser("profiles", help="list the firmware profiles: model, firmware, source")
    profiles.add_argument("--dir", type=Path, default=Path("firmware_profiles"))
    profiles.add_argument("--json", action="store_true")
    profiles.set_defaults(func=cmd_profiles)

    key = sub.add_parser("key", help="create or show the gateway key")
    key.add_argument("action", choices=["init", "show", "rotate"])
    key.add_argument("--config", type=Path, required=True)
    key.add_argument("--json", action="store_true", help="print a keyring entry for the collector")
    key.set_defaults(func=cmd_key)

    enroll = sub.add_parser("enroll", help="print the enrollment request for the collector's registry")
    enroll.add_argument("--config", type=Path, required=True)
    enroll.add_argument("--out", type=Path, help="write the request to this file")
    enroll.set_defaults(func=cmd_enroll)

    status = sub.add_parser("status", help="buffer depth, counters and device chains")
    status.add_argument("--config", type=Path, required=True)
    status.add_argument("--json", action="store_true")
    status.set_defaults(func=cmd_status)

    sim = sub.add_parser("simulate", help="serve simulated PV meters over Modbus TCP or RTU")
    _simulated_device_options(sim)
    sim.add_argument("--port", type=int, default=5020, help="TCP port on 127.0.0.1")
    sim.add_argument("--serial", help="serve Modbus RTU on this serial device instead of TCP")
    _serial_options(sim)
    sim.add_argument("--meter", action="append", default=[], help="UNIT[:CAPACITY_KW], repeatable")
    sim.add_argument(
        "--fault",
        action="append",
        default=[],
        help="UNIT:KIND, repeatable; KIND one of silent, slow, exception, counter_reset, frozen, garbage",
    )
    sim.add_argument("--clock-start", help="simulated start time (ISO 8601, UTC)")
    sim.add_argument("--clock-speed", type=float, default=1.0)
    sim.add_argument("--clock-anchor", type=float, help="real Unix time at which --clock-start applies")
    sim.set_defaults(func=cmd_simulate)

    scan = sub.add_parser(
        "scan", help="find the unit ids that answer on a bus, the profiles that fit and SunSpec maps"
    )
    _scan_options(scan)
    scan.set_defaults(func=cmd_scan)

    probe = sub.add_parser("probe", help="read a meter once with a profile and print the values")
    probe.add_argument("--profile", type=Path, required=True)
    _bus_options(probe)
    probe.add_argument("--unit", type=int, default=1)
    probe.add_argument("--timeout", type=float, default=3.0)
    probe.set_defaults(func=cmd_probe)
    return parser


def cmd_scan(args: argparse.Namespace) -> int:
    """Which unit ids answer on a bus, and which profiles read them sensibly."""
    from agent.commissioning import scan  # noqa: PLC0415
    from agent.modbus import Endpoint, RtuEndpoint, TcpEndpoint  # noqa: PLC0415

    profiles = load_profile_dir(args.profiles)
    first, _, last = args.units.partition("-")
    try:
        units = range(int(first), int(last or first) + 1)
    except ValueError:
        raise ConfigError(f"--units {args.units!r}: expected N or N-M, e.g. 1-247") from None
    if units.start < 1 or units.stop > 248:
        raise ConfigError(f"--units {args.units!r}: unit ids are 1 to 247")
    endpoint: Endpoint = TcpEndpoint(args.host, args.port, args.timeout)
    if args.serial:
        endpoint = RtuEndpoint(_rtu(args, args.timeout))
    print(f"scanning {endpoint.name}, unit ids {units.start}-{units.stop - 1}, {len(profiles)} profile(s)")
    try:
        findings = scan(endpoint, units, profiles)
    finally:
        endpoint.close()
    for finding in findings:
        if finding.fits:
            for profile_id, reading in finding.fits:
                shown = ", ".join(
                    f"{name} {value.value} {value.unit}"
                    for name, value in list(reading.values.items())[:3]
                    if value.value is not None
                )
                check = finding.identities.get(profile_id)
                said = (
                    ""
                    if check is None
                    else (
                        "; identified: " + ", ".join(f"{k} {v}" for k, v in check.texts.items() if v)
                        if check.matches
                        else "; NOT this model: " + "; ".join(check.problems)
                    )
                )
                print(f"  unit {finding.unit_id:>3}: fits {profile_id} ({shown}{said})")
        else:
            print(f"  unit {finding.unit_id:>3}: answers, no profile fits: {'; '.join(finding.refusals)}")
        _print_sunspec(finding, args.write_profile)
    if not findings:
        print("  nothing answered: check wiring (A/B), baud rate, parity and the address range")
    return 0 if findings else 1


def _print_sunspec(finding: UnitFinding, directory: Path | None) -> None:
    """What the SunSpec discovery found on a unit id and, with ``directory``, the profile written."""
    from agent.sunspec import describe, profile_id, profile_registers, profile_yaml  # noqa: PLC0415

    unit = f"  unit {finding.unit_id:>3}:"
    if finding.sunspec_error is not None:
        print(f"{unit} SunSpec discovery stopped: {finding.sunspec_error}")
    device = finding.sunspec
    if device is None:
        return
    for number, line in enumerate(describe(device)):
        print(f"{unit} {line}" if number == 0 else f"{' ' * len(unit)} {line}")
    block = device.measurement
    if directory is None or block is None:
        return
    _, left_out = profile_registers(device, block)
    path = directory / f"{profile_id(device, block)}.yaml"
    directory.mkdir(parents=True, exist_ok=True)
    path.write_text(profile_yaml(device, block), encoding="utf-8")
    profile = load_profile(path)  # what it wrote loads, as the agent will load it
    print(
        f"{' ' * len(unit)}   wrote {path}: profile {profile.id}, {len(profile.registers)} registers, "
        f"sha256 {profile.sha256}"
    )
    if left_out:
        print(f"{' ' * len(unit)}   not given by the device, left out: {', '.join(left_out)}")


def _scan_options(parser: argparse.ArgumentParser) -> None:
    _bus_options(parser)
    parser.add_argument("--units", default="1-247", help="unit ids to try: N or N-M")
    parser.add_argument("--timeout", type=float, default=0.5, help="seconds to wait for each unit id")
    parser.add_argument("--profiles", type=Path, default=Path("firmware_profiles"), help="profiles folder")
    parser.add_argument(
        "--write-profile",
        type=Path,
        metavar="DIR",
        help="write a profile YAML into DIR for each SunSpec inverter or meter found",
    )


def _simulated_device_options(parser: argparse.ArgumentParser) -> None:
    """What a simulated meter is: a profile's meter, or a SunSpec device."""
    device = parser.add_mutually_exclusive_group(required=True)
    device.add_argument("--profile", type=Path, help="profile YAML file")
    device.add_argument(
        "--sunspec",
        type=int,
        choices=(101, 102, 103, 201, 202, 203, 204),
        help="serve a SunSpec device instead: model 1 and this inverter (101-103) or meter (201-204) model",
    )
    parser.add_argument(
        "--sunspec-base",
        type=int,
        choices=(40000, 50000, 0),
        default=40000,
        help="holding register of the SunSpec marker 'SunS' (default 40000)",
    )


def _bus_options(parser: argparse.ArgumentParser) -> None:
    """Where the meters are: a TCP host, or a serial line with its settings."""
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--host", help="Modbus TCP: the meter's (or RS-485 gateway's) address")
    where.add_argument("--serial", help="Modbus RTU: the serial device, e.g. /dev/ttyUSB0")
    parser.add_argument("--port", type=int, default=502, help="TCP port")
    _serial_options(parser)


def _serial_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--baud", type=int, default=9600, help="serial: baud rate")
    parser.add_argument("--parity", choices=("N", "E", "O"), default="E", help="serial: parity")
    parser.add_argument("--stopbits", type=int, choices=(1, 2), default=1, help="serial: stop bits")


def _rtu(args: argparse.Namespace, timeout_s: float = 1.0) -> RtuTransport:
    """The serial line of --serial/--baud/--parity/--stopbits, checked as a config's would be."""
    try:
        return RtuTransport(
            type="rtu",
            serial=args.serial,
            baudrate=args.baud,
            parity=args.parity,
            stopbits=args.stopbits,
            timeout_s=timeout_s,
        )
    except ValidationError as exc:
        raise ConfigError(f"serial line options: {exc.errors()[0]['msg']}") from None


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    _setup_logging(args.verbose)
    try:
        return int(args.func(args))
    except (ConfigError, KeyFileError, BufferError, ExposedSecretError) as exc:
        print(f"mrv-agent: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
