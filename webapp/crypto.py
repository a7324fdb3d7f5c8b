"""Key material: encrypt and decrypt provider secrets, hash and mask keys. Nothing else touches it."""
import base64
import hashlib
import hmac
import os
import secrets

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from flask import current_app

from webapp.errors import APIError

CIPHERTEXT_PREFIX = "v1."


class DecryptionError(Exception):
    """A stored secret could not be decrypted (wrong key, or ciphertext moved to another row)."""


def new_encryption_key() -> str:
    return base64.urlsafe_b64encode(AESGCM.generate_key(bit_length=256)).decode()


def new_virtual_key() -> str:
    return "sk-" + secrets.token_urlsafe(32)


def new_secret() -> str:
    return secrets.token_urlsafe(32)


def _cipher(key: str | None) -> AESGCM:
    key = key or current_app.config.get("TEAMGATE_ENCRYPTION_KEY")
    if not key:
        raise APIError(503, "Teamgate has no encryption key: run `flask --app wsgi setup` (as "
                            "`make run` does) or set TEAMGATE_ENCRYPTION_KEY.")
    raw = base64.urlsafe_b64decode(key.encode())
    return AESGCM(raw)


def encrypt(plaintext: str, row_id: str, key: str | None = None) -> str:
    """Encrypt a secret bound to its row: the row id is the associated data."""
    nonce = os.urandom(12)
    sealed = _cipher(key).encrypt(nonce, plaintext.encode(), row_id.encode())
    return CIPHERTEXT_PREFIX + base64.urlsafe_b64encode(nonce + sealed).decode()


def decrypt(ciphertext: str, row_id: str, key: str | None = None) -> str:
    if not ciphertext.startswith(CIPHERTEXT_PREFIX):
        raise DecryptionError("unknown ciphertext format")
    blob = base64.urlsafe_b64decode(ciphertext[len(CIPHERTEXT_PREFIX):].encode())
    try:
        return _cipher(key).decrypt(blob[:12], blob[12:], row_id.encode()).decode()
    except InvalidTag as exc:
        raise DecryptionError("stored secret does not decrypt with this key for this row") from exc


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def is_master_key(key: str) -> bool:
    master = current_app.config.get("TEAMGATE_MASTER_KEY") or ""
    return bool(master) and hmac.compare_digest(key.encode(), master.encode())


def mask(secret: str | None) -> str | None:
    """The one displayable form of a secret: `sk-...` + last 4, or `******` for short ones."""
    if secret is None:
        return None
    if len(secret) < 12:
        return "******"
    return "sk-..." + secret[-4:]
