"""mrv-verify must run where only the core and `cryptography` are installed."""

import subprocess
import sys
from pathlib import Path

BLOCKED = ["pydantic", "yaml", "paho", "pymodbus", "influxdb_client", "apscheduler"]


def test_verifier_imports_nothing_but_the_core(tmp_path: Path) -> None:
    code = (
        "import sys\n"
        f"for name in {BLOCKED!r}: sys.modules[name] = None  # any import of them now fails\n"
        "from collector.verify_cli import main\n"
        "from mrv_core.report import compute_report, MemoryRecordSource\n"
        "sys.exit(main(['--help']))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=Path(__file__).parents[2]
    )
    assert done.returncode == 0, done.stderr
    assert "mrv-verify" in done.stdout
