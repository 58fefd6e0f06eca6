"""Which stored messages are events: the envelope check every reader of KEYS and NOTIFY applies."""

from __future__ import annotations

from typing import Any

# What every reader needs of an envelope, in the order a problem is reported; `version`
# has a default and `via` is optional, so neither is required
_FIELDS: tuple[tuple[str, type], ...] = (
    ("stream_id", str),
    ("sequence", int),
    ("prev_hash", str),
    ("hash", str),
    ("event_id", str),
    ("type", str),
    ("occurred_at", str),
    ("actor", str),
    ("correlation_id", str),
    ("causation_id", str),
    ("payload", dict),
)


def account_of(subject: str) -> str:
    """The aggregate a subject names: `keys.events.acme` and `notify.events.acme` name acme.

    Whatever follows the first `.events.`, dots included: no account id has a dot, so a
    message on `keys.events.a.b` never counts as an event of any account.
    """
    return subject.partition(".events.")[2]


def envelope_problem(raw: Any, subject: str | None = None) -> str | None:
    """Why a parsed message is not an event of the account its subject names; None if it is.

    The reason never quotes the message: a foreign message may hold anything, a secret too.
    """
    # the common case in one expression: every replay runs it once per event; subscripts
    # (a missing key raises) cost half of what dict.get's method calls do
    if type(raw) is dict:
        try:
            if (
                type(raw["sequence"]) is int
                and raw["sequence"] >= 1
                and type(raw["stream_id"]) is str
                and type(raw["prev_hash"]) is str
                and type(raw["hash"]) is str
                and type(raw["event_id"]) is str
                and type(raw["type"]) is str
                and type(raw["occurred_at"]) is str
                and type(raw["actor"]) is str
                and type(raw["correlation_id"]) is str
                and type(raw["causation_id"]) is str
                and type(raw["payload"]) is dict
                and (subject is None or raw["stream_id"] == account_of(subject))
            ):
                return None
        except KeyError:
            pass
    return _why(raw, subject)


def chain_problem(raw: dict[str, Any], last_sequence: int, last_hash: str) -> str | None:
    """Why an envelope is not the next event after an account's last one; None if it is.

    The next event has `sequence` one more and `prev_hash` the hash of the last one; before
    an account's first event the last one is (0, the genesis hash). Only the service appends,
    always onto the state it holds, so a real event always continues its chain; a copy of an
    older event published again does not, and every reader that keeps state skips it rather
    than roll the account back (and revive a key it no longer has).
    """
    if raw["sequence"] != last_sequence + 1 or raw["prev_hash"] != last_hash:
        return f"sequence {raw['sequence']} does not continue the chain at {last_sequence}"
    return None


def _why(raw: Any, subject: str | None) -> str:
    if not isinstance(raw, dict):
        return "not a JSON object"
    for name, kind in _FIELDS:
        value = raw.get(name)
        # bool is an int subclass, and True is no sequence number
        if not isinstance(value, kind) or isinstance(value, bool):
            return f"field {name!r} missing or not {_KIND_NAMES.get(kind, kind.__name__)}"
    if raw["sequence"] < 1:
        return "field 'sequence' is not a positive integer"
    if subject is not None and raw["stream_id"] != account_of(subject):
        return "its stream_id is not the account its subject names"
    return "not an envelope"  # a subclass of str or dict, which no JSON parser returns


_KIND_NAMES = {dict: "an object", str: "str", int: "int"}
