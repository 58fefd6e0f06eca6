"""Verify an exported history (and checkpoints) without NATS: the lines of AUDITING.md."""

from __future__ import annotations

import base64
import json
from collections import deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from keyledger.audit.checkpoint_check import checkpoint_problem, root_problem
from keyledger.audit.replay import ChainChecker, Problem

if TYPE_CHECKING:
    from collections.abc import Iterable

CHAINED_STREAMS = ("KEYS", "NOTIFY")


@dataclass(frozen=True)
class Record:
    """One stored message as exported: stream, stream sequence, subject, headers, bytes."""

    stream: str
    seq: int
    subject: str
    headers: dict[str, str]
    data: bytes


def export_line(record: Record) -> str:
    """The export line of a message; bytes that are not UTF-8 go as `data_base64`."""
    line: dict[str, Any] = {
        "stream": record.stream,
        "seq": record.seq,
        "subject": record.subject,
        "headers": record.headers,
    }
    try:
        line["data"] = record.data.decode()
    except UnicodeDecodeError:
        line["data_base64"] = base64.b64encode(record.data).decode()
    return json.dumps(line, ensure_ascii=False)


def parse_export_line(text: str) -> Record:
    """The message an export line holds; ValueError if the line is not one."""
    line = json.loads(text)
    if not isinstance(line, dict):
        raise ValueError("not a JSON object")
    stream, seq, subject = line.get("stream"), line.get("seq"), line.get("subject")
    headers = line.get("headers") or {}
    if not isinstance(stream, str) or not isinstance(subject, str) or not isinstance(headers, dict):
        raise ValueError("stream, subject or headers missing")
    if type(seq) is not int or seq < 1:
        raise ValueError("seq is not a positive integer")
    if isinstance(line.get("data"), str):
        data = line["data"].encode()
    elif isinstance(line.get("data_base64"), str):
        data = base64.b64decode(line["data_base64"], validate=True)
    else:
        raise ValueError("no data")
    return Record(stream, seq, subject, headers, data)


@dataclass(frozen=True)
class CheckpointProblem:
    """A checkpoint that is invalid in itself (`checkpoint_broken`) or does not match the
    replayed history (`checkpoint_mismatch`)."""

    code: str
    stream: str
    number: Any
    last_seq: Any
    reason: str

    def __str__(self) -> str:
        return f"{self.stream} checkpoint {self.number}: {self.reason}"

    def as_dict(self) -> dict[str, Any]:
        return {
            "stream": self.stream,
            "number": self.number,
            "last_seq": self.last_seq,
            "reason": self.reason,
        }


@dataclass
class Verdict:
    """What verifying one stream's history found."""

    stream: str
    checker: ChainChecker = field(default_factory=ChainChecker)
    checkpoints: int = 0
    problem: Problem | CheckpointProblem | None = None

    @property
    def code(self) -> str | None:
        if isinstance(self.problem, CheckpointProblem):
            return self.problem.code
        return "chain_broken" if self.problem is not None else None


def verify_stream(
    stream: str,
    records: Iterable[Record],
    checkpoints: Iterable[dict[str, Any]] = (),
    public_key: bytes | None = None,
) -> Verdict:
    """Every chain of one stream's history, then every checkpoint of it against the heads
    replayed up to its last_seq; the first problem in stream order ends the check."""
    verdict = Verdict(stream)
    mine = [c for c in checkpoints if isinstance(c, dict) and c.get("stream") == stream]
    previous: dict[str, Any] | None = None
    for body in mine:
        if (why := checkpoint_problem(body, previous, public_key)) is not None:
            number, last = body.get("number"), body.get("last_seq")
            verdict.problem = CheckpointProblem("checkpoint_broken", stream, number, last, why)
            return verdict
        previous = body
    pending = deque(mine)
    last_seq = 0

    def check_due(upto: int) -> bool:
        # every checkpoint covering only messages before `upto` is compared to the heads now
        while pending and pending[0]["last_seq"] < upto:
            body = pending.popleft()
            why = root_problem(body, verdict.checker.heads)
            if why is not None:
                verdict.problem = CheckpointProblem(
                    "checkpoint_mismatch", stream, body["number"], body["last_seq"], why
                )
                return False
            verdict.checkpoints += 1
        return True

    for record in sorted(records, key=lambda r: r.seq):
        if not check_due(record.seq):
            return verdict
        if (problem := verdict.checker.feed(record.seq, record.data, record.subject)) is not None:
            verdict.problem = problem
            return verdict
        last_seq = record.seq
    if not check_due(last_seq + 1) or not pending:
        return verdict
    body = pending[0]
    why = (
        f"checkpoint {body['number']} covers stream sequence {body['last_seq']}, "
        f"the history ends at {last_seq}: events are missing"
    )
    verdict.problem = CheckpointProblem(
        "checkpoint_mismatch", stream, body["number"], body["last_seq"], why
    )
    return verdict
