"""Ed25519 keys, key ids and signatures over canonical bytes."""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey


def fingerprint(public_key_raw: bytes) -> str:
    """Full SHA-256 of a raw public key in groups of four hex digits, for people to compare aloud."""
    digest = hashlib.sha256(public_key_raw).hexdigest()
    return ":".join(digest[i : i + 4] for i in range(0, 64, 4))


def key_id(public_key_raw: bytes) -> str:
    """Fingerprint of a raw 32-byte Ed25519 public key: first 16 bytes of SHA-256, hex."""
    if len(public_key_raw) != 32:
        raise ValueError(f"an Ed25519 public key has 32 bytes, not {len(public_key_raw)}")
    return hashlib.sha256(public_key_raw).hexdigest()[:32]


@dataclass(frozen=True)
class Signer:
    """A gateway's signing key. Built from the key file at the edge, passed in."""

    private_key: Ed25519PrivateKey

    @classmethod
    def from_seed(cls, seed: bytes) -> Signer:
        return cls(Ed25519PrivateKey.from_private_bytes(seed))

    @classmethod
    def from_pem(cls, pem: bytes) -> Signer:
        key = serialization.load_pem_private_key(pem, password=None)
        if not isinstance(key, Ed25519PrivateKey):
            raise TypeError("the key file does not hold an Ed25519 private key")
        return cls(key)

    @classmethod
    def generate(cls) -> Signer:
        return cls(Ed25519PrivateKey.generate())

    def to_pem(self) -> bytes:
        return self.private_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )

    @property
    def public_key_raw(self) -> bytes:
        return self.private_key.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )

    @property
    def key_id(self) -> str:
        return key_id(self.public_key_raw)

    def sign(self, data: bytes) -> bytes:
        return self.private_key.sign(data)


@dataclass(frozen=True)
class PublicKey:
    """A gateway's registered public key."""

    gateway: str
    raw: bytes

    @classmethod
    def from_b64(cls, gateway: str, text: str) -> PublicKey:
        return cls(gateway, base64.b64decode(text, validate=True))

    @property
    def key_id(self) -> str:
        return key_id(self.raw)

    @property
    def b64(self) -> str:
        return base64.b64encode(self.raw).decode("ascii")

    def verifies(self, data: bytes, signature: bytes) -> bool:
        try:
            Ed25519PublicKey.from_public_bytes(self.raw).verify(signature, data)
        except InvalidSignature:
            return False
        return True


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def unb64(text: str) -> bytes:
    return base64.b64decode(text, validate=True)
