"""`mrv-collector plan` and `mrv-collector portfolio` as an operator runs them, on a store filled
through the real ingest path with signed records of two projects (one with a cost)."""

from __future__ import annotations

import json
import subprocess
from decimal import ROUND_CEILING, Decimal
from pathlib import Path
from typing import Any

from collector.processing import Ingestor, ingest_messages
from collector.store.sqlite import SqliteStore
from tests.factory import Gateway, energy_value
from tests.harness.programs import command, run_on_a_terminal

PV_PERIODS = [("2026-01-02", "2026-01-03"), ("2026-01-04", "2026-01-04")]  # Asia/Ulaanbaatar
CHILLER_PERIODS = [("2026-01-01", "2026-01-02"), ("2026-01-03", "2026-01-03")]  # Asia/Jakarta
PV_COST = Decimal(7_777_777)


def _records(gw: Gateway) -> list[bytes]:
    """Five days from 2026-01-01T00:00Z: two PV meters of a 200 MW class plant hourly (export by
    local day, import at all hours; two records of pv-2 missing), three chiller meters every 15 min."""
    records = []
    pv = {"pv-1": [Decimal("120000.37"), Decimal("512.08")], "pv-2": [Decimal(80000), Decimal("90.5")]}
    for hour in range(24 * 5):
        local = (hour + 8) % 24
        for device, scale in (("pv-1", Decimal(1)), ("pv-2", Decimal("0.61"))):
            export, imported = pv[device]
            export += (Decimal(200_000) if 8 <= local < 18 else Decimal("3.17")) * scale + hour % 7
            imported += Decimal("2.43") + Decimal(hour % 3) * Decimal("0.11")
            pv[device] = [export, imported]
            data = gw.record(
                device, hour * 60, export, extra={"energy_active_import_total": energy_value(imported)}
            )
            if not (device == "pv-2" and hour in (50, 51)):
                records.append(data)
    chillers = {"chiller-1": Decimal(5000), "chiller-2": Decimal("7300.5"), "chiller-3": Decimal(100)}
    for step in range(5 * 24 * 4):
        for device, rate in (("chiller-1", "61.25"), ("chiller-2", "47.3"), ("chiller-3", "12.07")):
            chillers[device] += Decimal(rate) + Decimal(step % 5) * Decimal("0.13")
            records.append(
                gw.record(device, step * 15, chillers[device], quantity="energy_active_import_total")
            )
    return records


def _store(tmp_path: Path, projects: Path) -> Path:
    gw = Gateway()
    store = SqliteStore(tmp_path / "c.sqlite")
    ingestor = Ingestor(store, gw.keyring(), clock_ms=lambda: 1_767_225_600_000)
    records = _records(gw)
    for first in range(0, len(records), 24):
        chunk = records[first : first + 24]
        result = ingest_messages(ingestor, [(gw.topic, gw.message(gw.seal(chunk)))])
        assert not result.quarantined and result.stored == len(chunk)
    store.close()
    config = tmp_path / "collector.yaml"
    config.write_text(
        json.dumps(
            {
                "store": {"type": "sqlite", "path": str(tmp_path / "c.sqlite")},
                "keyring": "keys.json",
                "projects_dir": str(projects),
            }
        )
    )
    return config


def _point(number: int, parameter: str, device: str, quantity: str) -> dict[str, Any]:
    return {
        "number": number,
        "parameter": parameter,
        "gateway": "gw-test",
        "device": device,
        "quantity": quantity,
    }


