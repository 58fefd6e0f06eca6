"""Check a stream's signed checkpoints against the heads a replay recomputes from the stream."""

from __future__ import annotations

import json
from contextlib import aclosing
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from nats.js.errors import NotFoundError
from pydantic import ValidationError

from contracts import checkpoints as cp
from contracts.keys import KEYS_STREAM
from contracts.notifier import NOTIFY_STREAM
from keyledger.audit.replay import read_messages

if TYPE_CHECKING:
    from collections.abc import Mapping

    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
    from nats.aio.client import Client


# what a checkpoint's heads are folded from: a replay of anything narrower cannot compare
COVERS = {KEYS_STREAM.name: KEYS_STREAM.subjects[0], NOTIFY_STREAM.name: NOTIFY_STREAM.subjects[0]}


async def read_checkpoints(nc: Client, stream: str, replayed: str) -> list[dict[str, Any]]:
    """Every checkpoint of `stream`, oldest first; none when nothing checkpoints it (yet),
    or when the replay reads only part of it (`replayed`: its subject filter)."""
    subject = cp.SUBJECT_OF.get(stream)
    if subject is None or COVERS.get(stream) != replayed:
        return []
    found = []
    try:
        async with aclosing(read_messages(nc, cp.CHECKPOINTS_STREAM.name, subject)) as messages:
            async for _, _, data in messages:
                try:
                    found.append(json.loads(data))
                except ValueError:
                    found.append({"unreadable": True})
    except NotFoundError:
        return []
    return found


@dataclass(frozen=True)
class CheckpointProblem:
    """The first checkpoint that does not hold, and why."""

    stream: str
    number: int
    reason: str
    # checkpoint_broken: invalid in itself; checkpoint_mismatch: disagrees with the history
    code: str = "checkpoint_broken"

    def __str__(self) -> str:
        return f"checkpoint {self.number} of {self.stream}: {self.reason}"

    def as_dict(self) -> dict[str, Any]:
        return {
            "stream": self.stream,
            "number": self.number,
            "reason": self.reason,
            "problem": self.code,
        }


@dataclass
class CheckpointChecker:
    """Checks the checkpoint chain (hash, prev_hash, signature) up front, then each root
    against the heads a replay holds once it has passed the checkpoint's last_seq.

    A checkpoint beyond what the replay read is left for a later replay: the auditors'
    copy of CHECKPOINTS may be a moment ahead of their copy of the stream.
    """

    stream: str
    bodies: list[dict[str, Any]]
    public_key: Ed25519PublicKey | None
    verified: int = 0
    problem: CheckpointProblem | None = None
    _next: int = field(default=0, init=False)

    def check_chain(self) -> CheckpointProblem | None:
        prev_hash, last_seq = cp.FIRST_PREV_HASH, -1
        wanted_key = cp.key_id(self.public_key) if self.public_key is not None else None
        for index, body in enumerate(self.bodies):
            number = index + 1
            why = self._why(body, number, prev_hash, last_seq, wanted_key)
            if why is not None:
                self.problem = CheckpointProblem(self.stream, number, why)
                return self.problem
            prev_hash, last_seq = body["hash"], body["last_seq"]
        return None

    def _why(
        self,
        body: dict[str, Any],
        number: int,
        prev_hash: str,
        last_seq: int,
        wanted_key: str | None,
    ) -> str | None:
        try:
            found = cp.Checkpoint.model_validate(body)
        except ValidationError:
            return "not a checkpoint"
        if found.stream != self.stream or found.number != number:
            return f"is {found.stream} number {found.number}, not {self.stream} number {number}"
        if found.prev_hash != prev_hash:
            return "prev_hash is not the previous checkpoint's hash"
        if found.last_seq <= last_seq:
            return f"last_seq {found.last_seq} does not follow {last_seq}"
        if found.hash != cp.checkpoint_hash(body):
            return "hash does not match the content: the checkpoint was altered"
        if self.public_key is not None:
            if found.key_id != wanted_key:
                return f"signed with key {found.key_id}, not {wanted_key}"
            if not cp.verify_signature(body, self.public_key):
                return "signature does not verify"
        return None

    def passed(self, stream_seq: int, heads: Mapping[str, tuple[int, str]]) -> None:
        """Compare every checkpoint covering less than `stream_seq` (the next message) with
        the heads as they stand before it; call with the end + 1 once the replay is done."""
        while self.problem is None and self._next < len(self.bodies):
            body = self.bodies[self._next]
            if body["last_seq"] >= stream_seq:
                return
            root = cp.merkle_root(heads)
            if root != body["root"] or len(heads) != body["accounts"]:
                self.problem = CheckpointProblem(
                    self.stream,
                    self._next + 1,
                    f"the stream up to sequence {body['last_seq']} gives root {root[:12]}… "
                    f"over {len(heads)} accounts, the checkpoint signed {body['root'][:12]}… "
                    f"over {body['accounts']}: the history was rewritten",
                    "checkpoint_mismatch",
                )
                return
            self.verified += 1
            self._next += 1

    @property
    def pending(self) -> int:
        """Checkpoints beyond what was read (none once every one was compared)."""
        return len(self.bodies) - self._next if self.problem is None else 0
