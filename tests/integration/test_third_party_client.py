"""A third-party Modbus client agrees with the agent: mbpoll (Debian's package) reads the simulated
SDM630, over TCP and over an RTU serial line, and gets the same register words and the same floats.

The simulator and the agent share our register code, so agreeing with each other proves little;
mbpoll shares nothing with us.
"""

from __future__ import annotations

import math
import re
import shutil
import subprocess
from datetime import UTC, datetime
from pathlib import Path

import pytest

from agent.acquisition import decode_reading
from agent.clock import ScaledClock
from agent.config import RtuTransport
from agent.modbus import Endpoint, RtuEndpoint, TcpEndpoint
from agent.plan import ReadPlan, plan_reads
from agent.simulator import Simulator, default_meters
from mrv_core.profile_schema import load_profile
from tests.harness.procs import free_port
from tests.harness.serial_pair import start_serial_pair

ROOT = Path(__file__).parents[2]
PROFILE = ROOT / "firmware_profiles/eastron/sdm630-modbus-v2.yaml"
NOON = ScaledClock(start=datetime(2026, 6, 1, 4, tzinfo=UTC), anchor=0.0, speed=1.0, real=lambda: 0.0)
VALUE = re.compile(r"^\[(\d+)\]:\s+(\S+)", re.MULTILINE)
UNIT = 3


def _mbpoll(where: list[str], *args: str) -> dict[int, str]:
    """One read (-1) with PDU addresses (-0); {address: text as mbpoll prints it}."""
    binary = shutil.which("mbpoll")
    assert binary is not None, "mbpoll is not installed: run 'make test' (it installs Debian's mbpoll)"
    done = subprocess.run(
        [binary, *where, "-a", str(UNIT), "-0", "-1", *args], capture_output=True, text=True, timeout=30
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return {int(address): text for address, text in VALUE.findall(done.stdout)}


def _agree(endpoint: Endpoint, where: list[str], plan: ReadPlan) -> None:
    words = endpoint.read(plan, UNIT)
    reading = decode_reading(plan, words)
    for request in plan.requests:
        assert request.function == "input"
        theirs = _mbpoll(where, "-t", "3:hex", "-r", str(request.address), "-c", str(request.count))
        ours = {address: words[("input", address)] for _, address in words}
        assert {a: int(text, 16) for a, text in theirs.items()} == {
            a: ours[a] for a in range(request.address, request.address + request.count)
        }, "the same register words"
        floats = _mbpoll(
            where, "-t", "3:float", "-B", "-r", str(request.address), "-c", str(request.count // 2)
        )
        for spec in plan.registers:
            value = reading.values[spec.quantity].value
            assert value is not None and spec.address in floats, spec.quantity
            # mbpoll prints 6 significant digits; ours is the float32 exactly
            assert math.isclose(float(value), float(floats[spec.address]), rel_tol=1e-5, abs_tol=1e-6), spec


@pytest.mark.integration
def test_mbpoll_reads_what_the_agent_reads_over_tcp() -> None:
    profile = load_profile(PROFILE)
    plan = plan_reads(profile.registers, profile.max_registers_per_request, profile.max_gap_registers)
    port = free_port()
    simulator = Simulator(default_meters(profile, NOON, {UNIT: 50.0}), port=port)
    simulator.start()
    endpoint = TcpEndpoint("127.0.0.1", port, 3.0)
    try:
        _agree(endpoint, ["-m", "tcp", "-p", str(port), "127.0.0.1"], plan)
    finally:
        endpoint.close()
        simulator.stop()


@pytest.mark.integration
def test_mbpoll_reads_what_the_agent_reads_over_rtu(tmp_path: Path) -> None:
    profile = load_profile(PROFILE)
    plan = plan_reads(profile.registers, profile.max_registers_per_request, profile.max_gap_registers)
    pair = start_serial_pair(tmp_path / "serial")
    line = RtuTransport(type="rtu", serial=str(pair.meter_end), baudrate=19200, parity="N")  # pty: no parity
    simulator = Simulator(default_meters(profile, NOON, {UNIT: 50.0}), serial=line)
    simulator.start()
    endpoint = RtuEndpoint(line.model_copy(update={"serial": str(pair.agent_end)}))
    try:
        where = ["-m", "rtu", "-b", "19200", "-P", "none", "-d", "8", "-s", "1", str(pair.agent_end)]
        endpoint.read(plan, UNIT)
        endpoint.close()  # one master on the line at a time: mbpoll opens it next
        _agree(endpoint, where, plan)
    finally:
        endpoint.close()
        simulator.stop()
        pair.stop()
