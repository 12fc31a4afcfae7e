"""How every benchmark reports: a Markdown table headed by the date and the machine, and the raw
figures in .bench/<name>-<time>.json (docs/BENCHMARKS.md gets the table by hand)."""

from __future__ import annotations

import json
import os
import platform
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


def report(name: str, columns: list[str], rows: list[str], raw: list[dict[str, Any]]) -> None:
    print(
        f"\n{datetime.now(UTC):%Y-%m-%d} on {platform.node()} ({os.cpu_count()} cores, Python "
        f"{platform.python_version()})\n| {' | '.join(columns)} |\n|{'---|' * len(columns)}"
    )
    for row in rows:
        print(row)
    out = ROOT / ".bench"
    out.mkdir(exist_ok=True)
    (out / f"{name}-{datetime.now(UTC):%Y%m%dT%H%M%S}.json").write_text(json.dumps(raw, indent=2))
