"""Delivery rules: the collector's watermark (seals 1..N stored, never past a hole), the agent's reading of it,
and the backlog drain rate."""

from __future__ import annotations

from typing import Any

import pytest

from agent.publisher import RateLimit
from collector.watermarks import CHUNK, Watermarks
from mrv_core.watermark import parse_watermark, watermark_payload


class _Seals:
    """A store that holds some seal numbers (a unit-test fake: only seals_between is used)."""

    def __init__(self, seqs: set[int]) -> None:
        self.seqs = seqs
        self.queries = 0

    def seals_between(self, gateway: str, first: int, last: int) -> dict[int, Any]:
        self.queries += 1
        return {seq: object() for seq in self.seqs if first <= seq <= last}


def test_mark_stops_at_a_hole_and_jumps_when_it_is_filled() -> None:
    marks = Watermarks(_Seals(set()))  # type: ignore[arg-type]
    assert marks.learn("gw", [1, 2, 3]) == 3
    assert marks.learn("gw", [5, 6]) == 3, "seal 4 never arrived"
    assert marks.learn("gw", [4]) == 6
    assert marks.learn("gw", [2]) == 6, "a duplicate changes nothing"
    assert marks.learn("other", [2]) == 0, "per gateway"


def test_mark_is_read_from_the_store_once_per_gateway() -> None:
    store = _Seals(set(range(1, CHUNK + 6)) | {CHUNK + 8})
    marks = Watermarks(store)  # type: ignore[arg-type]
    assert marks.learn("gw", []) == CHUNK + 5, "across more than one chunk"
    queries = store.queries
    assert marks.learn("gw", [CHUNK + 6]) == CHUNK + 6
    assert store.queries == queries, "no hole: learned from the write, not from the store"
    marks.forget()  # after a failed write
    assert marks.learn("gw", []) == CHUNK + 5 and store.queries > queries


def test_a_hole_another_collector_filled_is_read_from_the_store() -> None:
    """Two collectors on a shared subscription each store every other seal."""
    store = _Seals({1, 2})
    marks = Watermarks(store)  # type: ignore[arg-type]
    assert marks.learn("gw", [4]) == 2, "seal 3 is nowhere yet"
    store.seqs |= {3, 4, 5}  # the other instance stored 3 and 5 meanwhile
    assert marks.learn("gw", [6]) == 6


def test_agent_reads_only_its_own_well_formed_watermark() -> None:
    assert parse_watermark(watermark_payload("gw-1", 42), "gw-1") == 42
    for payload, reason in (
        (watermark_payload("gw-2", 42), "not a watermark of gateway gw-1"),
        (b'{"gateway": "gw-1", "seals_through": "42"}', "is not a seal number"),
        (b'{"gateway": "gw-1", "seals_through": -1}', "is not a seal number"),
        (b'{"gateway": "gw-1", "seals_through": true}', "is not a seal number"),
        (b"[1]", "not a watermark"),
        (b"", "Expecting value"),
    ):
        with pytest.raises(ValueError, match=reason):
            parse_watermark(payload, "gw-1")


def test_drain_rate_limit_averages_out() -> None:
    """1,000 records/s: a 250-record seal every quarter second, whatever the caller's rhythm."""
    rate, now, sent = RateLimit(1000.0), 0.0, 0
    while now < 10.0:
        if rate.ready(now):
            rate.spend(now, 250)
            sent += 250
        now += 0.01
    assert 9_750 <= sent <= 10_250
    unlimited = RateLimit(None)
    unlimited.spend(0.0, 10**9)
    assert unlimited.ready(0.0)