def _projects(tmp_path: Path) -> Path:
    folder = tmp_path / "projects"
    folder.mkdir()
    export, imported = "energy_active_export_total", "energy_active_import_total"
    pv = {
        "id": "TEST-PV",
        "name": "Test PV plant",
        "host_country": "Mongolia",
        "timezone": "Asia/Ulaanbaatar",
        "methodology": {"id": "pv-grid", "version": "1.0", "reference": "structure only"},
        "monitoring_points": [
            _point(1, "EG", "pv-1", export),
            _point(2, "EG", "pv-2", export),
            _point(3, "EG_AUX", "pv-1", imported),
            _point(4, "EG_AUX", "pv-2", imported),
        ],
        "fixed": {"EF_grid": {"value": "0.797", "unit": "tCO2/MWh", "source": "national grid"}},
        "plan": {
            "phase": "demonstration",
            "period_years": 1,
            "expected": {
                "EG": {"capacity": {"value": 1200, "unit": "kWp"}, "hours": 1460},
                "EG_AUX": {"value": 12, "unit": "MWh", "basis": "night consumption"},
            },
        },
        "periods": [{"from": a, "to": b} for a, b in PV_PERIODS],
        "cost": {"amount": str(PV_COST), "currency": "JPY", "description": "total project cost"},
    }
    chiller = {
        "id": "TEST-CHILLER",
        "name": "Test chillers",
        "host_country": "Indonesia",
        "timezone": "Asia/Jakarta",
        "methodology": {"id": "high-efficiency-equipment-2-groups", "version": "1.0", "reference": "ref"},
        "monitoring_points": [
            _point(1, "EC_PJ_1", "chiller-1", imported),
            _point(2, "EC_PJ_1", "chiller-2", imported),
            _point(3, "EC_PJ_2", "chiller-3", imported),
        ],
        "fixed": {
            "COP_PJ_1": {"value": "6.2", "unit": "1", "source": "catalogue"},
            "COP_RE_1": {"value": "4.5", "unit": "1", "source": "methodology default"},
            "COP_PJ_2": {"value": "5.8", "unit": "1", "source": "catalogue"},
            "COP_RE_2": {"value": "5.0", "unit": "1", "source": "methodology default"},
            "EF_elec": {"value": "0.533", "unit": "tCO2/MWh", "source": "Jamali grid"},
        },
        "plan": {
            "phase": "diffusion",
            "period_years": 1,
            "expected": {
                "EC_PJ_1": {"value": 4500, "unit": "MWh", "basis": "two chillers"},
                "EC_PJ_2": {"value": 500, "unit": "MWh", "basis": "screw chiller"},
            },
        },
        "periods": [{"from": a, "to": b} for a, b in CHILLER_PERIODS],
    }
    (folder / "a-pv.yaml").write_text(json.dumps(pv))
    (folder / "b-chiller.yaml").write_text(json.dumps(chiller))
    return folder


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command("collector", *args), capture_output=True, text=True, timeout=300)


def _report(config: Path, project: Path, first: str, last: str) -> dict[str, Any]:
    done = _run("report", "--config", str(config), "--project", str(project), "--from", first, "--to", last,
                "--format", "json")  # fmt: skip
    assert done.returncode == 0, done.stderr
    report: dict[str, Any] = json.loads(done.stdout)
    return report


def test_portfolio_credits_equal_the_reports_and_add_up(tmp_path: Path) -> None:
    projects = _projects(tmp_path)
    config = _store(tmp_path, projects)
    done = _run("portfolio", "--config", str(config), "--projects", str(projects), "--format", "json")
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""  # no progress when stderr is not a terminal
    body = json.loads(done.stdout)
    pv, chiller = body["projects"]
    assert (pv["id"], chiller["id"]) == ("TEST-PV", "TEST-CHILLER")

    for summary, file, spans in ((pv, "a-pv.yaml", PV_PERIODS), (chiller, "b-chiller.yaml", CHILLER_PERIODS)):
        assert [(p["from"], p["to"]) for p in summary["periods"]] == spans
        cumulative = 0
        for period, (first, last) in zip(summary["periods"], spans, strict=True):
            report = _report(config, projects / file, first, last)
            assert period["credits_tco2"] == report["emission_reductions_tco2"]
            for key in (
                "reference_emissions_tco2",
                "project_emissions_tco2",
                "emission_reductions_unrounded_tco2",
            ):
                assert period[key] == report[key]
            assert period["completeness"] == report["completeness"]
            cumulative += report["emission_reductions_tco2"]
            assert period["cumulative_credits_tco2"] == cumulative
        assert summary["credits_tco2"] == cumulative

    # the numbers are what they should be: a 200 MW class plant credits thousands, the chillers few
    assert pv["credits_tco2"] >= 5_000 and not pv["below_minimum"]
    assert 0 < chiller["credits_tco2"] < 5_000 and chiller["below_minimum"]
    # the two missing records of pv-2 show in the period that holds them (hour 50 = 2026-01-03 10:00 local)
    assert pv["periods"][0]["completeness"]["missing_records"] > 0
    assert pv["periods"][0]["completeness"]["points_with_data"] == 4

    # cost per tonne: cost / cumulative credits, rounded up to 0.01; none without a cost
    expected = (PV_COST / pv["credits_tco2"]).quantize(Decimal("0.01"), rounding=ROUND_CEILING)
    assert Decimal(pv["cost_per_tco2"]) == expected
    assert chiller["cost"] is None and chiller["cost_per_tco2"] is None

    totals = body["totals"]
    assert totals["projects"] == 2
    assert totals["credits_tco2"] == pv["credits_tco2"] + chiller["credits_tco2"]
    (jpy,) = totals["costs"]
    assert jpy["currency"] == "JPY" and jpy["projects"] == ["TEST-PV"]
    assert jpy["credits_tco2"] == pv["credits_tco2"] and Decimal(jpy["cost_per_tco2"]) == expected
    assert jpy["target_cost_per_tco2"] == "1300"
    assert jpy["meets_target"] is (1300 * pv["credits_tco2"] >= PV_COST)
    # this store: 4,841 + 2,566 = 7,407 tCO2; 7,777,777 JPY / 7,407 = 1,050.0576... -> 1,050.06, aim met
    assert [p["credits_tco2"] for p in pv["periods"]] == [4841, 2566] and pv["cost_per_tco2"] == "1050.06"
    assert jpy["meets_target"] is True
    assert totals["minimum_credited_tco2"] == 5000 and totals["below_minimum"] == ["TEST-CHILLER"]

    # the text form says the same; without --projects the config's projects_dir is used
    text = _run("portfolio", "--config", str(config))
    assert text.returncode == 0, text.stderr
    assert f"Totals: {totals['credits_tco2']:,} tCO2 credited by 2 project(s)" in text.stdout
    assert f"per tCO2 credited: {expected:,} JPY/tCO2" in text.stdout
    assert "FLAG: below 5,000 tCO2 credited" in text.stdout
    assert "below 5,000 tCO2 credited: TEST-CHILLER" in text.stdout
    assert "programme aim 1,300 JPY/tCO2 on average" in text.stdout


