"""Password hashing (Argon2id) and the password rules."""

from __future__ import annotations

import asyncio
import re

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from server.errors import FieldViolation

MIN_LENGTH = 8
# Argon2 cost grows with the input: bound it so a login cannot be used to burn CPU.
MAX_LENGTH = 256

_hasher = PasswordHasher()  # argon2-cffi's defaults are RFC 9106's recommended Argon2id profile
# Verified against when the account does not exist, so timing does not reveal which accounts do.
_DUMMY_HASH = _hasher.hash("relais-timing-equaliser-not-a-password")


async def hash_password(password: str) -> str:
    # Argon2 takes ~100 ms of CPU by design; argon2-cffi releases the GIL, so a thread keeps
    # the event loop (every other request) running meanwhile.
    return await asyncio.to_thread(_hasher.hash, password)


async def verify_password(password_hash: str | None, password: str) -> bool:
    """True when `password` matches; always spends one Argon2 verification (off the event loop)."""
    if len(password) > MAX_LENGTH:
        return False
    return await asyncio.to_thread(_verify, password_hash, password)


def _verify(password_hash: str | None, password: str) -> bool:
    try:
        return _hasher.verify(password_hash or _DUMMY_HASH, password) and password_hash is not None
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def needs_rehash(password_hash: str) -> bool:
    return _hasher.check_needs_rehash(password_hash)


# The rules of password_violations, in words (shown before a password is asked for).
PASSWORD_RULES = f"{MIN_LENGTH} to {MAX_LENGTH} characters, at least one letter and one digit, and not the email"


def password_violations(password: str, *, field: str = "password", email: str = "") -> list[FieldViolation]:
    """What is wrong with a new password (empty when it is acceptable)."""
    problems = []
    if len(password) < MIN_LENGTH:
        problems.append(f"must be at least {MIN_LENGTH} characters")
    if len(password) > MAX_LENGTH:
        problems.append(f"must be at most {MAX_LENGTH} characters")
    if not re.search(r"[A-Za-z]", password) or not re.search(r"\d", password):
        problems.append("must contain a letter and a digit")
    if email and password.lower() == email.lower():
        problems.append("must differ from the email")
    return [FieldViolation(field=field, message=problem) for problem in problems]
