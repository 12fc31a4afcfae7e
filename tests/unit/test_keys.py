import stat
from pathlib import Path

import pytest

from agent.keys import KeyFileError, create_signer, load_or_create_signer, load_signer


def test_created_once_with_mode_0600(tmp_path: Path) -> None:
    path = tmp_path / "state" / "gateway.key"
    signer, created = load_or_create_signer(path)
    assert created and stat.S_IMODE(path.stat().st_mode) == 0o600
    again, created_again = load_or_create_signer(path)
    assert not created_again and again.key_id == signer.key_id
    with pytest.raises(KeyFileError, match="refusing to replace"):
        create_signer(path)


def test_exposed_key_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "gateway.key"
    create_signer(path)
    path.chmod(0o644)
    with pytest.raises(KeyFileError, match=r"readable by other users \(mode 644\); run 'chmod 600"):
        load_signer(path)


def test_missing_and_garbage(tmp_path: Path) -> None:
    with pytest.raises(KeyFileError, match="not found; create one with 'mrv-agent key init'"):
        load_signer(tmp_path / "none.key")
    bad = tmp_path / "bad.key"
    bad.write_text("not a key")
    bad.chmod(0o600)
    with pytest.raises(KeyFileError, match="cannot load"):
        load_signer(bad)
