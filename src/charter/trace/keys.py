"""Ed25519 keys and signed checkpoints (chain length + head hash + time) of a trace log."""

from __future__ import annotations

import base64
import contextlib
import json
import os
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey


def load_or_create_key(path: str | Path) -> Ed25519PrivateKey:
    """The signing key at path, created (mode 0600) if missing.

    Safe when several processes race to create it: the key is written to a private temporary file
    and linked into place atomically; whoever loses the race uses the winner's key.
    """
    p = Path(path)
    if not p.exists():
        pem = Ed25519PrivateKey.generate().private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        tmp = p.with_name(f".{p.name}.{os.getpid()}.{os.urandom(4).hex()}.tmp")
        fd = os.open(str(tmp), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(pem)
            with contextlib.suppress(FileExistsError):
                os.link(tmp, p)
        finally:
            tmp.unlink()
    key = serialization.load_pem_private_key(p.read_bytes(), password=None)
    assert isinstance(key, Ed25519PrivateKey)
    return key


def _message(length: int, head: str, at: float) -> bytes:
    return json.dumps(
        {"length": length, "head": head, "at": at}, sort_keys=True, separators=(",", ":")
    ).encode()


def public_b64(key: Ed25519PrivateKey) -> str:
    """The raw public key, base64."""
    raw = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return base64.b64encode(raw).decode()


def sign_checkpoint(key: Ed25519PrivateKey, length: int, head: str, at: float) -> dict[str, Any]:
    """A signed checkpoint, exportable as JSON."""
    sig = key.sign(_message(length, head, at))
    return {
        "length": length,
        "head": head,
        "at": at,
        "signature": base64.b64encode(sig).decode(),
        "public_key": public_b64(key),
    }


def check_checkpoint(cp: dict[str, Any], trusted_public_key: str | None = None) -> bool:
    """Whether a checkpoint's signature is valid (for the trusted key when given)."""
    pub_b64 = trusted_public_key or cp["public_key"]
    if trusted_public_key and cp.get("public_key") != trusted_public_key:
        return False
    try:
        pub = Ed25519PublicKey.from_public_bytes(base64.b64decode(pub_b64))
        pub.verify(
            base64.b64decode(cp["signature"]), _message(int(cp["length"]), cp["head"], float(cp["at"]))
        )
        return True
    except (InvalidSignature, ValueError, KeyError):
        return False
