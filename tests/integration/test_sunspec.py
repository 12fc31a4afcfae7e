"""SunSpec devices over real Modbus TCP: the simulator serves a SunSpec inverter or meter ("SunS" at
40000, 50000 or 0, model 1, model 101/103/203, the end marker); 'mrv-agent scan' finds the marker
and the models and writes a profile that loads; the agent's own reading code (plan_reads,
TcpEndpoint.read, decode_reading) reads with it exactly the values the simulator meant to serve;
and the verifier re-decodes the recorded values, scale factor words included.

Nothing expected here is computed by the code under test: the point offsets are the SunSpec model
definitions' (github.com/sunspec/models, json/model_1.json, model_101.json, model_103.json,
model_203.json), written out below; each value is the plant model's, rounded to the resolution of
the exponent the simulator must choose (the smallest of -2..3 that serves every value sharing the
scale-factor register), worked out here from the register types' integer ranges.
"""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from decimal import ROUND_HALF_EVEN, Context, Decimal
from pathlib import Path
from typing import Any

import pytest

from agent.acquisition import decode_reading
from agent.clock import ScaledClock
from agent.commissioning import scan
from agent.identification import identify
from agent.meter_model import PvPlant, state
from agent.modbus import TcpEndpoint
from agent.plan import plan_reads
from agent.simulator import SimulatedMeter, Simulator, sunspec_meters, sunspec_profile
from agent.sunspec import profile_yaml, simulated_map
from collector.processing import ingest_messages
from mrv_core import bundle as bundle_module
from mrv_core.config_errors import load_yaml_text
from mrv_core.profile_schema import load_profile, load_profile_dir, parse_profile
from mrv_core.record import Value
from tests.factory import Gateway
from tests.harness.bundles import enrolled_store, export_bundle
from tests.harness.procs import Proc, free_port, port_open, wait_for
from tests.harness.programs import command

ROOT = Path(__file__).parents[2]
UNIT = 7
OTHER_UNIT = 8  # an Eastron SDM630 on the same bus: no SunSpec map
CAPACITY_KW = 40.0
# 04:00 UTC is noon at the plant (UTC+8): power is high and negative (the plant exports), the
# counters are well above zero. The clock stands still while a test reads.
NOON = datetime(2026, 6, 1, 4, tzinfo=UTC)
WIDE = Context(prec=80)

# Offsets from the model's ID register (json/model_*.json: ID, L, then the points in order).
COMMON_LENGTH = 66  # model_1.json: Mn 16, Md 16, Opt 8, Vr 8, SN 16, DA 1, Pad 1
COMMON_TEXTS = {"Mn": 2, "Md": 18, "Vr": 42, "SN": 50}
INVERTER_LENGTH = 50  # model_101.json, model_103.json
INVERTER = {
    "AphA": 3, "AphB": 4, "AphC": 5, "A_SF": 6,
    "PhVphA": 10, "PhVphB": 11, "PhVphC": 12, "V_SF": 13,
    "W": 14, "W_SF": 15, "Hz": 16, "Hz_SF": 17, "PF": 22, "PF_SF": 23, "WH": 24, "WH_SF": 26,
}  # fmt: skip
METER_LENGTH = 105  # model_203.json
METER = {
    "AphA": 3, "AphB": 4, "AphC": 5, "A_SF": 6,
    "PhVphA": 8, "PhVphB": 9, "PhVphC": 10, "V_SF": 15, "Hz": 16, "Hz_SF": 17,
    "W": 18, "WphA": 19, "WphB": 20, "WphC": 21, "W_SF": 22, "PF": 33, "PF_SF": 37,
    "TotWhExp": 38, "TotWhImp": 46, "TotWh_SF": 54,
}  # fmt: skip

