"""The status page for people: static HTML that reads the API and refreshes itself."""

from __future__ import annotations

from functools import cache
from importlib.resources import files


@cache
def _text(name: str) -> str:
    return files("collector").joinpath("static", name).read_text(encoding="utf-8")


def status_page() -> str:
    return _text("status.html")


def login_page(message: str = "") -> str:
    escaped = message.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return _text("login.html").replace("{message}", escaped)