def test_plan_exit_codes(tmp_path: Path) -> None:
    projects = _projects(tmp_path)
    passed = _run("plan", "--project", str(projects / "a-pv.yaml"))
    # (1,752 − 12) MWh × 0.797 = 1,386.78 -> 1,386 >= 1,000 in the demonstration period
    assert passed.returncode == 0, passed.stderr
    assert "PASS: 1,386 tCO2 >= 1,000 tCO2" in passed.stdout
    assert (
        "1200 kWp × 1460 h/yr = 1752000 kWh" in passed.stdout
        and "RE_p = Σ_i EG_i,p × EF_grid" in passed.stdout
    )
    failed = _run("plan", "--project", str(projects / "b-chiller.yaml"), "--format", "json")
    assert failed.returncode == 1, failed.stderr
    body = json.loads(failed.stdout)
    # RE = 4500 × 6.2/4.5 × 0.533 + 500 × 5.8/5 × 0.533 = 3,613.74; PE = 5,000 × 0.533 = 2,665
    assert body["per_year"]["emission_reductions_unrounded_tco2"] == "948.74"
    assert body["threshold"] == {
        "rule": "diffusion: ER per year, rounded down, >= 10,000 tCO2",
        "over": "year",
        "minimum_tco2": 10000,
        "achieved_tco2": 948,
        "source": body["threshold"]["source"],
    }
    assert body["result"] == "fail"

    broken = projects / "a-pv.yaml"
    broken.write_text(broken.read_text().replace('"hours": 1460', '"hours": 9000'))
    error = _run("plan", "--project", str(broken))
    assert error.returncode == 2 and f"{broken}: plan.expected.EG.hours: " in error.stderr
    # a broken project also stops the portfolio, naming the file
    config = tmp_path / "collector.yaml"
    config.write_text(
        json.dumps({"store": {"type": "sqlite", "path": str(tmp_path / "c.sqlite")}, "keyring": "k"})
    )
    error = _run("portfolio", "--config", str(config), "--projects", str(projects))
    assert error.returncode == 2 and f"{broken}: plan.expected.EG.hours" in error.stderr
    no_plan = tmp_path / "no-plan.yaml"
    no_plan.write_text(json.dumps({k: v for k, v in json.loads(broken.read_text()).items() if k != "plan"}))
    error = _run("plan", "--project", str(no_plan))
    assert error.returncode == 2 and f"{no_plan}: plan: the project has no plan section" in error.stderr


def test_portfolio_progress_only_on_a_terminal(tmp_path: Path) -> None:
    projects = _projects(tmp_path)
    config = _store(tmp_path, projects)
    argv = command("collector", "portfolio", "--config", str(config))
    returncode, stdout, seen = run_on_a_terminal(argv)
    assert returncode == 0
    assert (
        b"TEST-PV 2026-01-02 to 2026-01-03: [" in seen and b"TEST-CHILLER 2026-01-03 to 2026-01-03: [" in seen
    )
    assert b"100.0%" in seen
    assert stdout.startswith("Portfolio: 2 project(s)")  # stdout stays clean
