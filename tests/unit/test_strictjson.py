"""strictjson: one value per object key, at any depth; other errors are plain ValueErrors."""

from __future__ import annotations

import pytest

from contracts import strictjson
from contracts.strictjson import DuplicateKey, check_unique_keys


@pytest.mark.parametrize(
    ("body", "key"),
    [
        (b'{"a": 1, "a": 1}', "a"),
        (b'{"a": {"b": 1, "b": 2}}', "b"),
        (b'[{"x": 1}, {"y": 1, "y": 2}]', "y"),
        (b'{"\\u0061": 1, "a": 2}', "a"),  # the same key, escaped
    ],
)
def test_a_repeated_key_is_refused_at_any_depth(body: bytes, key: str) -> None:
    with pytest.raises(DuplicateKey) as caught:
        strictjson.loads(body)
    assert caught.value.key == key
    with pytest.raises(DuplicateKey):
        check_unique_keys(body)


def test_a_key_that_is_not_a_field_name_is_not_echoed() -> None:
    secret = "klk_" + "x" * 39
    with pytest.raises(DuplicateKey) as caught:
        strictjson.loads(f'{{"{secret}": 1, "{secret}": 2}}')
    assert secret not in str(caught.value)
    assert str(caught.value) == "body: duplicate key in a JSON object"


@pytest.mark.parametrize("body", [b"not json", b"NaN", b'{"a": Infinity}', b"\xff", b"[" * 100_000])
def test_anything_else_wrong_is_left_to_the_real_parser(body: bytes) -> None:
    check_unique_keys(body)  # no error: pydantic will name the problem
    with pytest.raises(ValueError):  # noqa: PT011 - any ValueError: not JSON
        strictjson.loads(body)


def test_distinct_keys_parse_as_usual() -> None:
    assert strictjson.loads(b'{"a": [1, {"a": 2}], "b": null}') == {"a": [1, {"a": 2}], "b": None}


@pytest.mark.parametrize(
    "body",
    [
        b'{"a": "x", "a": "y"}',
        b'{"a": "x", "a": 1}',
        b'{"a": 1, "a": "x"}',
        b'{"a": 1, "a": 2}',
        b'{"a" : "x", "a":"y"}',
        b'{"a": null, "a": true}',
        b'{"fingerprint": "00", "key": "k", "fingerprint": "11"}',
        b'{"a": "x", "\\u0061": "y"}',  # escaped: the slow path
        b'{"a": {"b": 1, "b": 2}}',  # nested: the slow path
        b'{"a": "q:\\"", "a": "y"}',
    ],
)
def test_the_fast_path_refuses_every_repeated_key(body: bytes) -> None:
    with pytest.raises(DuplicateKey):
        strictjson.loads_flat(body)


@pytest.mark.parametrize(
    "body",
    [
        b'{"fingerprint": "' + b"0" * 64 + b'"}',
        b'{"key": "klk_abc"}',
        b'{"a": "x:y", "b": 1, "c": null, "d": ""}',
        b'{"a": "\\"", "b": "z"}',
        b'{"a": [1, 2], "b": {"c": "d"}}',
        b"[1, 2]",
        b'"text"',
        b"{}",
    ],
)
def test_the_fast_path_reads_what_loads_reads(body: bytes) -> None:
    assert strictjson.loads_flat(body) == strictjson.loads(body)


@pytest.mark.parametrize("body", [b"not json", b"NaN", b"\xff", b'{"a": 1,}'])
def test_the_fast_path_refuses_what_is_not_json(body: bytes) -> None:
    with pytest.raises(ValueError):  # noqa: PT011 - any ValueError: not JSON
        strictjson.loads_flat(body)