# quantity -> (point, its scale-factor point, SunSpec type, unit, fixed scale)
INVERTER_POINTS = {
    "energy_active_export_total": ("WH", "WH_SF", "acc32", "Wh", "1"),
    "power_active_total": ("W", "W_SF", "int16", "W", "1"),
    "frequency": ("Hz", "Hz_SF", "uint16", "Hz", "1"),
    "power_factor": ("PF", "PF_SF", "int16", "1", "0.01"),  # SunSpec: percent
    **{f"voltage_l{i}": (f"PhVph{p}", "V_SF", "uint16", "V", "1") for i, p in enumerate("ABC", 1)},
    **{f"current_l{i}": (f"Aph{p}", "A_SF", "uint16", "A", "1") for i, p in enumerate("ABC", 1)},
}
METER_POINTS = {
    "energy_active_export_total": ("TotWhExp", "TotWh_SF", "acc32", "Wh", "1"),
    "energy_active_import_total": ("TotWhImp", "TotWh_SF", "acc32", "Wh", "1"),
    "power_active_total": ("W", "W_SF", "int16", "W", "1"),
    "frequency": ("Hz", "Hz_SF", "int16", "Hz", "1"),
    "power_factor": ("PF", "PF_SF", "int16", "1", "0.01"),
    **{f"power_active_l{i}": (f"Wph{p}", "W_SF", "int16", "W", "1") for i, p in enumerate("ABC", 1)},
    **{f"voltage_l{i}": (f"PhVph{p}", "V_SF", "int16", "V", "1") for i, p in enumerate("ABC", 1)},
    **{f"current_l{i}": (f"Aph{p}", "A_SF", "int16", "A", "1") for i, p in enumerate("ABC", 1)},
}
# SunSpec type -> (smallest raw integer, largest, the "not implemented" integer or None)
RANGES = {
    "uint16": (0, 0xFFFF, 0xFFFF),
    "int16": (-0x8000, 0x7FFF, -0x8000),
    "acc32": (0, 0xFFFFFFFF, None),
}
PHASES = {101: 1, 103: 3, 203: 3}
MODEL_UNIT_FACTOR = {  # the plant model's units (agent/meter_model.py), as factors to W, Wh, V, A, Hz
    "energy_active_export_total": Decimal(1000),  # kWh
    "energy_active_import_total": Decimal(1000),
}
# (SunSpec model, where its map starts): single-phase inverter at 40000, three-phase inverter at
# 50000, three-phase (wye) meter at 0: every base the discovery tries, both kinds of model.
CASES = [(101, 40000), (103, 50000), (203, 0)]


def _points(model: int) -> dict[str, tuple[str, str, str, str, str]]:
    """The quantities a profile of the model reads: per-phase ones only for the model's phases."""
    table = INVERTER_POINTS if model < 200 else METER_POINTS
    phases = "123"[: PHASES[model]]
    return {q: p for q, p in table.items() if q[-3:-1] != "_l" or q[-1] in phases}


def _offsets(model: int) -> dict[str, int]:
    return INVERTER if model < 200 else METER


def _model_address(base: int) -> int:
    return base + 2 + 2 + COMMON_LENGTH  # marker, common model's ID and L, its points


def _clock(elapsed: list[float] | None = None) -> ScaledClock:
    moving = elapsed if elapsed is not None else [0.0]
    return ScaledClock(start=NOON, anchor=0.0, speed=1.0, real=lambda: moving[0])


def expected(model: int, at: datetime) -> dict[str, tuple[Decimal, str]]:
    """Each quantity's value and raw text (value words, then scale-factor word) as the simulated
    device must serve it at ``at``: the plant's value, at the smallest exponent of -2..3 with which
    every value sharing the scale factor fits its type and is not its "not implemented" integer."""
    plant = state(PvPlant(capacity_kw=CAPACITY_KW, seed=UNIT), at)
    points = _points(model)
    intended = {
        q: WIDE.multiply(Decimal(repr(plant[q])), MODEL_UNIT_FACTOR.get(q, Decimal(1))) for q in points
    }

    def raw(quantity: str, exponent: int) -> int:
        step = WIDE.multiply(Decimal(points[quantity][4]), Decimal(1).scaleb(exponent))
        return int(WIDE.divide(intended[quantity], step).quantize(Decimal(1), rounding=ROUND_HALF_EVEN))

    def fits(quantity: str, exponent: int) -> bool:
        low, high, missing = RANGES[points[quantity][2]]
        return low <= raw(quantity, exponent) <= high and raw(quantity, exponent) != missing

    served: dict[str, tuple[Decimal, str]] = {}
    for quantity, (_, sf, kind, _, scale) in points.items():
        sharing = [q for q, p in points.items() if p[1] == sf]
        exponent = next(e for e in range(-2, 4) if all(fits(q, e) for q in sharing))
        number = raw(quantity, exponent)
        width = 8 if kind == "acc32" else 4
        text = f"{number % (1 << (4 * width)):0{width}x}" + f"{exponent % 0x10000:04x}"
        served[quantity] = (WIDE.multiply(Decimal(number), Decimal(scale)).scaleb(exponent), text)
    return served


