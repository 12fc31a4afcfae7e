"""A verifier installs jcm-mrv alone: mrv-verify works with only the core and cryptography.

The package is built as a wheel from this checkout (offline, with the dev
environment's setuptools) and installed with --no-deps into a new virtual
environment that gets nothing else but cryptography and what it needs (linked
from the dev environment: the test must not depend on a package index).
"""

from __future__ import annotations

import importlib.metadata
import json
import shutil
import subprocess
import sys
import venv
from pathlib import Path

from tests.integration.test_verify_cli import Site, _members, _report, _write, site  # noqa: F401

ROOT = Path(__file__).resolve().parents[2]
ABSENT = ["paho", "influxdb_client", "pymodbus", "apscheduler", "pydantic", "yaml", "fastapi", "uvicorn"]


def _link_distribution(name: str, site_packages: Path) -> None:
    """Make an installed distribution (files and metadata) visible in another environment."""
    dist = importlib.metadata.distribution(name)
    base = Path(str(dist.locate_file("")))
    tops = {Path(str(f)).parts[0] for f in dist.files or [] if not str(f).startswith("..")}
    for top in tops:
        if top != "__pycache__" and (base / top).exists() and not (site_packages / top).exists():
            (site_packages / top).symlink_to(base / top)


def test_mrv_verify_runs_with_only_the_core_and_cryptography(site: Site, tmp_path: Path) -> None:  # noqa: F811
    source = tmp_path / "source"  # a copy, so no stale build/ folder of the checkout gets into the wheel
    for name in ("pyproject.toml", "README.md", "mrv_core", "agent", "collector"):
        if (ROOT / name).is_dir():
            shutil.copytree(ROOT / name, source / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            source.mkdir(exist_ok=True)
            shutil.copy(ROOT / name, source / name)
    wheels = tmp_path / "wheels"
    built = subprocess.run(
        [
            *(sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation"),
            *("--no-index", "--wheel-dir", str(wheels), str(source)),
        ],
        capture_output=True,
        text=True,
    )
    assert built.returncode == 0, built.stderr
    env_dir = tmp_path / "verifier-env"
    venv.create(env_dir, with_pip=True)
    python = env_dir / "bin/python"
    installed = subprocess.run(
        [python, "-m", "pip", "install", "--quiet", "--no-deps", "--no-index", *wheels.glob("*.whl")],
        capture_output=True,
        text=True,
    )
    assert installed.returncode == 0, installed.stderr
    site_packages = Path(
        subprocess.check_output(
            [python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"], text=True
        ).strip()
    )
    for name in ("cryptography", "cffi", "pycparser"):
        _link_distribution(name, site_packages)

    # Nothing of the agent's or the collector's dependencies is importable there.
    present = subprocess.run(
        [python, "-c", f"import importlib.util as u; print([m for m in {ABSENT!r} if u.find_spec(m)])"],
        capture_output=True,
        text=True,
    )
    assert present.stdout.strip() == "[]", present.stdout + present.stderr

    verify = env_dir / "bin/mrv-verify"
    clean = subprocess.run([verify, str(site.bundle), "--json"], capture_output=True, text=True)
    assert clean.returncode == 0, clean.stderr
    assert json.loads(clean.stdout)["verdict"] == "verified"
    tampered = _write(site.bundle, _report(_members(site.bundle)))
    failed = subprocess.run([verify, str(tampered), "--json"], capture_output=True, text=True)
    assert failed.returncode == 1
    assert {f["kind"] for f in json.loads(failed.stdout)["findings"]} == {"report_mismatch"}

    # The other programs say which extra they need instead of printing a traceback.
    for program, extra in (("mrv-agent", "agent"), ("mrv-collector", "collector")):
        done = subprocess.run([env_dir / "bin" / program, "--help"], capture_output=True, text=True)
        assert done.returncode == 2
        assert f"pip install 'jcm-mrv[{extra}]'" in done.stderr and "Traceback" not in done.stderr
