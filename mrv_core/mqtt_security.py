"""How agent and collector authenticate to the broker: TLS, client certificates, credentials.

For the agent and the collector only (pydantic). Secrets live in their own
files, which must be private (mode 0600): a private key for mutual TLS, or a
password file; never a password inside a config file others may read.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, model_validator

from mrv_core.secret_files import ensure_private, read_private_text


class TlsSection(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    ca_file: Path = Field(description="CA certificate(s) that signed the broker's certificate (PEM)")
    cert_file: Path | None = Field(default=None, description="client certificate for mutual TLS (PEM)")
    key_file: Path | None = Field(default=None, description="its private key (PEM, mode 0600)")

    @model_validator(mode="after")
    def _pair(self) -> TlsSection:
        if (self.cert_file is None) != (self.key_file is None):
            raise ValueError("cert_file and key_file go together (mutual TLS)")
        return self

    def resolved(self, fix: Callable[[Path], Path]) -> TlsSection:
        return TlsSection(
            ca_file=fix(self.ca_file),
            cert_file=fix(self.cert_file) if self.cert_file else None,
            key_file=fix(self.key_file) if self.key_file else None,
        )

    def check_private(self) -> None:
        if self.key_file is not None:
            ensure_private(self.key_file, "the MQTT client key")


def broker_password(password_file: Path | None) -> str | None:
    """The broker password from its private file, if one is configured."""
    return None if password_file is None else read_private_text(password_file, "the MQTT password file")
