"""``mrv-verify``: check a record export alone, with nothing but the core and ``cryptography``.

Exit status: 0 when every record verifies and no finding was raised, 1 when
there are findings, 2 when the inputs cannot be read.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from pathlib import Path

from mrv_core.evidence import verify_export
from mrv_core.keyring import KeyringError, parse_keyring


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="mrv-verify", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("export", type=Path, help="export file written by 'mrv-collector export'")
    parser.add_argument("--keys", type=Path, required=True, help="JSON keyring of gateway public keys")
    parser.add_argument("--json", action="store_true", help="machine-readable result")
    args = parser.parse_args(argv)
    try:
        keyring = parse_keyring(args.keys.read_text(encoding="utf-8"), str(args.keys))
        with args.export.open(encoding="ascii") as lines:
            result = verify_export(lines, keyring)
    except (OSError, KeyringError, UnicodeDecodeError) as exc:
        print(f"mrv-verify: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(result.as_dict(), indent=2))
        return 0 if result.ok else 1
    if result.ok:
        print(
            f"VERIFIED: {result.records} records in {result.seals} seals from "
            f"{len(result.gateways)} gateway(s), {len(result.devices)} device(s); every signature, "
            "Merkle root, hash link, sequence and decoded value checks out."
        )
        return 0
    kinds = Counter(f.kind for f in result.findings)
    print(
        f"FAILED: {len(result.findings)} finding(s) in {result.records} records "
        f"({', '.join(f'{k} x{n}' for k, n in kinds.most_common())})"
    )
    print(f"{'kind':<20} {'gateway/device':<28} {'seq':<15} {'time':<50} detail")
    for f in result.findings:
        seqs = "" if f.seq_from is None else f"{f.seq_from}..{f.seq_to}"
        where = f"{f.gateway}/{f.device}" if f.device else f.gateway
        span = f"{f.time_from} {f.time_to}".strip()
        print(f"{f.kind:<20} {where:<28} {seqs:<15} {span:<50} {f.detail}")
    return 1


if __name__ == "__main__":
    sys.exit(main())
