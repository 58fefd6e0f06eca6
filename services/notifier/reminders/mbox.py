"""The mbox outbox: reminder mail appended to a file when no SMTP server is set."""

from __future__ import annotations

import asyncio
import contextlib
import mailbox
import time
from typing import TYPE_CHECKING

from services.notifier.reminders.errors import DeliveryError

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Awaitable, Callable
    from pathlib import Path

    from services.notifier.reminders.mime import Mail

LOCK_ATTEMPTS = 200


class MboxTransport:
    """Appends to an mbox file (Python's mailbox), locked so replicas can share it."""

    keep_open = False  # the lock is taken per delivery chunk, so replicas take turns

    def __init__(self, path: Path) -> None:
        self.path = path

    def describe(self) -> str:
        return f"mbox file {self.path}"

    @contextlib.asynccontextmanager
    async def session(self) -> AsyncIterator[Callable[[Mail], Awaitable[None]]]:
        box = await asyncio.to_thread(self._open)

        async def send(mail: Mail) -> None:
            try:
                await asyncio.to_thread(self._append, box, mail.data)
            except OSError as exc:
                raise DeliveryError(f"cannot write {self.path}: {exc}", broken=True) from None

        try:
            yield send
        finally:
            await asyncio.to_thread(self._close, box)

    def _open(self) -> mailbox.mbox:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            box = mailbox.mbox(self.path)
            for _ in range(LOCK_ATTEMPTS):
                try:
                    box.lock()
                    return box
                except mailbox.ExternalClashError:  # another replica is appending: wait
                    time.sleep(0.05)
        except (OSError, mailbox.Error) as exc:
            raise DeliveryError(f"cannot open {self.path}: {exc}", broken=True) from None
        raise DeliveryError(f"{self.path} stayed locked by another process", broken=True)

    @staticmethod
    def _append(box: mailbox.mbox, data: bytes) -> None:
        box.add(data)  # "\n" lines, as the file keeps them; a body "From " line is quoted
        box.flush()  # on disk before the delivery is recorded

    @staticmethod
    def _close(box: mailbox.mbox) -> None:
        box.unlock()
        box.close()
