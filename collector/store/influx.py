"""The production store: InfluxDB, written with influxdb-client, read with InfluxQL.

Schema (fixed tag sets, one type per field, no tag named like a field; valid
on InfluxDB 1.8+, 2.x and 3.x; see docs/storage.md):

- ``mrv_reading`` tags site, gateway, device; time = record time in ms * 10^6
  + seq mod 10^6 (ns), so two records of one device never share a timestamp
  within a million readings; fields seq, hash, record (the signed bytes),
  seal_seq, leaf, and one float per quantity for dashboards.
- ``mrv_chain`` tags site, gateway, device; time = seq (ns since the epoch):
  the sequence index that makes (gateway, device, seq) a point key, with the
  record's hash and prev. Duplicate
  detection, chain heads and gap searches are time-range queries on it.
- ``mrv_seal`` tags site, gateway; time = seal seq; fields hash, seal, sig, key,
  count, first_ms, last_ms.
- ``mrv_gap`` tags site, gateway, device; time = first missing seq; fields
  last, time_from, time_to, detected_ms (a filled gap is rewritten with
  last < first, as InfluxDB 3 cannot delete).
- ``mrv_gateway`` tags site, gateway; time = receive time; fields state
  (retained status), heartbeat (JSON) or seen (1): the operators' view.
- ``mrv_quarantine`` tag reason; payload in base64, split into parts below the
  64 KB string limit of InfluxDB 1.x.
- ``mrv_counter_hour`` tags gateway, device, quantity ("*" for the device's
  records of any kind); time = the UTC hour; the fields of
  ``mrv_core.counter_hours.HourSpan``. Merged in this process (several
  collectors may write one InfluxDB, so the report checks each hour against the
  records' count and seq range before it believes a summary).

Writes are synchronous (the batching writer has lost data without raising:
influxdata/influxdb-client-python#504), in requests of at most
``points_per_write`` points, and idempotent: a redelivered message rewrites
identical points. The bucket needs infinite retention (evidence is
kept for the crediting period and beyond, and index points sit near 1970).
"""

from __future__ import annotations

import base64
import functools
import http.client
import itertools
import json
import math
import re
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import replace
from typing import Any

from influxdb_client.client.exceptions import InfluxDBError
from influxdb_client.client.influxdb_client import InfluxDBClient
from influxdb_client.client.write.point import Point
from influxdb_client.client.write_api import SYNCHRONOUS
from influxdb_client.domain.write_precision import WritePrecision
from influxdb_client.rest import ApiException
from urllib3.exceptions import HTTPError

from collector.store.base import (
    ChainHead,
    Gap,
    GatewayEvent,
    GatewayState,
    Link,
    QuarantineItem,
    SealSpan,
    StoreCounts,
    StoredRecord,
    StoredSeal,
    StoreError,
    WriteSet,
)
from mrv_core.counter_hours import HourSpan, merged_with_stored, summarize_records
from mrv_core.record import Record, Seal, value_texts, values_text
from mrv_core.signing import b64
from mrv_core.timefmt import format_ms, time_ms

NS_PER_MS = 1_000_000
PART_CHARS = 60_000
SENDERS = 2  # write requests in flight: InfluxDB parses them in parallel
HOURS_KEPT = 200_000  # counter summaries remembered for merging (a day of 1,000 devices x 8 counters)
ALL_TAG = "*"  # the quantity tag of a device's summary of all its records (tags cannot be empty)


def reading_ns(time_text: str, seq: int) -> int:
    return time_ms(time_text) * NS_PER_MS + seq % NS_PER_MS


# Line protocol for the two points of every record, written here rather than through the client's
# Point: building a record's two Points took ~33 us in-process, before any serialisation (measured
# 2026-11-29), more than verifying the record. The points are the ones Point writes: same series
# keys, fields and timestamps, escaping included (tests/unit/test_influx_lines.py compares them;
# field order and float spelling may differ). Everything else still goes through Point.
_TAG_ESCAPES = str.maketrans({",": r"\,", "=": r"\=", " ": r"\ ", "\n": r"\n", "\t": r"\t", "\r": r"\r"})


def _tag(value: str) -> str:
    escaped = value.translate(_TAG_ESCAPES)
    return escaped + " " if escaped.endswith("\\") else escaped


