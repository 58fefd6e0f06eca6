"""The checkpoint publisher: when it publishes, what it chains onto, and a lost race."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from nats.js.errors import BadRequestError, NotFoundError

from contracts import checkpoints as cp
from services.common.checkpoints import CheckpointPublisher, Snapshot


@dataclass
class Stored:
    seq: int
    data: bytes


@dataclass
class FakeJs:
    """CHECKPOINTS as a list; `lose` refuses the next append as a lost race would."""

    kept: list[tuple[str, bytes, dict[str, str]]] = field(default_factory=list)
    lose: bool = False

    async def get_last_msg(self, stream: str, subject: str, direct: bool) -> Stored:
        if not self.kept:
            raise NotFoundError
        return Stored(len(self.kept), self.kept[-1][1])

    async def publish(self, subject: str, data: bytes, stream: str, headers: dict[str, str]) -> Any:
        expected = int(headers["Nats-Expected-Last-Subject-Sequence"])
        if self.lose or expected != len(self.kept):
            self.lose = False
            raise BadRequestError(code=400, err_code=10071, description="wrong last sequence")
        self.kept.append((subject, data, headers))
        return type("Ack", (), {"duplicate": False, "seq": len(self.kept)})()


def publisher(js: FakeJs, heads: dict[str, tuple[int, str]], seq: list[int]) -> CheckpointPublisher:
    async def position() -> int:
        return seq[0]

    async def snapshot() -> Snapshot:
        return Snapshot(seq[0], dict(heads))

    made = CheckpointPublisher(
        stream="KEYS",
        key=Ed25519PrivateKey.from_private_bytes(bytes(32)),
        position=position,
        snapshot=snapshot,
        every_events=3,
        every_seconds=3600,
        clock=lambda: datetime(2026, 11, 30, 6, tzinfo=UTC),
    )
    made.bind(js)  # type: ignore[arg-type]
    return made


async def test_it_publishes_every_n_events_chained_and_signed() -> None:
    js, seq = FakeJs(), [2]
    heads = {"acme": (2, "aa" * 32)}
    made = publisher(js, heads, seq)
    assert await made.poll() is None  # 2 events: not yet
    seq[0] = 3
    first = await made.poll()
    assert first is not None
    assert (first["number"], first["last_seq"], first["prev_hash"]) == (1, 3, "0" * 64)
    assert first["root"] == cp.merkle_root(heads)
    assert js.kept[0][2]["Nats-Msg-Id"] == "KEYS:3"
    seq[0] = 6
    second = await made.poll()
    assert second is not None
    assert (second["number"], second["prev_hash"]) == (2, first["hash"])
    assert js.kept[1][2]["Nats-Expected-Last-Subject-Sequence"] == "1"


async def test_a_lost_race_publishes_nothing_and_the_next_chains_onto_the_winner() -> None:
    js, seq = FakeJs(), [3]
    made = publisher(js, {}, seq)
    js.lose = True
    assert await made.poll() is None
    assert js.kept == []
    other = publisher(js, {}, seq)  # the replica that won
    assert await other.poll() is not None
    seq[0] = 6
    mine = await made.poll()
    assert mine is not None
    assert mine["number"] == 2
