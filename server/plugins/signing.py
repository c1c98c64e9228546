"""Detached Ed25519 signatures over a bundle's manifest.json.

manifest.sig is JSON: {"algorithm": "ed25519", "public_key": <base64 raw key>, "signature":
<base64>}. The manifest lists the sha256 of every other file, so one signature covers the whole
bundle. The key named in the file only says which key to check with: a signature counts when
that key is one the administrator trusts (RELAIS_PLUGINS_TRUSTED_KEYS). Unlike a shared HMAC
secret, a public key that verifies cannot sign.

    private = generate_key()                       # relais plugin keygen
    signature = sign(manifest_bytes, private)      # relais plugin sign
    fingerprint = verify(manifest_bytes, signature, trusted_keys(setting))   # or SignatureRefused
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from server.errors import InvalidArgument

ALGORITHM = "ed25519"


class SignatureRefused(InvalidArgument):
    def __init__(self, reason: str) -> None:
        super().__init__(f"The plugin bundle's signature is refused: {reason}")


class KeyInvalid(ValueError):
    """A configured or given key cannot be read."""


def raw_public_key(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def fingerprint(key: Ed25519PublicKey) -> str:
    """sha256 of the raw public key, hex: how Relais names a signer."""
    return hashlib.sha256(raw_public_key(key)).hexdigest()


def public_key_text(key: Ed25519PublicKey) -> str:
    """The form RELAIS_PLUGINS_TRUSTED_KEYS takes: the raw key in base64."""
    return base64.b64encode(raw_public_key(key)).decode()


def generate_key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


def private_key_pem(key: Ed25519PrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def load_private_key(path: Path) -> Ed25519PrivateKey:
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except (ValueError, TypeError, OSError) as error:
        raise KeyInvalid(f"{path}: not a readable unencrypted PEM private key ({error})") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise KeyInvalid(f"{path}: not an Ed25519 key")
    return key


def sign(manifest: bytes, key: Ed25519PrivateKey) -> bytes:
    """The manifest.sig file for `manifest`'s exact bytes."""
    document = {
        "algorithm": ALGORITHM,
        "public_key": public_key_text(key.public_key()),
        "signature": base64.b64encode(key.sign(manifest)).decode(),
    }
    return json.dumps(document, indent=1).encode() + b"\n"


def parse_public_key(text: str) -> Ed25519PublicKey:
    """A public key from its base64 raw form, or from a PEM file's text."""
    text = text.strip()
    if text.startswith("-----BEGIN"):
        try:
            key = serialization.load_pem_public_key(text.encode())
        except ValueError as error:
            raise KeyInvalid(f"not a PEM public key ({error})") from None
        if not isinstance(key, Ed25519PublicKey):
            raise KeyInvalid("not an Ed25519 public key")
        return key
    try:
        raw = base64.b64decode(text, validate=True)
        return Ed25519PublicKey.from_public_bytes(raw)
    except (binascii.Error, ValueError):
        raise KeyInvalid(f"{text[:16]!r}… is neither a base64 Ed25519 key (32 bytes) nor a PEM public key") from None


def trusted_keys(setting: str) -> dict[str, Ed25519PublicKey]:
    """Fingerprint → key, from a comma- or whitespace-separated list of base64 keys and paths
    to files holding one (PEM or base64). Raises KeyInvalid for any entry it cannot read."""
    keys: dict[str, Ed25519PublicKey] = {}
    for entry in setting.replace(",", " ").split():
        path = Path(entry).expanduser()
        text = entry
        if path.is_file():
            try:
                text = path.read_text()
            except OSError as error:
                raise KeyInvalid(f"trusted key file {entry}: {error}") from None
        elif entry.endswith((".pem", ".pub")):
            raise KeyInvalid(f"trusted key file {entry} does not exist")
        key = parse_public_key(text)
        keys[fingerprint(key)] = key
    return keys


def verify(manifest: bytes, signature_file: bytes, trusted: dict[str, Ed25519PublicKey]) -> str:
    """The fingerprint of the trusted key whose signature `signature_file` is; SignatureRefused
    when it is malformed, made by an untrusted key, or does not match the manifest."""
    try:
        document = json.loads(signature_file)
        if document.get("algorithm") != ALGORITHM:
            raise SignatureRefused(f"algorithm {str(document.get('algorithm'))[:32]!r}; only ed25519 is accepted")
        key = parse_public_key(str(document["public_key"]))
        signature = base64.b64decode(str(document["signature"]), validate=True)
    except SignatureRefused:
        raise
    except (ValueError, KeyError, TypeError, AttributeError, binascii.Error, KeyInvalid):
        raise SignatureRefused("manifest.sig is not a signature file") from None
    named = fingerprint(key)
    if named not in trusted:
        raise SignatureRefused(f"signed with key {named[:16]}…, which the administrator does not trust")
    try:
        trusted[named].verify(signature, manifest)
    except InvalidSignature:
        raise SignatureRefused("it does not match the manifest") from None
    return named