@functools.lru_cache(maxsize=65536)
def _tags(site: str, gateway: str, device: str) -> bytes:
    return f"device={_tag(device)},gateway={_tag(gateway)},site={_tag(site)}".encode()


def _string(value: bytes) -> bytes:
    """A line-protocol string field's body."""
    return value.replace(b"\\", b"\\\\").replace(b'"', b'\\"')


@functools.lru_cache(maxsize=4096)  # the quantity vocabulary is small
def _field_name(name: bytes) -> bytes:
    return name.decode().translate(_TAG_ESCAPES).encode()


def _float(text: bytes) -> bytes | None:
    """A decimal text as a float field: the text itself (InfluxDB rounds it to the same float64 as
    Point's shorter repr would give) unless it is long enough to overflow; None if not finite."""
    if len(text) < 300 and not text.translate(None, b"-.0123456789"):
        return text
    try:
        number = float(text)  # exponent, NaN, Infinity (full-parse records), or very long
    except ValueError:
        return None
    return str(number).encode() if math.isfinite(number) else None


# A common-layout record's values text read as float fields by one regex scan: every value with a
# decimal text short enough never to overflow; if any is not like that, the general path.
_NUMBER = re.compile(
    rb'"([a-z0-9_]+)":\{"raw":"[^"]*","unit":"[^"]*","value":"(-?[0-9]{1,150}(?:\.[0-9]{1,150})?)"\}'
)


def _numbers(record: Record) -> bytes:
    """``name=value,...``: the record's values as float fields, for dashboards (the evidence is the
    record itself); values without a number, or not finite as a float, are left out as Point does."""
    text = values_text(record.values)
    if text is not None:
        pairs = _NUMBER.findall(text)
        if len(pairs) == text.count(b'{"raw"'):
            return (b"%s=%s," * len(pairs))[:-1] % tuple(itertools.chain.from_iterable(pairs))
    numbers = ((name, _float(text)) for name, text in value_texts(record.values))
    return b",".join(b"%s=%s" % (_field_name(name), number) for name, number in numbers if number is not None)


def reading_lines(record: Record, seal_seq: int, leaf: int) -> bytes:
    """The ``mrv_reading`` and ``mrv_chain`` points of one record, as line protocol."""
    tags = _tags(record.site, record.gateway, record.device)
    at = reading_ns(record.time, record.seq)
    numbers = _numbers(record)
    body = b'%s%shash="%s",leaf=%di,record="%s",seal_seq=%di,seq=%di' % (
        numbers,
        b"," if numbers else b"",
        record.hash.encode(),
        leaf,
        _string(record.data),
        seal_seq,
        record.seq,
    )
    reading = b"mrv_reading,%s %s %d" % (tags, body, at)
    chain = b'mrv_chain,%s hash="%s",prev="%s",reading_ns=%di,seal_seq=%di %d' % (
        tags,
        record.hash.encode(),
        record.prev.encode(),
        at,
        seal_seq,
        record.seq,
    )
    return reading + b"\n" + chain