@dataclass
class Bus:
    model: int
    base: int
    port: int
    endpoint: TcpEndpoint
    device: SimulatedMeter


@pytest.fixture(params=CASES, ids=[f"model-{m}-at-{b}" for m, b in CASES])
def bus(request: pytest.FixtureRequest) -> Iterator[Bus]:
    """A SunSpec device (unit 7) and an SDM630 (unit 8) on one Modbus TCP server."""
    model, base = request.param
    clock = _clock()
    (device,) = sunspec_meters(model, clock, {UNIT: CAPACITY_KW}, base)
    sdm630 = load_profile(ROOT / "firmware_profiles/eastron/sdm630-modbus-v2.yaml")
    other = SimulatedMeter(OTHER_UNIT, sdm630, PvPlant(capacity_kw=30, seed=OTHER_UNIT), clock)
    port = free_port()
    simulator = Simulator([device, other], port=port)
    simulator.start()
    endpoint = TcpEndpoint("127.0.0.1", port, timeout_s=2.0)
    try:
        yield Bus(model, base, port, endpoint, device)
    finally:
        endpoint.close()
        simulator.stop()


@pytest.mark.integration
def test_scan_finds_the_marker_the_models_and_the_end(bus: Bus) -> None:
    profiles = load_profile_dir(ROOT / "firmware_profiles")
    findings = {f.unit_id: f for f in scan(bus.endpoint, [UNIT, OTHER_UNIT, 9], profiles)}
    assert set(findings) == {UNIT, OTHER_UNIT}, "unit 9 is silent"
    assert findings[OTHER_UNIT].sunspec is None, "an SDM630 has no SunSpec map"
    assert "eastron-sdm630-v2" in findings[OTHER_UNIT].identified
    found = findings[UNIT].sunspec
    assert found is not None, findings[UNIT].sunspec_error
    assert findings[UNIT].fits == [], "no shipped profile reads a SunSpec device"
    length = INVERTER_LENGTH if bus.model < 200 else METER_LENGTH
    model_at = _model_address(bus.base)
    assert found.base == bus.base
    assert [(m.id, m.address, m.length) for m in found.models] == [
        (1, bus.base + 2, COMMON_LENGTH),
        (bus.model, model_at, length),
    ]
    assert found.end == model_at + 2 + length
    assert found.problems == []
    assert found.common["Mn"] == "MRV Simulated"
    assert found.common["SN"] == f"SIM{UNIT:05d}"
    assert found.common["Vr"] == "1.0.0"
    assert found.measurement is not None and found.measurement.id == bus.model


