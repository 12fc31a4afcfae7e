"""``mrv-verify BUNDLE``: check an evidence bundle alone, with nothing but the core and ``cryptography``.

Checks every member against the manifest, every seal's signature and key
validity (revocations included), every Merkle root, each device's sequence
and hash chain, that records belong to the period, that profiles match their
hashes and decode the values, then recomputes the monitoring report and
compares it value by value. Exit status: 0 when everything holds, 1 when
there are findings, 2 when the inputs cannot be read.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from pathlib import Path

from mrv_core.bundle import BundleResult, verify_bundle
from mrv_core.keyring import KeyringError, parse_registry


def _progress(done: int, total: int) -> None:
    if sys.stderr.isatty() and (done % 50_000 < 1_000 or done == total):
        share = done / total if total else 1.0
        print(
            f"\r  verifying [{'#' * int(share * 30):<30}] {share:6.1%}  {done:,} records",
            end="",
            file=sys.stderr,
            flush=True,
        )


def _render(result: BundleResult, path: Path) -> str:
    manifest = result.manifest
    project = (manifest.get("project") or {}).get("id", "-")
    period = manifest.get("period") or {}
    first, last = (
        period.get("from", period.get("start_utc", "?")),
        period.get("to", period.get("end_utc", "?")),
    )
    span = f"{first} to {last}"
    head = f"{path.name}: project {project}, {span}, {result.records} records in {result.seals} seals"
    if result.ok:
        report = (
            f"; report recomputed: ER {result.emission_reductions_tco2} tCO2, identical"
            if result.report_checked
            else ""
        )
        return (
            f"VERIFIED: {head}, {len(result.gateways)} gateway(s), {len(result.devices)} device(s). Every "
            f"member hash, signature, key, Merkle root, hash link and sequence checks out; "
            f"{result.decoded_values:,} values re-decoded from their raw words match{report}."
        )
    kinds = Counter(f.kind for f in result.findings)
    lines = [
        f"FAILED: {head}: {len(result.findings)} finding(s) "
        f"({', '.join(f'{k} x{n}' for k, n in kinds.most_common())}); "
        f"{result.verified_records} records verified.",
        "",
        f"{'kind':<22} {'gateway/device':<26} {'seq':<14} {'time span':<49} {'effect':<40} detail",
    ]
    for index, f in enumerate(result.findings):
        seqs = "" if f.seq_from is None else f"{f.seq_from}..{f.seq_to}"
        where = f"{f.gateway}/{f.device}" if f.device else f.gateway
        span = f"{f.time_from} {f.time_to}".strip()
        lines.append(
            f"{f.kind:<22} {where:<26} {seqs:<14} {span:<49} {result.effects.get(index, ''):<40} {f.detail}"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="mrv-verify", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("bundle", type=Path, help="evidence bundle written by 'mrv-collector export' (.zip)")
    parser.add_argument(
        "--keys",
        type=Path,
        help="your own trusted copy of the gateway registry; without it the bundle's is used",
    )
    parser.add_argument(
        "--all-values",
        action="store_true",
        help="re-decode every value of every record, not only those the report uses",
    )
    parser.add_argument("--json", action="store_true", help="machine-readable result")
    args = parser.parse_args(argv)
    if not args.bundle.exists():
        print(f"mrv-verify: {args.bundle}: no such file", file=sys.stderr)
        return 2
    try:
        trusted = parse_registry(args.keys.read_text(encoding="utf-8"), str(args.keys)) if args.keys else None
    except (OSError, KeyringError, UnicodeDecodeError) as exc:
        print(f"mrv-verify: {exc}", file=sys.stderr)
        return 2
    result = verify_bundle(
        args.bundle, trusted=trusted, all_values=args.all_values, progress=None if args.json else _progress
    )
    if sys.stderr.isatty() and not args.json:
        print(file=sys.stderr)
    print(json.dumps(result.as_dict(), indent=2) if args.json else _render(result, args.bundle))
    return 0 if result.ok else 1


if __name__ == "__main__":
    sys.exit(main())
