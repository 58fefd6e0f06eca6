"""Recipients, reminder ids, the retry policy, the message text and the projection's fold."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email import message_from_bytes
from typing import Any

import pytest

from contracts.envelope import GENESIS_HASH
from services.common import eventlog
from services.notifier.domain import (
    ActiveKey,
    Person,
    RetryPolicy,
    plan,
    recipients,
    reminder_id,
)
from services.notifier.folding import fold
from services.notifier.reminders.messages import email, message_id, sidebar_text

T0 = datetime(2025, 1, 31, 9, 0, tzinfo=UTC)
KEY = ActiveKey("acme", "key_1", "klk_…x7q2", T0, "carol", "evt-1")
ALICE = Person("alice", "alice@x.io", admin=True)
BOB = Person("bob", "bob@x.io", admin=True)
CAROL = Person("carol", "carol@x.io", admin=False)  # revoked, but created the key


def test_recipients_are_admins_plus_the_last_creator_once_each() -> None:
    assert recipients([BOB, ALICE, CAROL], "carol") == [ALICE, BOB, CAROL]
    assert recipients([ALICE, BOB, CAROL], "alice") == [ALICE, BOB]  # a revoked non-creator: no
    assert recipients([ALICE], "dave") == [ALICE, Person("dave", None, admin=False)]


def test_a_milestone_plans_each_channel_for_each_recipient() -> None:
    planned = plan(KEY, 12, [ALICE, CAROL])
    assert [(r.channel, r.recipient, r.email) for r in planned] == [
        ("email", "alice", "alice@x.io"),
        ("email", "carol", "carol@x.io"),
        ("sidebar", "alice", "alice@x.io"),
        ("sidebar", "carol", "carol@x.io"),
    ]
    assert {r.due_at for r in planned} == {datetime(2026, 1, 31, 9, tzinfo=UTC)}
    assert len({r.reminder_id for r in planned}) == 4
    assert [r.reminder_id for r in plan(KEY, 12, [CAROL, ALICE])] == [
        r.reminder_id for r in planned
    ]
    assert plan(KEY, 7, [ALICE]) == []


def test_reminder_ids_are_deterministic_and_distinct() -> None:
    first = reminder_id("key_1", 5, "email", "alice")
    assert first == reminder_id("key_1", 5, "email", "alice")
    others = {
        reminder_id("key_2", 5, "email", "alice"),
        reminder_id("key_1", 6, "email", "alice"),
        reminder_id("key_1", 5, "sidebar", "alice"),
        reminder_id("key_1", 5, "email", "bob"),
    }
    assert first not in others
    assert len(others) == 4


@pytest.mark.parametrize(
    ("attempts", "seconds"), [(1, 30), (2, 60), (3, 120), (7, 1920), (8, 3600), (500, 3600)]
)
def test_retries_back_off_exponentially_up_to_a_cap(attempts: int, seconds: int) -> None:
    assert RetryPolicy(base=30, cap=3600).delay(attempts) == timedelta(seconds=seconds)


def test_only_a_permanent_failure_or_the_attempt_limit_gives_up() -> None:
    forever = RetryPolicy()
    assert not forever.gives_up(10_000, permanent=False)
    assert forever.gives_up(1, permanent=True)
    limited = RetryPolicy(max_attempts=3)
    assert [limited.gives_up(n, permanent=False) for n in (1, 2, 3)] == [False, False, True]


def test_the_email_says_what_and_when_and_never_more_than_the_hint() -> None:
    [reminder] = [r for r in plan(KEY, 5, [ALICE]) if r.recipient == "alice"]
    mail = message_from_bytes(email(reminder, sender="keyledger <kl@x.io>", now=T0).data)
    parts = {p.get_content_type(): p for p in mail.walk() if not p.is_multipart()}
    text, html = (
        bytes(parts[t].get_payload(decode=True)).decode() for t in ("text/plain", "text/html")
    )
    assert parts["text/plain"]["Content-Transfer-Encoding"] == "8bit"
    for fact in ("acme", "klk_…x7q2", "5 months", "2025-01-31", "2025-07-31", "key rotate"):
        assert fact in text
        assert fact in html
    assert mail["Message-ID"] == message_id(reminder.reminder_id)
    again = message_from_bytes(email(reminder, sender="x@x.io", now=T0).data)
    assert mail["Message-ID"] == again["Message-ID"]
    assert (mail["To"], mail["From"]) == ("alice@x.io", "keyledger <kl@x.io>")
    title, message = sidebar_text(reminder)
    assert "acme" in title
    assert "klk_…x7q2" in message


def test_the_advice_follows_the_rotation_date() -> None:
    assert "is today, 2025-07-31" in sidebar_text(plan(KEY, 6, [ALICE])[0])[1]
    assert "2025-07-31, has passed" in sidebar_text(plan(KEY, 12, [ALICE])[0])[1]


def test_an_unusable_address_is_refused_before_sending() -> None:
    [nobody] = plan(KEY, 5, [Person("carol", None, admin=False)])
    with pytest.raises(ValueError, match="no email address"):
        email(nobody, sender="kl@x.io", now=T0)
    [evil] = plan(KEY, 5, [Person("carol", "c@x.io\nBcc: all@x.io", admin=False)])
    with pytest.raises(ValueError, match="line break"):
        email(evil, sender="kl@x.io", now=T0)


def event(
    seq: int, kind: str, account: str = "acme", n: int | None = None, **payload: Any
) -> tuple[int, Any]:
    """Stream sequence `seq`, the account's `n`th event (`seq` unless given), chained to
    its `n - 1`th; the hashes stand for real ones."""
    n = seq if n is None else n
    raw = {
        "event_id": f"e{seq}",
        "stream_id": account,
        "sequence": n,
        "prev_hash": head(account, n - 1)[1],
        "hash": head(account, n)[1],
        "occurred_at": (T0 + timedelta(days=seq)).isoformat(),
        "actor": payload.pop("actor", "alice"),
        "payload": {"kind": kind, **payload},
    }
    return seq, raw


def head(account: str, n: int) -> tuple[int, str]:
    return n, GENESIS_HASH if n == 0 else f"{account}-{n}"


KEY_FIELDS = {"hint": "klk_…abcd", "fingerprint": "f" * 64}


def test_the_fold_keeps_the_active_key_and_resets_the_schedule_on_rotation() -> None:
    folded, applied = fold(
        [
            event(1, "AccountOpened", owner="alice", owner_email="a@x.io"),
            event(2, "KeyGenerated", key_id="k1", **KEY_FIELDS),
            event(3, "KeyRotated", old_key_id="k1", new_key_id="k2", actor="bob", **KEY_FIELDS),
            event(4, "KeyViewed", key_id="k2"),
        ],
        last=0,
        known={},
    )
    row = folded.keys["acme"]
    assert applied == 4
    assert row is not None
    assert (row["key_id"], row["last_creator"], row["next_months"]) == ("k2", "bob", 5)
    assert row["in_use_since"] == T0 + timedelta(days=3)
    assert folded.people[("acme", "alice")] == {"email": "a@x.io", "admin": True}


def test_the_fold_drops_deactivated_keys_and_tracks_admins() -> None:
    folded, _ = fold(
        [
            event(1, "KeyGenerated", key_id="k1", **KEY_FIELDS),
            event(2, "KeyDeactivated", key_id="k1"),
            event(3, "KeyDeactivated", account="other", n=8, key_id="k9"),
            event(4, "SuperAdminGranted", n=3, user="bob", email="b@x.io"),
            event(5, "SuperAdminRevoked", n=4, user="bob"),
            event(6, "SuperAdminRevoked", n=5, user="zed"),
        ],
        last=0,
        known={"other": head("other", 7)},
    )
    assert folded.keys == {"acme": None}
    assert folded.dropped == {"other": "k9"}
    assert folded.people[("acme", "bob")]["admin"] is False
    assert folded.revoked == {("acme", "zed")}


def test_the_fold_skips_what_it_applied_and_what_it_cannot_read(
    caplog: pytest.LogCaptureFixture,
) -> None:
    eventlog.forget_reported()  # each is logged once per process
    folded, applied = fold(
        [
            event(1, "KeyGenerated", key_id="old", **KEY_FIELDS),
            (2, None),  # not an event: the projector reported it already
            event(3, "SomethingNew", n=2, whatever=1),
            (4, {"stream_id": "acme", "payload": "KeyGenerated"}),
            event(5, "KeyGenerated", n=2, key_id="k1"),  # no hint: malformed
            event(6, "KeyViewed", n=2, key_id="k2"),  # none of those moved the head
            event(7, "KeyGenerated", n=3, key_id="k2", **KEY_FIELDS),
        ],
        last=1,
        known={"acme": head("acme", 1)},
    )
    assert applied == 2
    assert folded.keys["acme"] is not None
    assert folded.keys["acme"]["key_id"] == "k2"
    skipped = [r.getMessage() for r in caplog.records if "skipped" in r.getMessage()]
    assert [m.split("sequence ")[1].split(" ")[0] for m in skipped] == ["3", "4", "5"]
    assert not any("whatever" in m for m in skipped)  # nothing of the message itself
    assert folded.heads["acme"] == head("acme", 3)


def test_the_fold_applies_only_each_accounts_next_event(
    caplog: pytest.LogCaptureFixture,
) -> None:
    eventlog.forget_reported()
    _, generated = event(2, "KeyGenerated", key_id="k1", **KEY_FIELDS)
    folded, applied = fold(
        [
            event(10, "KeyDeactivated", n=3, key_id="k1"),
            (11, generated),  # an old event published again: behind the chain
            event(12, "KeyGenerated", n=5, key_id="k2", **KEY_FIELDS),  # ahead of it
            (13, event(13, "KeyGenerated", n=4, key_id="k3", **KEY_FIELDS)[1] | {"prev_hash": "x"}),
            event(14, "KeyGenerated", account="newco", n=2, key_id="k4", **KEY_FIELDS),
            event(15, "AccountOpened", account="not.an.id", owner="eve", owner_email="e@x.io"),
            event(16, "AccountOpened", account="other", n=1, owner="olga", owner_email="o@x.io"),
            event(17, "SuperAdminGranted", n=4, user="bob", email="b@x.io"),
        ],
        last=9,
        known={"acme": head("acme", 2)},
    )
    assert applied == 3
    assert folded.keys == {}  # no k2, k3 or k4
    assert folded.dropped == {"acme": "k1"}  # and k1 stays deactivated
    assert set(folded.people) == {("other", "olga"), ("acme", "bob")}
    assert folded.heads == {"acme": head("acme", 4), "other": head("other", 1)}
    assert folded.moved == {"acme", "other"}
    skipped = [r.getMessage() for r in caplog.records if "skipped" in r.getMessage()]
    assert [m.split("sequence ")[1].split(" ")[0] for m in skipped] == [
        "11", "12", "13", "14", "15",
    ]  # fmt: skip
    assert "sequence 2 does not continue the chain at 3" in skipped[0]
    assert "sequence 2 does not continue the chain at 0" in skipped[3]  # a first event: 1
    assert "its stream_id is not an account id" in skipped[4]


def test_an_event_the_keys_service_takes_moves_the_head_even_if_no_row_can_be_built(
    caplog: pytest.LogCaptureFixture,
) -> None:
    eventlog.forget_reported()
    _, viewed = event(2, "KeyViewed", n=2, key_id="k1")
    _, rotated = event(3, "KeyRotated", n=3, old_key_id="k1", new_key_id="k2", **KEY_FIELDS)
    folded, applied = fold(
        [
            (2, viewed | {"occurred_at": "9999-12-31T23:59:59-01:00"}),  # past year 9999 in UTC
            (3, rotated | {"occurred_at": "9999-12-31T23:59:59-01:00"}),
            event(4, "KeyViewed", n=4, key_id="k2"),
        ],
        last=1,
        known={"acme": head("acme", 1)},
    )
    # the keys service took all three (its time parses), so the chain goes on through them
    assert folded.heads == {"acme": head("acme", 4)}
    assert applied == 2
    assert folded.keys == {"acme": None}  # k1 was rotated out: no reminder about it
    skipped = [r.getMessage() for r in caplog.records if "skipped" in r.getMessage()]
    assert len(skipped) == 1
    assert "sequence 3 on keys.events.acme" in skipped[0]
    assert "(cannot be applied (OverflowError))" in skipped[0]
