"""API key format, a contract clients and scanners rely on: prefix, 165 random bits, CRC32."""

from __future__ import annotations

import hashlib
import secrets
import zlib

PREFIX = "klk_"
ALPHABET = "0123456789abcdefghijklmnopqrstuvwxyz"
BODY_LEN = 32  # 32 base-36 characters carry log2(36) * 32 = 165 random bits
CHECK_LEN = 7  # CRC32 needs 7 base-36 digits (36**7 > 2**32)
KEY_LEN = len(PREFIX) + BODY_LEN + CHECK_LEN
KEY_PATTERN = rf"klk_[0-9a-z]{{{BODY_LEN + CHECK_LEN}}}"  # also what secret scanners look for
_PREFIX_BYTES = PREFIX.encode()
_HEAD_LEN = KEY_LEN - CHECK_LEN
_crc32 = zlib.crc32


def _base36(value: int, width: int) -> str:
    digits = []
    for _ in range(width):
        value, rem = divmod(value, 36)
        digits.append(ALPHABET[rem])
    return "".join(reversed(digits))


def generate() -> str:
    """A fresh key whose last seven characters are the CRC32 of everything before them."""
    head = PREFIX + "".join(secrets.choice(ALPHABET) for _ in range(BODY_LEN))
    return head + _base36(zlib.crc32(head.encode()), CHECK_LEN)


def is_well_formed(key: str) -> bool:
    """Shape and checksum only: rejects typos and junk before any lookup."""
    # isascii before encode: a lone surrogate (a JSON escape can make one) cannot be encoded
    return len(key) == KEY_LEN and key.isascii() and is_well_formed_ascii(key.encode())


def is_well_formed_ascii(raw: bytes) -> bool:
    """is_well_formed for a key's bytes: exactly KEY_PATTERN plus the checksum, no regex.

    bytes.islower and bytes.isalnum look at ASCII only, so no other digit or letter passes;
    both are checked before int(..., 36), which would also take upper case, "_", "+" and
    surrounding spaces.
    """
    return (
        len(raw) == KEY_LEN
        and raw.startswith(_PREFIX_BYTES)
        and raw.islower()  # no upper case letter anywhere (the prefix has a lower case one)
        and raw[len(_PREFIX_BYTES) :].isalnum()  # [0-9A-Za-z] after the prefix, nothing else
        and int(raw[_HEAD_LEN:], 36) == _crc32(raw[:_HEAD_LEN])
    )


def fingerprint(key: str) -> str:
    """sha-256 hex: what events carry and what verification looks up."""
    return hashlib.sha256(key.encode()).hexdigest()


def hint(key: str) -> str:
    """Enough to recognise a key on screen, far too little to use it."""
    return f"{PREFIX}…{key[-4:]}"
