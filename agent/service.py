"""Wiring of the agent: scheduled polls -> records in the buffer -> seals -> publisher.

Everything is built here from the config and passed in (clock, key, buffer,
endpoints), so each piece can be tested alone.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.interval import IntervalTrigger

from agent.acquisition import QualityTracker, Reading, UnreadPolls, decode_blocks
from agent.buffer import Buffer, BufferError, BufferFullError, Offer, Sealer
from agent.clock import EARLIEST, Clock
from agent.config import AgentConfig, DeviceSection
from agent.identification import identify
from agent.modbus import Endpoint, ModbusReadError, bus_key, endpoint_for
from agent.plan import ReadPlan, plan_reads
from agent.publisher import Publisher
from agent.schedule import aligned_start, polls_to_skip
from mrv_core.identity import IdentityCheck
from mrv_core.profile import Profile
from mrv_core.record import ReadingEncoder, build_gap_record, build_seal
from mrv_core.signing import Signer
from mrv_core.timefmt import format_time

log = logging.getLogger(__name__)


@dataclass
class DevicePoller:
    """Reads one device with its compiled plan and appends one record per successful read."""

    device: DeviceSection
    profile: Profile
    plan: ReadPlan
    endpoint: Endpoint
    buffer: Buffer
    clock: Clock
    site: str
    gateway: str
    failures: int = 0  # consecutive
    last_error: str = ""
    last_error_time: str = ""
    skip: int = 0  # scheduled polls still to skip (backing off a meter that does not answer)
    skipped: int = 0
    quality: QualityTracker = field(default_factory=QualityTracker)
    unread: UnreadPolls = field(default_factory=UnreadPolls)
    gap_records: int = 0
    identity: IdentityCheck | None = None  # the last identification read, and what did not match
    identified_at: datetime | None = None
    _was_full: bool = False  # whether the buffer was full when the last reading was offered

    def __post_init__(self) -> None:
        self._encoder = ReadingEncoder(
            site=self.site,
            gateway=self.gateway,
            device=self.device.id,
            profile_id=self.profile.id,
            profile_sha256=self.profile.sha256,
            quantities=[(spec.quantity, spec.unit) for spec in self.plan.registers],
        )

    def poll(self) -> None:
        """Read the device once and keep the reading (durably, before returning)."""
        offer = self.read()
        if offer is not None:
            self.kept(self.buffer.append_readings([offer])[0])

    def read(self) -> Offer | None:
        """Read the device once: the reading to keep, or None (not read, refused, or the buffer is
        full). A device that answers again after an outage has its gap record written here first."""
        fetched = self.fetch()
        return None if fetched is None else self.offer(*fetched)

    def fetch(self) -> tuple[list[bytes], datetime] | None:
        """The device's words (the bytes its plan's requests returned) and when they were read; None
        if it was not read: skipped while backing off, or failed (counted, and told in the log)."""
        if self.skip:
            self.skip -= 1
            self.skipped += 1
            self._not_read(self.clock.now(), None)
            return None
        try:
            blocks = self.endpoint.read_blocks(self.plan, self.device.unit_id)
        except ModbusReadError as exc:
            failed_at = self.clock.now()
            self._not_read(failed_at, f"exception:{exc.code}" if exc.code is not None else exc.reason)
            self.failures += 1
            self.last_error = f"{exc.reason}: {exc}"
            self.last_error_time = format_time(failed_at)
            self.buffer.count_error()
            self.skip = polls_to_skip(self.failures, self.device.poll_interval_s)
            log.warning(
                "device %s (%s): read failed%s: %s",
                self.device.id,
                exc.reason,
                f" {self.failures} times in a row, next try in {self.skip + 1} polls" if self.skip else "",
                exc,
            )
            return None
        return blocks, self.clock.now()

    def offer(self, blocks: list[bytes], moment: datetime) -> Offer | None:
        """The reading of what :meth:`fetch` read at ``moment``, to keep; None if it is refused
        (a clock before the release, a device that is not what its profile is for) or the buffer
        is full. A device that answers again after an outage has its gap record written first."""
        if moment < EARLIEST and self.clock.speed == 1:
            self.failures += 1
            self.last_error = (
                f"clock: the gateway's clock says {format_time(moment)}, before {EARLIEST:%Y-%m-%d}"
            )
            self.last_error_time = format_time(moment)
            self.buffer.count_error()
            log.error(
                "device %s: reading not stamped: %s (set the clock or fix its time service)",
                self.device.id,
                self.last_error,
            )
            return None
        if not self._identified(moment):
            return None  # refused: the device is not what its profile is for (counted as not read)
        if self.unread.polls and not self.write_gap(moment):
            return None  # the buffer is full: neither the gap nor the reading can be kept now
        reading = self.quality.check(self.plan, decode_blocks(self.plan, blocks))
        if self.identity is not None and not self.identity.matches:
            reading = Reading(reading.values, (*reading.quality, "identity_mismatch"))
        # the clock's state when read, not under the buffer's lock (it may ask timedatectl)
        encode, clock = self._encoder.encode, self.clock.state

        def build(seq: int, prev: str) -> tuple[bytes, str]:
            return encode(seq, prev, moment, clock, values=reading.values, quality=reading.quality)

        self._was_full = self.buffer.full
        return Offer(self.device.id, format_time(moment), build)

    def kept(self, offer: Offer) -> None:
        """What became of the reading :meth:`read` offered, once the buffer has written or refused it."""
        if isinstance(offer.error, BufferFullError):
            if not self._was_full:  # once per episode, not once per device and poll
                log.error("acquisition paused, nothing buffered is touched: %s", offer.error)
            return
        if offer.error is not None:
            raise offer.error
        if not offer.done:
            raise BufferError(f"device {self.device.id}: the reading of {offer.time_text} was not written")
        if self._was_full:
            log.warning("buffer has room again; acquisition resumed (%d refused)", self.buffer.refused)
        self.failures = 0

    def _head(self, seq: int, prev: str, moment: datetime) -> dict[str, Any]:
        """What every record of this device says first, readings and gap records alike."""
        return {
            "site": self.site,
            "gateway": self.gateway,
            "device": self.device.id,
            "profile_id": self.profile.id,
            "profile_sha256": self.profile.sha256,
            "seq": seq,
            "prev": prev,
            "time": moment,
            "clock": self.clock.state,
        }

    def _identified(self, moment: datetime) -> bool:
        """Check the device's identification against its profile when it first answers, after it
        was not read (it may have been replaced) and every ``identify_every_s``; False if its
        readings are to be refused (policy ``refuse``)."""
        policy = self.device.identity
        if policy == "off" or not self.profile.identification:
            return True
        due = (
            self.identified_at is None  # never identified (identity and identified_at go together)
            or self.unread.polls > 0
            or (moment - self.identified_at).total_seconds() >= self.device.identify_every_s
        )
        if due:
            try:
                check = identify(self.endpoint, self.profile, self.device.unit_id)
            except ModbusReadError as exc:
                check = IdentityCheck({}, (f"identification not read: {exc}",))
            if check.problems != (self.identity.problems if self.identity else ()):
                if check.problems:
                    log.warning(
                        "device %s: identification does not match profile %s: %s (readings %s)",
                        self.device.id,
                        self.profile.id,
                        "; ".join(check.problems),
                        "refused" if policy == "refuse" else "flagged identity_mismatch",
                    )
                else:
                    log.info(
                        "device %s: identified as %s: %s", self.device.id, self.profile.id, dict(check.texts)
                    )
            self.identity, self.identified_at = check, moment
        if self.identity is not None and self.identity.problems and policy == "refuse":
            self._not_read(moment, "identity_mismatch")
            return False
        return True

    def _not_read(self, moment: datetime, reason: str | None) -> None:
        """A poll that read nothing; a long outage gets a gap record every ``gap_record_s``."""
        self.unread.miss(moment, reason)
        if self.unread.due(moment, self.device.gap_record_s):
            self.write_gap(moment)

    def write_gap(self, moment: datetime) -> bool:
        """Sign the polls that read nothing since the device's last record into its chain (absence
        is evidence too); True once written. Not with a clock before the release, nor into a full
        buffer: the polls stay counted for the next try."""
        unread = self.unread
        if not unread.polls or unread.start is None or unread.end is None:
            return True
        if moment < EARLIEST and self.clock.speed == 1:
            return False
        start, end, polls, reason = unread.start, unread.end, unread.polls, unread.reason

        def build(seq: int, prev: str) -> tuple[bytes, str]:
            head = self._head(seq, prev, moment)
            return build_gap_record(**head, start=start, end=end, polls=polls, reason=reason)

        try:
            self.buffer.append_reading(self.device.id, moment, build)
        except BufferFullError:
            return False
        unread.clear()
        self.gap_records += 1
        log.warning(
            "device %s: gap record: %d poll(s) read nothing since %s (%s)",
            self.device.id,
            polls,
            format_time(start),
            reason,
        )
        return True


@dataclass
class BusPoller:
    """Devices of one bus with one poll interval, polled one after the other by one job."""

    pollers: list[DevicePoller]

    def poll(self) -> None:
        """Read every device of the bus, then keep all their readings in one transaction: a
        transaction costs the gateway about 200 us of CPU and one fsync (an SD card's lifetime),
        whatever it holds (tests/unit/test_schedule.py; docs/RELIABILITY.md)."""
        fetched: list[tuple[DevicePoller, tuple[list[bytes], datetime]]] = []
        for poller in self.pollers:  # the bus's requests first, one after the other
            try:
                got = poller.fetch()
            except Exception:  # a bug in one device's poll never stops the others on its bus
                log.exception("device %s: poll failed", poller.device.id)
                continue
            if got is not None:
                fetched.append((poller, got))
        offered: list[tuple[DevicePoller, Offer]] = []
        for poller, (blocks, moment) in fetched:  # then decoding: the same code for every device
            try:
                offer = poller.offer(blocks, moment)
            except Exception:
                log.exception("device %s: poll failed", poller.device.id)
                continue
            if offer is not None:
                offered.append((poller, offer))
        if not offered:
            return
        buffer = offered[0][0].buffer
        try:
            buffer.append_readings([offer for _, offer in offered])
        except Exception:  # the buffer itself failed (not full: that is each reading's answer)
            log.exception("readings of %s not kept", ", ".join(poller.device.id for poller, _ in offered))
            return
        for poller, offer in offered:
            try:
                poller.kept(offer)
            except Exception:
                log.exception("device %s: reading not kept", poller.device.id)


def bus_groups(pollers: list[DevicePoller]) -> dict[tuple[str, float], BusPoller]:
    """The devices of each bus that share a poll interval: one scheduled job reads them one after
    the other. A bus carries one request at a time anyway; one job and thread per bus (not per
    device) is what keeps a gateway with a hundred meters light, and buses and TCP hosts still
    run in parallel."""
    groups: dict[tuple[str, float], BusPoller] = {}
    for poller in pollers:
        key = (bus_key(poller.device.transport), poller.device.poll_interval_s)
        groups.setdefault(key, BusPoller([])).pollers.append(poller)
    return groups


def make_sealer(signer: Signer, clock: Clock, site: str, gateway: str) -> Sealer:
    """The buffer's sealer: build the seal from the core, sign its bytes."""

    def seal(seq: int, prev: str, hashes: list[str], first: str, last: str) -> tuple[bytes, bytes]:
        data, _ = build_seal(
            site=site,
            gateway=gateway,
            key_id=signer.key_id,
            seq=seq,
            prev=prev,
            created=clock.now(),
            record_hashes=hashes,
            first_time=first,
            last_time=last,
        )
        return data, signer.sign(data)

    return seal


@dataclass
class AgentService:
    config: AgentConfig
    profiles: dict[str, Profile]
    signer: Signer
    clock: Clock
    buffer: Buffer
    pollers: list[DevicePoller] = field(default_factory=list)
    endpoints: dict[str, Endpoint] = field(default_factory=dict)  # one per bus

    def __post_init__(self) -> None:
        gw = self.config.gateway
        for device in self.config.devices:
            profile = self.profiles[device.profile]
            plan = plan_reads(
                profile.select(device.quantities),
                profile.max_registers_per_request,
                profile.max_gap_registers,
            )
            key = bus_key(device.transport)
            if key not in self.endpoints:
                self.endpoints[key] = endpoint_for(device.transport)
            endpoint = self.endpoints[key]
            self.pollers.append(
                DevicePoller(device, profile, plan, endpoint, self.buffer, self.clock, gw.site, gw.id)
            )
        self.publisher = Publisher(
            self.config.mqtt,
            gw.site,
            gw.id,
            self.buffer,
            status_fields=lambda: {"time": format_time(self.clock.now()), "key_id": self.signer.key_id},
        )
        self._sealer = make_sealer(self.signer, self.clock, gw.site, gw.id)
        self.scheduler = BackgroundScheduler(
            # a thread per bus (and for sealing and heartbeats): a meter that hangs until its
            # timeout holds its own bus, never a thread another bus's meters need
            executors={"default": ThreadPoolExecutor(min(len(bus_groups(self.pollers)) + 3, 128))},
            job_defaults={"coalesce": True, "max_instances": 1},
        )

    def seal(self) -> int:
        try:
            sealed = self.buffer.seal_pending(self._sealer, self.config.seal.max_records)
        except BufferFullError as exc:  # the records stay, unsealed, until there is room
            log.error("cannot seal for now: %s", exc)
            return 0
        if sealed:
            self.publisher.wake()
        return sealed

    def heartbeat(self) -> dict[str, Any]:
        """What operators need to know about this gateway, from its own point of view."""
        stats = self.buffer.stats()
        return {
            "gateway": self.config.gateway.id,
            "site": self.config.gateway.site,
            "time": format_time(self.clock.now()),
            "clock": self.clock.state,
            "key_id": self.signer.key_id,
            "heartbeat_s": self.config.mqtt.heartbeat_s,
            "buffer": {
                "pending_records": stats.pending_records,
                "unsealed_records": stats.unsealed_records,
                "oldest_pending": stats.oldest_time,
                **self.buffer_alarm(),
            },
            "counters": stats.counters,
            "publisher": {
                "connected": self.publisher.stats.connected,
                "last_error": self.publisher.stats.last_error,
                "seals_confirmed_through": self.publisher.stats.seals_confirmed_through,
                "resends": self.publisher.stats.resends,
                "watermarks_ignored": self.publisher.stats.bad_watermarks
                + self.publisher.stats.foreign_watermarks,
            },
            "devices": {
                p.device.id: {
                    "last_seq": stats.chains.get(p.device.id, (None, None))[0],
                    "last_time": stats.chains.get(p.device.id, (None, None))[1],
                    "poll_interval_s": p.device.poll_interval_s,
                    "consecutive_failures": p.failures,
                    "polls_skipped": p.skipped,  # backing off a meter that does not answer
                    "unread_polls": p.unread.polls,  # since the last record: the next gap record's
                    "unread_since": format_time(p.unread.start) if p.unread.start else None,
                    "gap_records": p.gap_records,
                    "identity": None
                    if p.identity is None
                    else {"read": dict(p.identity.texts), "problems": list(p.identity.problems)},
                    "last_error": p.last_error,
                    "last_error_time": p.last_error_time,
                }
                for p in self.pollers
            },
        }

    def buffer_alarm(self) -> dict[str, Any]:
        """Fill level against the quota: ``high_water`` warns, ``full`` means readings are being refused."""
        used = self.buffer.used_bytes()
        quota = self.config.buffer.quota_mb * 1e6
        return {
            "used_mb": round(used / 1e6, 3),
            "quota_mb": self.config.buffer.quota_mb,
            "high_water": used >= quota * self.config.buffer.high_water_percent / 100,
            "full": self.buffer.full,
            "readings_refused": self.buffer.refused,
        }

    def _send_heartbeat(self) -> None:
        beat = self.heartbeat()
        if beat["buffer"]["high_water"]:
            log.warning(
                "buffer at %.0f of %.0f MB (high water %.0f%%)%s",
                beat["buffer"]["used_mb"],
                beat["buffer"]["quota_mb"],
                self.config.buffer.high_water_percent,
                ": readings are being refused" if beat["buffer"]["full"] else "",
            )
        self.publisher.publish_heartbeat(beat)

    def start(self) -> None:
        speed = self.clock.speed
        now = datetime.now(UTC)
        for (bus, seconds), group in bus_groups(self.pollers).items():
            interval = seconds / speed
            # read once at start (a technician sees it work), then on the wall clock's grid; a
            # simulated clock runs faster than the wall's, so there the grid is not aligned
            start = aligned_start(now, interval) if speed == 1 else now
            self.scheduler.add_job(
                group.poll,
                IntervalTrigger(seconds=interval, start_date=start),
                id=f"poll:{bus}:{seconds:g}s",
                misfire_grace_time=max(1, int(interval)),
                next_run_time=now,
            )
        seal_interval = self.config.seal.interval_s / speed
        self.scheduler.add_job(
            self.seal,
            IntervalTrigger(seconds=seal_interval),
            id="seal",
            misfire_grace_time=max(1, int(seal_interval)),
        )
        heartbeat_s = self.config.mqtt.heartbeat_s  # real time: it is for operators, now
        self.scheduler.add_job(
            self._send_heartbeat,
            IntervalTrigger(seconds=heartbeat_s),
            id="heartbeat",
            misfire_grace_time=max(1, int(heartbeat_s)),
        )
        self.seal()  # records left unsealed by a previous run go out first
        self.publisher.start()
        self.scheduler.start()
        log.info(
            "agent %s/%s: %d device(s), key %s, buffer %s",
            self.config.gateway.site,
            self.config.gateway.id,
            len(self.pollers),
            self.signer.key_id,
            self.buffer.path,
        )

    def stop(self, drain_timeout_s: float = 10.0) -> None:
        """Stop polling, seal what was read, give the publisher time to deliver, disconnect."""
        self.scheduler.shutdown(wait=True)
        for poller in self.pollers:  # an outage in progress is signed before the agent goes
            poller.write_gap(self.clock.now())
        self.seal()
        self.publisher.stop(drain_timeout_s, last_heartbeat=self.heartbeat)
        for endpoint in self.endpoints.values():
            endpoint.close()
        self.buffer.close()