def _quote(value: str) -> str:
    """An InfluxQL string literal."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


class InfluxStore:
    def __init__(
        self,
        url: str,
        *,
        org: str,
        bucket: str,
        token: str = "",
        database: str = "",
        timeout_s: float = 30.0,
        points_per_write: int = 5000,
    ) -> None:
        self.url = url.rstrip("/")
        self.org = org
        self.bucket = bucket
        self.database = database or bucket.split("/", maxsplit=1)[0]
        self.token = token
        self.timeout_s = timeout_s
        self.points_per_write = points_per_write
        self._client = InfluxDBClient(
            url=self.url, token=token or "none", org=org, timeout=int(timeout_s * 1000)
        )
        self._write = self._client.write_api(write_options=SYNCHRONOUS)
        self._sender = ThreadPoolExecutor(max_workers=SENDERS, thread_name_prefix="influx-write")
        self._quarantine_counter = 0
        self._event_counter = 0
        self._hours: dict[tuple[str, str, str, int], HourSpan] = {}  # summaries this process wrote
        self._newest_hour: dict[tuple[str, str], int] = {}  # per device, the newest hour it wrote

    # -- reading with InfluxQL -------------------------------------------------
    def query(self, q: str) -> list[dict[str, Any]]:
        """Run InfluxQL; the series of the first statement (``[]`` when empty)."""
        params = urllib.parse.urlencode({"db": self.database, "q": q, "epoch": "ns"})
        request = urllib.request.Request(f"{self.url}/query?{params}")  # noqa: S310 - configured URL
        if self.token:
            request.add_header("Authorization", f"Token {self.token}")
        try:
            with urllib.request.urlopen(request, timeout=self.timeout_s) as response:  # noqa: S310
                body = json.loads(response.read())
        except urllib.error.HTTPError as exc:
            raise StoreError(
                f"{self.url}: InfluxQL query failed ({exc.code}): {exc.read()[:300]!r}"
            ) from None
        except (urllib.error.URLError, OSError, ValueError, http.client.HTTPException) as exc:
            raise StoreError(f"{self.url}: InfluxQL query failed: {type(exc).__name__}: {exc}") from None
        if "error" in body:
            raise StoreError(f"{self.url}: InfluxQL error: {body['error']}")
        result = body.get("results", [{}])[0]
        if "error" in result:
            raise StoreError(f"{self.url}: InfluxQL error: {result['error']} (query: {q})")
        if result.get("partial") or any(series.get("partial") for series in result.get("series", [])):
            # A row limit cut the answer: evidence is never read incompletely.
            raise StoreError(f"{self.url}: InfluxQL answer was truncated (max-row-limit?) for: {q}")
        series: list[dict[str, Any]] = result.get("series", [])
        return series

    def _rows(self, q: str) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = []
        for series in self.query(q):
            columns = series["columns"]
            tags = series.get("tags", {})
            rows.extend({**tags, **dict(zip(columns, values, strict=True))} for values in series["values"])
        return rows

    @staticmethod
    def _where(gateway: str, device: str | None = None) -> str:
        clause = f"gateway = {_quote(gateway)}"
        return clause + (f" AND device = {_quote(device)}" if device is not None else "")

    def head(self, gateway: str, device: str) -> ChainHead | None:
        where = self._where(gateway, device)
        rows = self._rows(f"SELECT hash, reading_ns FROM mrv_chain WHERE {where} ORDER BY time DESC LIMIT 1")
        if not rows:
            return None
        return ChainHead(
            int(rows[0]["time"]), rows[0]["hash"], format_ms(int(rows[0]["reading_ns"]) // NS_PER_MS)
        )

    def links(self, gateway: str, device: str, seqs: Sequence[int]) -> dict[int, Link]:
        if not seqs:
            return {}
        rows = self._rows(
            f"SELECT hash, prev FROM mrv_chain WHERE {self._where(gateway, device)} "
            f"AND time >= {min(seqs)} AND time <= {max(seqs)}"
        )
        wanted = set(seqs)
        return {int(r["time"]): Link(r["hash"], r["prev"]) for r in rows if int(r["time"]) in wanted}

    def seal_hash(self, gateway: str, seq: int) -> str | None:
        rows = self._rows(f"SELECT hash FROM mrv_seal WHERE {self._where(gateway)} AND time = {seq}")
        return rows[0]["hash"] if rows else None

    # -- writing ---------------------------------------------------------------
    def write(self, items: WriteSet) -> None:
        points: list[Point] = []
        for seal in items.seals:
            points.append(
                Point("mrv_seal")
                .tag("site", seal.site)
                .tag("gateway", seal.gateway)
                .field("hash", seal.hash)
                .field("seal", seal.data.decode("ascii"))
                .field("sig", b64(seal.signature))
                .field("key", seal.key)
                .field("count", seal.count)
                .field("first_ms", time_ms(seal.first_time))
                .field("last_ms", time_ms(seal.last_time))
                .time(seal.seq, WritePrecision.NS)
            )
        for item in items.quarantine:
            points.extend(self._quarantine_points(item))
        # A gap rewritten twice in one write (split, then closed) is one point key: only the last
        # version is written, since requests go in parallel and their order is not kept.
        latest = {(gap.gateway, gap.device, gap.first): gap for gap in items.gaps}
        points.extend(self._gap_point(gap) for gap in latest.values())
        points.extend(self._event_point(event) for event in items.events)
        hours = self._merged_hours(items)
        points.extend(self._hour_point(span) for span in hours)
        # Bounded requests: InfluxDB refuses large bodies (25 MB by default in 1.x) by
        # closing the connection, and an unbounded write would fail on every retry.
        # A failure after some chunks is safe: points are idempotent and the caller
        # retries the whole write before acknowledging anything. One request is sent
        # while the next is formatted (InfluxDB parses while Python formats).
        sent: list[Future[None]] = []
        try:
            for chunk in self._chunks(points, items.records):
                if len(sent) > SENDERS:
                    sent[-SENDERS - 1].result()  # at most one request waiting for a sender
                sent.append(self._sender.submit(self._send, chunk, len(sent)))
        finally:
            errors = [exc for exc in (future.exception() for future in sent) if exc is not None]
        if errors:
            raise errors[0]
        if len(self._hours) + len(hours) > HOURS_KEPT:
            self._hours.clear()
        self._hours.update((span.key, span) for span in hours)  # only once written
        for span in hours:
            device = (span.gateway, span.device)
            self._newest_hour[device] = max(span.hour_ms, self._newest_hour.get(device, span.hour_ms))

    def _merged_hours(self, items: WriteSet) -> list[HourSpan]:
        """The hourly counter summaries of the records written, merged with those this process wrote
        before (or, for hours it does not remember, read back)."""
        spans = summarize_records(r for r, _, _ in items.records)

        def read(gateway: str, device: str, first: int, last: int) -> list[HourSpan]:
            # An hour after the newest this process has handled for the device holds nothing it
            # could merge with (what another collector wrote there, the report's check catches):
            # a device's hours are read back once after start-up and for late records, not per write.
            newest = self._newest_hour.get((gateway, device))
            if newest is not None and first > newest:
                return []
            return self._read_hours(gateway, device, None, first, last + 1)

        return merged_with_stored(spans, self._hours, read)

    @staticmethod
    def _hour_point(span: HourSpan) -> Point:
        point: Point = (
            Point("mrv_counter_hour")
            .tag("gateway", span.gateway)
            .tag("device", span.device)
            .tag("quantity", span.quantity or ALL_TAG)
            .field("count", span.count)
            .field("clean", span.clean)
            .field("first_seq", span.first_seq)
            .field("last_seq", span.last_seq)
            .field("first_time", span.first_time)
            .field("last_time", span.last_time)
            .field("first_value", span.first_value)
            .field("last_value", span.last_value)
            .field("first_hash", span.first_hash)
            .field("last_hash", span.last_hash)
            .field("unit", span.unit)
            .time(span.hour_ms * NS_PER_MS, WritePrecision.NS)
        )
        return point

    def _read_hours(
        self, gateway: str, device: str, quantity: str | None, start_ms: int, end_ms: int
    ) -> list[HourSpan]:
        which = "" if quantity is None else f" AND (quantity = {_quote(quantity)} OR quantity = '{ALL_TAG}')"
        rows = self._rows(
            f"SELECT * FROM mrv_counter_hour WHERE {self._where(gateway, device)}{which} "
            f"AND time >= {start_ms * NS_PER_MS} AND time < {end_ms * NS_PER_MS}"
        )
        return [
            HourSpan(
                r["gateway"],
                r["device"],
                "" if r["quantity"] == ALL_TAG else r["quantity"],
                int(r["time"]) // NS_PER_MS,
                int(r["count"]),
                bool(r["clean"]),
                int(r["first_seq"]),
                int(r["last_seq"]),
                r["first_time"] or "",
                r["last_time"] or "",
                r["first_value"] or "",
                r["last_value"] or "",
                r["first_hash"] or "",
                r["last_hash"] or "",
                r["unit"] or "",
            )
            for r in rows
        ]

    def counter_hours(
        self, gateway: str, device: str, quantity: str, start_ms: int, end_ms: int
    ) -> list[HourSpan]:
        """The summaries of ``quantity`` and of all records of a device for the hours in [start_ms,
        end_ms). A device's summary of all records is believed only where the stored records of that
        hour have its count and seq range (another collector may have written the hour meanwhile):
        otherwise it comes back unclean and the report reads that hour's records."""
        spans = self._read_hours(gateway, device, quantity, start_ms, end_ms)
        if not spans:
            return []
        where = self._where(gateway, device)
        rows = self._rows(
            f"SELECT count(seq), min(seq), max(seq) FROM mrv_reading WHERE {where} "
            f"AND time >= {start_ms * NS_PER_MS} AND time < {end_ms * NS_PER_MS} GROUP BY time(1h)"
        )
        held = {int(r["time"]) // NS_PER_MS: (int(r["count"]), r["min"], r["max"]) for r in rows}
        return [
            span
            if span.quantity or held.get(span.hour_ms) == (span.count, span.first_seq, span.last_seq)
            else replace(span, clean=False)
            for span in spans
        ]

    def _chunks(
        self, points: list[Point], records: list[tuple[Record, Seal, int]]
    ) -> Iterator[list[bytes | Point]]:
        """Requests of at most ``points_per_write`` points (a record is two)."""
        size = max(1, self.points_per_write // 2)
        chunk: list[bytes | Point] = []
        lines = (reading_lines(record, seal.seq, leaf) for record, seal, leaf in records)
        every: Iterator[bytes | Point] = itertools.chain(points, lines)
        for item in every:
            if len(chunk) >= size:
                yield chunk
                chunk = []
            chunk.append(item)
        if chunk:
            yield chunk

    def _send(self, chunk: list[bytes | Point], index: int) -> None:
        try:
            # every Point carries its own precision (ns), which the client honours; lines are ns
            self._write.write(bucket=self.bucket, org=self.org, record=chunk)
        except (InfluxDBError, ApiException, HTTPError, OSError, ValueError) as exc:
            raise StoreError(
                f"{self.url}: write request {index + 1} ({len(chunk)} items) failed: {exc}"
            ) from None

    @staticmethod
    def _gap_point(gap: Gap) -> Point:
        # A filled gap is rewritten with last = first - 1 (no deletes: InfluxDB 3 has none).
        point: Point = (
            Point("mrv_gap")
            .tag("site", gap.site)
            .tag("gateway", gap.gateway)
            .tag("device", gap.device)
            .field("last", gap.last)
            .field("time_from", gap.time_from)
            .field("time_to", gap.time_to)
            .field("detected_ms", gap.detected_ms)
            .time(gap.first, WritePrecision.NS)
        )
        return point

    def _event_point(self, event: GatewayEvent) -> Point:
        self._event_counter = (self._event_counter + 1) % 1000
        point: Point = Point("mrv_gateway").tag("site", event.site).tag("gateway", event.gateway)
        if event.kind == "status":
            point.field("state", str(event.payload.get("state")))
        elif event.kind == "heartbeat":
            point.field("heartbeat", json.dumps(dict(event.payload)))
        else:
            point.field("seen", 1)
        point.time(event.received_ms * NS_PER_MS + self._event_counter, WritePrecision.NS)
        return point

    def _quarantine_points(self, item: QuarantineItem) -> list[Point]:
        self._quarantine_counter = (self._quarantine_counter + 1) % 1000
        text = base64.b64encode(item.payload).decode("ascii")
        parts = [text[i : i + PART_CHARS] for i in range(0, len(text), PART_CHARS)] or [""]
        base = item.received_ms * NS_PER_MS + self._quarantine_counter * 1000
        return [
            Point("mrv_quarantine")
            .tag("reason", item.reason)
            .field("gateway", item.gateway)
            .field("topic", item.topic)
            .field("detail", item.detail)
            .field("payload", part)
            .field("part", index)
            .field("parts", len(parts))
            .time(base + index, WritePrecision.NS)
            for index, part in enumerate(parts)
        ]

    # -- reports and exports ---------------------------------------------------
    _RECORD_FIELDS = "record, gateway, seal_seq, leaf"

    def _stored(self, rows: list[dict[str, Any]]) -> list[StoredRecord]:
        return [
            StoredRecord(r["record"].encode("ascii"), r["gateway"], int(r["seal_seq"]), int(r["leaf"]))
            for r in rows
        ]

    def _records(self, where: str, tail: str = "") -> list[StoredRecord]:
        # gateway is a tag: GROUP BY it so it comes back with every row.
        return self._stored(
            self._rows(
                f"SELECT record, seal_seq, leaf FROM mrv_reading WHERE {where} GROUP BY gateway {tail}"
            )
        )

    def records_between(self, gateway: str, device: str, start_ms: int, end_ms: int) -> list[StoredRecord]:
        span = f"time >= {start_ms * NS_PER_MS} AND time < {end_ms * NS_PER_MS}"
        return self._records(f"{self._where(gateway, device)} AND {span}")

    def record_before(self, gateway: str, device: str, at_ms: int) -> StoredRecord | None:
        found = self._records(
            f"{self._where(gateway, device)} AND time < {at_ms * NS_PER_MS}", "ORDER BY time DESC LIMIT 1"
        )
        return found[0] if found else None

    def record_at_or_after(self, gateway: str, device: str, at_ms: int) -> StoredRecord | None:
        found = self._records(f"{self._where(gateway, device)} AND time >= {at_ms * NS_PER_MS}", "LIMIT 1")
        return found[0] if found else None

    def stored_seqs(self, gateway: str, device: str, seq_from: int, seq_to: int) -> list[int]:
        rows = self._rows(
            f"SELECT hash FROM mrv_chain WHERE {self._where(gateway, device)} "
            f"AND time >= {seq_from} AND time <= {seq_to}"
        )
        return sorted(int(r["time"]) for r in rows)

    def devices(self) -> list[tuple[str, str, str]]:
        rows = self._rows("SELECT last(hash) FROM mrv_chain GROUP BY site, gateway, device")
        return sorted((r["site"], r["gateway"], r["device"]) for r in rows)

    def seal(self, gateway: str, seq: int) -> StoredSeal | None:
        rows = self._rows(f"SELECT seal, sig FROM mrv_seal WHERE {self._where(gateway)} AND time = {seq}")
        if not rows:
            return None
        return StoredSeal(rows[0]["seal"].encode("ascii"), base64.b64decode(rows[0]["sig"]))

    def seals_overlapping(self, gateway: str, start_ms: int, end_ms: int) -> list[SealSpan]:
        rows = self._rows(
            f"SELECT count, first_ms, last_ms FROM mrv_seal WHERE {self._where(gateway)} "
            f"AND first_ms < {end_ms} AND last_ms >= {start_ms}"
        )
        spans = [
            SealSpan(int(r["time"]), int(r["count"]), int(r["first_ms"]), int(r["last_ms"])) for r in rows
        ]
        return sorted(spans, key=lambda span: span.seq)

    def seals_between(self, gateway: str, first_seq: int, last_seq: int) -> dict[int, StoredSeal]:
        where = f"{self._where(gateway)} AND time >= {first_seq} AND time <= {last_seq}"
        rows = self._rows(f"SELECT seal, sig FROM mrv_seal WHERE {where}")
        return {
            int(r["time"]): StoredSeal(r["seal"].encode("ascii"), base64.b64decode(r["sig"])) for r in rows
        }

    def records_of_seals(self, gateway: str, spans: Sequence[SealSpan]) -> list[StoredRecord]:
        if not spans:
            return []
        first = min(span.first_ms for span in spans) * NS_PER_MS
        last = (max(span.last_ms for span in spans) + 1) * NS_PER_MS
        seqs = [span.seq for span in spans]
        found = self._records(
            f"{self._where(gateway)} AND time >= {first} AND time < {last} "
            f"AND seal_seq >= {min(seqs)} AND seal_seq <= {max(seqs)}"
        )
        wanted = set(seqs)
        return sorted((r for r in found if r.seal_seq in wanted), key=lambda r: (r.seal_seq, r.leaf))

    def last_seal_by_key(self, gateway: str, key_id: str) -> int | None:
        where = f"{self._where(gateway)} AND key = {_quote(key_id)}"
        rows = self._rows(f"SELECT last(hash) FROM mrv_seal WHERE {where}")
        return int(rows[0]["time"]) if rows else None

    def records_of_seal(self, gateway: str, seal_seq: int, first_ms: int, last_ms: int) -> list[StoredRecord]:
        found = self._records(
            f"{self._where(gateway)} AND seal_seq = {seal_seq} "
            f"AND time >= {first_ms * NS_PER_MS} AND time < {(last_ms + 1) * NS_PER_MS}"
        )
        return sorted(found, key=lambda r: r.leaf)

    def open_gaps(self, gateway: str | None = None, device: str | None = None) -> list[Gap]:
        where = " AND ".join(
            clause
            for clause in (
                f"gateway = {_quote(gateway)}" if gateway is not None else "",
                f"device = {_quote(device)}" if device is not None else "",
            )
            if clause
        )
        rows = self._rows(
            "SELECT last, time_from, time_to, detected_ms FROM mrv_gap"
            + (f" WHERE {where}" if where else "")
            + " GROUP BY site, gateway, device"
        )
        gaps = [
            Gap(
                r["site"],
                r["gateway"],
                r["device"],
                int(r["time"]),
                int(r["last"]),
                r["time_from"],
                r["time_to"],
                int(r["detected_ms"]),
            )
            for r in rows
        ]
        return sorted((g for g in gaps if not g.closed), key=lambda g: (g.gateway, g.device, g.first))

    def gateway_states(self) -> list[GatewayState]:
        latest: dict[tuple[str, str], dict[str, Any]] = {}
        for field_name in ("state", "heartbeat", "seen"):
            for row in self._rows(
                f"SELECT last({field_name}) AS value FROM mrv_gateway GROUP BY site, gateway"
            ):
                entry = latest.setdefault((row["site"], row["gateway"]), {})
                entry[field_name] = (row["value"], int(row["time"]) // NS_PER_MS)
        states = []
        for (site, gateway), entry in sorted(latest.items(), key=lambda item: item[0][1]):
            state, state_ms = entry.get("state", (None, None))
            beat, beat_ms = entry.get("heartbeat", (None, None))
            seen = [ms for _, ms in entry.values()]
            states.append(
                GatewayState(
                    site, gateway, state, state_ms, json.loads(beat) if beat else None, beat_ms, max(seen)
                )
            )
        return states

    def day_counts(self, start_ms: int, end_ms: int) -> dict[tuple[str, str], dict[int, int]]:
        rows = self._rows(
            f"SELECT count(seq) AS n FROM mrv_reading WHERE time >= {start_ms * NS_PER_MS} "
            f"AND time < {end_ms * NS_PER_MS} GROUP BY time(1d), gateway, device fill(none)"
        )
        counts: dict[tuple[str, str], dict[int, int]] = {}
        for row in rows:
            counts.setdefault((row["gateway"], row["device"]), {})[int(row["time"]) // NS_PER_MS] = int(
                row["n"]
            )
        return counts

    def hourly_last(
        self, gateway: str, device: str, quantity: str, start_ms: int, end_ms: int
    ) -> list[tuple[int, float]]:
        field_name = '"' + quantity.replace('"', "") + '"'
        rows = self._rows(
            f"SELECT last({field_name}) AS value FROM mrv_reading WHERE {self._where(gateway, device)} "
            f"AND time >= {start_ms * NS_PER_MS} AND time < {end_ms * NS_PER_MS} GROUP BY time(1h) fill(none)"
        )
        return [(int(r["time"]) // NS_PER_MS, float(r["value"])) for r in rows if r["value"] is not None]

    def quarantined(self, limit: int = 100) -> list[QuarantineItem]:
        rows = self._rows(
            "SELECT gateway, topic, detail, payload, part, parts FROM mrv_quarantine "
            f"GROUP BY reason ORDER BY time DESC LIMIT {limit * 20}"
        )
        items: dict[int, dict[str, Any]] = {}
        for row in rows:
            key = int(row["time"]) - int(row["part"])
            entry = items.setdefault(key, {**row, "chunks": {}})
            entry["chunks"][int(row["part"])] = row["payload"]
        out = [
            QuarantineItem(
                received_ms=key // NS_PER_MS,
                topic=e["topic"],
                gateway=e["gateway"],
                reason=e["reason"],
                detail=e["detail"],
                payload=base64.b64decode("".join(e["chunks"][i] for i in sorted(e["chunks"]))),
            )
            for key, e in sorted(items.items(), reverse=True)
            if len(e["chunks"]) == int(e["parts"])
        ]
        return out[:limit]

    def counts(self) -> StoreCounts:
        def count(q: str) -> int:
            rows = self._rows(q)
            return int(rows[0]["count"]) if rows else 0

        return StoreCounts(
            records=count("SELECT count(hash) FROM mrv_chain"),
            seals=count("SELECT count(hash) FROM mrv_seal"),
            quarantined=count("SELECT count(part) FROM mrv_quarantine WHERE part = 0"),
            devices=len(self.devices()),
        )

    def close(self) -> None:
        self._sender.shutdown(wait=True)
        self._client.close()
