"""JSON with one value per object key: a duplicate key is refused, never "last wins"."""

from __future__ import annotations

import json
import re
from typing import Any

import orjson

_BACKSLASH, _QUOTE = ord("\\"), ord('"')
_NAME = re.compile(r"^[a-z][a-z0-9_]{0,31}$")  # field names; a key (43 chars) never fits


class DuplicateKey(ValueError):
    """An object names the same key twice; which value was meant is not ours to guess."""

    def __init__(self, key: str) -> None:
        # a field-like name helps the caller; anything else might be pasted data: not echoed
        shown = f' "{key}"' if _NAME.match(key) else ""
        super().__init__(f"body: duplicate key{shown} in a JSON object")
        self.key = key


def _unique(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    found = dict(pairs)
    if len(found) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise DuplicateKey(key)
            seen.add(key)
    return found


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


# built once: json.loads would build a decoder and sniff the encoding on every call
_DECODER = json.JSONDecoder(object_pairs_hook=_unique, parse_constant=_no_constant)


def loads(data: bytes | str) -> Any:
    """Parse UTF-8 JSON; ValueError when it is not JSON, DuplicateKey on a repeated key."""
    try:
        return _DECODER.decode(data.decode() if isinstance(data, bytes) else data)
    except RecursionError:
        # "[[[[..." nested past the interpreter's limit: bad input, not an internal failure
        raise ValueError("JSON nested too deeply") from None


def loads_flat(data: bytes) -> Any:
    """loads() at orjson's speed for the common request: one object of scalar values.

    Without a backslash every `"` in `data` delimits a string, so it holds 2 x (members +
    string values) quotes. Repeating a key adds a member the parsed object does not have
    (and keeps a subset of the values), so the count matches the object only when no key
    repeats. Anything else (escapes, nesting, not an object, a mismatch) takes loads().
    """
    try:
        value = orjson.loads(data)
    except orjson.JSONDecodeError:
        return loads(data)  # the same ValueError, with the stricter parser's message
    # `int in bytes` is a memchr; `b"\\" in data` costs several times more per request
    if type(value) is dict and _BACKSLASH not in data:
        quoted = len(value)  # every key is a string
        for item in value.values():
            kind = type(item)
            if kind is str:
                quoted += 1
            elif kind is dict or kind is list:
                return loads(data)
        if data.count(_QUOTE) == 2 * quoted:
            return value
    return loads(data)


def check_unique_keys(data: bytes) -> None:
    """Raise DuplicateKey if any object in `data` repeats a key; anything else that is
    wrong with `data` is left to the real parser, whose message names it better."""
    try:
        loads(data)
    except DuplicateKey:
        raise
    except ValueError:
        return
