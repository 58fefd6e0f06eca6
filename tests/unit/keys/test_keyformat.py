"""Key format: prefix, randomness, checksum, and what is refused before any lookup."""

from __future__ import annotations

import re

import pytest

from contracts import keyformat


def test_generated_keys_are_well_formed_unique_and_scannable() -> None:
    keys = {keyformat.generate() for _ in range(2000)}
    assert len(keys) == 2000
    for key in keys:
        assert keyformat.is_well_formed(key)
        assert re.fullmatch(keyformat.KEY_PATTERN, key)
        assert len(key) == keyformat.KEY_LEN


def test_any_single_character_change_fails_the_checksum() -> None:
    key = keyformat.generate()
    for i in range(len(keyformat.PREFIX), len(key)):
        for c in "0az9":
            if c != key[i]:
                assert not keyformat.is_well_formed(key[:i] + c + key[i + 1 :])


@pytest.mark.parametrize(
    "mangle",
    [
        lambda k: k.upper(),
        lambda k: k[:-1],
        lambda k: k + "0",
        lambda k: "xyz_" + k[4:],
        lambda k: k[:10] + "_" + k[11:],
        lambda k: k[:10] + "٣" + k[11:],  # a non-ASCII digit int() would accept
        lambda k: k[:-7] + k[-7:].upper(),
        lambda k: " " + k[1:],
        lambda k: "",
    ],
)
def test_malformed_keys_are_refused(mangle: object) -> None:
    assert not keyformat.is_well_formed(mangle(keyformat.generate()))  # type: ignore[operator]


def test_hint_and_fingerprint_do_not_reveal_the_key() -> None:
    key = keyformat.generate()
    assert keyformat.hint(key) == f"klk_…{key[-4:]}"
    assert len(keyformat.fingerprint(key)) == 64
    assert key not in keyformat.fingerprint(key)
