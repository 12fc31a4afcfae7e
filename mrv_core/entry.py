"""Console-script entry points that say which extra to install when a dependency is missing.

``pip install jcm-mrv`` installs only what ``mrv-verify`` needs (the core and
``cryptography``); the agent and the collector need ``jcm-mrv[agent]`` and
``jcm-mrv[collector]``. Without this, a verifier who runs ``mrv-collector``
would get a traceback instead of the one line that helps.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable


def _run(module: str, program: str, extra: str) -> int:
    try:
        main: Callable[[], int] = importlib.import_module(module).main
    except ModuleNotFoundError as exc:
        if exc.name is None or exc.name.split(".")[0] in {"mrv_core", "agent", "collector"}:
            raise
        print(
            f"{program}: the Python package {exc.name!r} is missing; "
            f"install this program's dependencies with: pip install 'jcm-mrv[{extra}]'",
            file=sys.stderr,
        )
        return 2
    return main()


def agent() -> int:
    return _run("agent.cli", "mrv-agent", "agent")


def collector() -> int:
    return _run("collector.cli", "mrv-collector", "collector")