def _scan_cli(port: int, folder: Path, units: str = f"{UNIT}-{OTHER_UNIT}") -> str:
    done = subprocess.run(
        command(
            "agent",
            "scan",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--units",
            units,
            "--timeout",
            "1",
            "--write-profile",
            str(folder),
        ),
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


@pytest.mark.integration
def test_the_written_profile_reads_what_the_device_serves(bus: Bus, tmp_path: Path) -> None:
    """'mrv-agent scan --write-profile' writes a profile with the registers at the SunSpec model's
    offsets, each with its scale-factor register; it loads, identifies the device, and the agent
    reads with it exactly what the simulator meant (value and raw words)."""
    out = _scan_cli(bus.port, tmp_path / "written")
    assert f"SunSpec map at holding {bus.base}" in out, out
    assert f"model   {bus.model} (" in out and f"at {_model_address(bus.base)}" in out, out
    (path,) = (tmp_path / "written").glob("*.yaml")
    assert f"wrote {path}" in out
    profile = load_profile(path)
    points, offsets = _points(bus.model), _offsets(bus.model)
    model_at = _model_address(bus.base)
    assert {spec.quantity for spec in profile.registers} == set(points)
    for spec in profile.registers:
        point, sf, kind, unit, scale = points[spec.quantity]
        assert spec.function == "holding"
        assert (spec.address, spec.scale_factor) == (model_at + offsets[point], model_at + offsets[sf])
        assert (spec.unit, spec.scale) == (unit, Decimal(scale))
        assert spec.type == {"acc32": "u32", "uint16": "u16", "int16": "i16"}[kind]
        assert spec.not_implemented == {"acc32": None, "uint16": 0xFFFF, "int16": 0x8000}[kind]
    items = {item.name: item for item in profile.identification}
    assert items["manufacturer"].address == bus.base + 2 + COMMON_TEXTS["Mn"]
    assert items["manufacturer"].expect == "MRV Simulated"
    assert items["model"].address == bus.base + 2 + COMMON_TEXTS["Md"] and items["model"].expect
    assert (
        items["version"].address == bus.base + 2 + COMMON_TEXTS["Vr"] and profile.firmware_item == "version"
    )
    assert items["sunspec_model"].address == model_at and items["sunspec_model"].expect == str(bus.model)
    check = identify(bus.endpoint, profile, UNIT)
    assert check.matches, check.problems
    assert check.texts["serial"] == f"SIM{UNIT:05d}"

    plan = plan_reads(profile.registers, profile.max_registers_per_request, profile.max_gap_registers)
    reading = decode_reading(plan, bus.endpoint.read(plan, UNIT))
    assert reading.quality == (), reading.quality
    meant = expected(bus.model, NOON)
    for spec in profile.registers:
        got = reading.values[spec.quantity]
        assert (got.value, got.raw) == meant[spec.quantity], spec.quantity
    power = reading.values["power_active_total"].value
    assert power is not None and power < -10_000, "at noon the plant exports"
    # the profile written is the one the simulator serves with
    assert profile.sha256 == sunspec_profile(bus.model, bus.base).sha256


@pytest.mark.integration
def test_a_wrong_scale_factor_address_does_not_read_what_the_device_means(bus: Bus) -> None:
    """Not circular: the energy register read with the scale factor of another point decodes to
    something else."""
    profile = sunspec_profile(bus.model, bus.base)
    energy = profile.register("energy_active_export_total")
    moved = replace(energy, scale_factor=_model_address(bus.base) + _offsets(bus.model)["V_SF"])
    plan = plan_reads([moved], 125, 124)
    reading = decode_reading(plan, bus.endpoint.read(plan, UNIT))
    assert reading.values[energy.quantity].value != expected(bus.model, NOON)[energy.quantity][0]


SHARED_YAML = """
schema: 1
id: shared-scale-factor
manufacturer: Test
model: Counters sharing one scale factor
source: {document: test register map, version: "1"}
defaults: {function: holding, type: u32}
registers:
  - {quantity: energy_active_import_total, address: 0, unit: Wh, scale_factor: {address: 4}}
  - {quantity: energy_active_export_total, address: 2, unit: Wh, scale_factor: {address: 4}}
"""


def test_a_shared_scale_factor_serves_every_value_that_names_it() -> None:
    """The import counter (small) comes first and would fit at 10^-2, the export counter (large)
    needs 10^-1: both are served, and read, at 10^-1, the one exponent in the shared register."""
    profile = parse_profile(load_yaml_text(SHARED_YAML, "shared.yaml"), "shared.yaml")
    device = SimulatedMeter(UNIT, profile, PvPlant(capacity_kw=CAPACITY_KW, seed=UNIT), _clock())
    plan = plan_reads(profile.registers, 125, 0)
    reading = decode_reading(plan, device.registers())
    meant = expected(203, NOON)  # the meter's TotWhExp and TotWhImp share TotWh_SF the same way
    for quantity in ("energy_active_import_total", "energy_active_export_total"):
        got = reading.values[quantity]
        assert (got.value, got.raw) == meant[quantity], quantity
    assert reading.values["energy_active_import_total"].raw.endswith("ffff")  # 10^-1


@pytest.mark.integration
def test_points_the_device_does_not_implement(tmp_path: Path) -> None:
    """A device without the power factor serves 0x8000 for PF and PF_SF: a profile that reads it
    records null and the flag invalid_value:power_factor (raw kept), and the profile the scan
    writes leaves it out."""
    clock = _clock()
    (device,) = sunspec_meters(103, clock, {UNIT: CAPACITY_KW})
    full = device.profile
    device.profile = replace(full, registers=tuple(r for r in full.registers if r.quantity != "power_factor"))
    port = free_port()
    simulator = Simulator([device], port=port)
    simulator.start()
    endpoint = TcpEndpoint("127.0.0.1", port, timeout_s=2.0)
    try:
        plan = plan_reads(full.registers, 125, 124)
        reading = decode_reading(plan, endpoint.read(plan, UNIT))
        out = _scan_cli(port, tmp_path / "written", units=str(UNIT))
    finally:
        endpoint.close()
        simulator.stop()
    pf = reading.values["power_factor"]
    assert (pf.value, pf.raw) == (None, "8000" + "8000")
    assert reading.quality == ("invalid_value:power_factor",)
    assert "left out: power_factor" in out, out
    (path,) = (tmp_path / "written").glob("*.yaml")
    written = load_profile(path)
    assert "power_factor" not in {spec.quantity for spec in written.registers}
    assert len(written.registers) == len(full.registers) - 1


@pytest.mark.integration
def test_mrv_agent_simulate_serves_a_sunspec_device_that_scan_finds(tmp_path: Path) -> None:
    """The programs as a technician runs them: 'mrv-agent simulate --sunspec 101' and 'mrv-agent scan'."""
    port = free_port()
    simulate = Proc(
        command("agent", "simulate", "--sunspec", "101", "--sunspec-base", "50000", "--port", str(port),
                "--meter", f"{UNIT}:30"),
        tmp_path / "simulate.log",
        cwd=ROOT,
    )  # fmt: skip
    try:
        wait_for(lambda: port_open(port), 20, "the simulator's port")
        out = _scan_cli(port, tmp_path / "written", units=f"{UNIT - 1}-{UNIT}")
    finally:
        simulate.stop()
    lines = [line for line in out.splitlines() if "unit   6" in line]
    assert not lines, "unit 6 is silent: " + out
    assert "SunSpec map at holding 50000: manufacturer MRV Simulated, model SIM-INVERTER-101" in out, out
    assert "model     1 (common) at 50002, length 66" in out, out
    assert "model   101 (inverter, single phase) at 50070, length 50" in out, out
    assert "end marker at 50122" in out, out
    (path,) = (tmp_path / "written").glob("*.yaml")
    profile = load_profile(path)
    assert profile.register("energy_active_export_total").address == 50070 + INVERTER["WH"]


# -- the verifier re-decodes recorded values with their scale factors --------------------------

PROJECT_YAML = """
id: SUNSPEC-PV
name: SunSpec inverter PV
host_country: Mongolia
timezone: UTC
methodology: {id: pv-grid, version: "1.0", reference: test}
monitoring_points:
  - {number: 1, parameter: EG, gateway: gw-s, device: inv, quantity: energy_active_export_total}
fixed:
  EF_grid: {value: "0.8", unit: tCO2/MWh, source: test document}
"""


def _sunspec_bundle(tmp_path: Path, wrong_claim: int | None) -> tuple[Path, int]:
    """Two days of a SunSpec inverter's readings every 15 minutes, decoded by the agent
    (decode_reading) from the simulated device's words, signed, ingested, exported for the first
    day; reading ``wrong_claim`` is signed with the energy value that ignores the scale factor."""
    layout = simulated_map(103)
    text = profile_yaml(layout.device, layout.block)
    profile = sunspec_profile(103)
    elapsed = [0.0]
    (device,) = sunspec_meters(103, _clock(elapsed), {UNIT: CAPACITY_KW})
    plan = plan_reads(profile.registers, profile.max_registers_per_request, profile.max_gap_registers)
    gw = Gateway(gateway="gw-s", site="site-s")
    store, ingestor = enrolled_store(tmp_path, gw)
    count = 0
    for block in range(24):
        records = []
        for step in range(8):
            minute = (block * 8 + step) * 15
            elapsed[0] = minute * 60.0
            reading = decode_reading(plan, device.registers())
            values = dict(reading.values)
            if count == wrong_claim:
                energy = values["energy_active_export_total"]
                values["energy_active_export_total"] = Value(
                    Decimal(int(energy.raw[:8], 16)), "Wh", energy.raw
                )
            count += 1
            records.append(gw.record("inv", minute, 0, profile=profile, values=values))
        ingest_messages(ingestor, [(gw.topic, gw.message(gw.seal(records)))])
    store.close()
    bundle = export_bundle(tmp_path, {"inverter.yaml": text}, PROJECT_YAML, "2026-01-01", "2026-01-01")
    return bundle, len(profile.registers)


def _lean_and_full(
    path: Path, monkeypatch: pytest.MonkeyPatch
) -> tuple[dict[str, Any], dict[str, Any], list[bool]]:
    """The verifier's result on its lean path (seals of one layout, used values only, a column at a
    time) and on its full path (every seal record by record), which must agree; and whether each
    run of the lean path had its used values confirmed a column at a time (through
    BundleVerifier._plan's confirmers) rather than going record by record."""
    lean_runs: list[bool] = []
    original = bundle_module.BundleVerifier._lean_run

    def counted(self: bundle_module.BundleVerifier, *args: Any, **kwargs: Any) -> bool:
        confirmed = original(self, *args, **kwargs)
        lean_runs.append(confirmed)
        return confirmed

    with monkeypatch.context() as patch:
        patch.setattr(bundle_module.BundleVerifier, "_lean_run", counted)
        lean = bundle_module.verify_bundle(path).as_dict()
    with monkeypatch.context() as patch:
        patch.setattr(bundle_module, "_FIRST_LINE", re.compile(rb"(?!)"))  # no seal is regular now
        full = bundle_module.verify_bundle(path).as_dict()
    return lean, full, lean_runs


@pytest.mark.integration
@pytest.mark.parametrize("wrong_claim", [None, 40])
def test_the_verifier_re_decodes_scale_factor_values(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, wrong_claim: int | None
) -> None:
    bundle, registers = _sunspec_bundle(tmp_path, wrong_claim)
    lean, full, lean_runs = _lean_and_full(bundle, monkeypatch)
    assert lean == full
    assert lean_runs, "the seals take the lean path"
    every = bundle_module.verify_bundle(bundle, all_values=True).as_dict()
    mismatches = [f for f in every["findings"] if f["kind"] == "value_mismatch"]
    if wrong_claim is None:
        assert lean["verdict"] == "verified", lean["findings"]
        assert every["verdict"] == "verified", every["findings"]
        assert every["decoded_values"] == every["records"] * registers  # every value, sf words included
        assert all(lean_runs), "the energy values with their scale factor are confirmed a run at a time"
        done = subprocess.run(
            command("verify", str(bundle), "--json"), capture_output=True, text=True, timeout=120
        )
        assert done.returncode == 0, done.stdout + done.stderr
        assert json.loads(done.stdout)["verdict"] == "verified"
    else:
        assert lean["verdict"] == "failed"
        named = [f for f in lean["findings"] if f["kind"] == "value_mismatch"]
        assert len(named) == 1 and "energy_active_export_total" in named[0]["detail"], lean["findings"]
        assert len(mismatches) == 1 and mismatches[0]["device"] == "inv"
