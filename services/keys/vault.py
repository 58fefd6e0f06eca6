"""The vault: keys encrypted with AES-GCM under the master key, destroyed on retirement."""

from __future__ import annotations

import base64
import os
from typing import TYPE_CHECKING

from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy import delete, insert, select

from services.keys.store import vault

if TYPE_CHECKING:
    from pathlib import Path

    from sqlalchemy.ext.asyncio import AsyncEngine


def load_master_key(value: str | None, path: Path | None) -> bytes:
    """32 bytes from urlsafe base64, given directly or in a file; refuse anything else."""
    if value is None and path is not None:
        value = path.read_text().strip()
    if not value:
        raise ValueError(
            "no master key: set KEYLEDGER_MASTER_KEY or KEYLEDGER_MASTER_KEY_FILE "
            "(`keyledger up` creates one in its data folder)"
        )
    try:
        key = base64.urlsafe_b64decode(value)
    except ValueError as exc:
        raise ValueError("the master key is not urlsafe base64") from exc
    if len(key) != 32:
        raise ValueError("the master key must be 32 bytes (256-bit AES)")
    return key


def new_master_key() -> str:
    return base64.urlsafe_b64encode(os.urandom(32)).decode()


class Vault:
    """Encrypts with the account and key id as associated data, so rows cannot be swapped."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._cipher: AESGCM | None = None

    def unlock(self, master_key: bytes) -> None:
        """At start-up, not construction: generating docs needs no secret."""
        self._cipher = AESGCM(master_key)

    @property
    def _aead(self) -> AESGCM:
        if self._cipher is None:
            raise RuntimeError("the vault is locked: no master key loaded")
        return self._cipher

    async def put(self, account_id: str, key_id: str, secret: str) -> None:
        nonce = os.urandom(12)
        sealed = self._aead.encrypt(nonce, secret.encode(), _aad(account_id, key_id))
        async with self._engine.begin() as conn:
            await conn.execute(
                insert(vault).values(
                    key_id=key_id, account_id=account_id, nonce=nonce, ciphertext=sealed
                )
            )

    async def get(self, account_id: str, key_id: str) -> str | None:
        async with self._engine.connect() as conn:
            row = (
                await conn.execute(
                    select(vault.c.nonce, vault.c.ciphertext).where(
                        vault.c.key_id == key_id, vault.c.account_id == account_id
                    )
                )
            ).first()
        if row is None:
            return None
        return self._aead.decrypt(row.nonce, row.ciphertext, _aad(account_id, key_id)).decode()

    async def destroy(self, key_id: str) -> None:
        async with self._engine.begin() as conn:
            await conn.execute(delete(vault).where(vault.c.key_id == key_id))


def _aad(account_id: str, key_id: str) -> bytes:
    return f"{account_id}/{key_id}".encode()
