"""Fuzz the MQTT payload parser: whatever arrives, no crash, and every bad input is kept and named."""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from collector.processing import Ingestor
from collector.store.base import WriteSet
from collector.store.sqlite import SqliteStore
from tests.factory import Gateway

GW = Gateway()
VALID = GW.message(GW.seal([GW.record("m1", i, 10 + i) for i in range(3)]))
TOPICS = [GW.topic, GW.topic.replace("/records", "/status"), GW.topic.replace("/records", "/heartbeat")]

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)
envelope_like = st.fixed_dictionaries(
    {
        "v": st.one_of(st.just(1), json_values),
        "gateway": st.one_of(st.just(GW.gateway), json_values),
        "batches": st.one_of(
            st.lists(
                st.fixed_dictionaries(
                    {
                        "seal": st.one_of(st.text(max_size=40), json_values),
                        "sig": st.one_of(st.text(max_size=40), json_values),
                        "records": st.one_of(st.lists(st.text(max_size=40), max_size=3), json_values),
                    }
                ),
                max_size=3,
            ),
            json_values,
        ),
    },
)


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    data = bytearray(VALID)
    for _ in range(draw(st.integers(1, 4))):
        index = draw(st.integers(0, len(data) - 1))
        data[index] = draw(st.integers(0, 255))
    if draw(st.booleans()):
        data = data[: draw(st.integers(0, len(data)))]
    return bytes(data)


payloads = st.one_of(
    st.binary(max_size=300),
    json_values.map(lambda v: json.dumps(v).encode()),
    envelope_like.map(lambda v: json.dumps(v).encode()),
    mutated(),
)


@pytest.fixture(scope="module")
def ingestor(tmp_path_factory: pytest.TempPathFactory) -> Ingestor:
    store = SqliteStore(tmp_path_factory.mktemp("fuzz") / "s.sqlite")
    return Ingestor(store, GW.keyring(), clock_ms=lambda: 0)


@given(topic=st.sampled_from(TOPICS), payload=payloads)
@settings(max_examples=400, deadline=None, suppress_health_check=list(HealthCheck), database=None)
def test_any_payload_is_stored_or_quarantined_with_a_reason(
    ingestor: Ingestor, topic: str, payload: bytes
) -> None:
    out = WriteSet()
    result = ingestor.prepare(topic, payload, out)  # must not raise
    kept = len(out.records) + len(out.events) + len(out.quarantine)
    assert sum(result.quarantined.values()) == len(out.quarantine)
    for item in out.quarantine:
        assert item.reason and item.detail, "every quarantined item says what was wrong"
    if payload and not out.records and not out.events:
        assert out.quarantine, f"a non-empty payload vanished: {payload[:80]!r}"
    assert kept or payload == b"" or result.duplicates or payload == VALID


def test_the_valid_message_is_stored(ingestor: Ingestor) -> None:
    out = WriteSet()
    result = ingestor.prepare(GW.topic, VALID, out)
    assert result.stored == 3 and not out.quarantine
