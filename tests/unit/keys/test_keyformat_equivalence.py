"""The regex-free well-formedness check accepts exactly what the regex-and-CRC check accepted."""

from __future__ import annotations

import random
import re
import zlib
from typing import TYPE_CHECKING

import pytest

from contracts import keyformat

if TYPE_CHECKING:
    from collections.abc import Iterator

_SHAPE = re.compile(r"klk_[0-9a-z]{39}").fullmatch
TAIL = keyformat.CHECK_LEN
# every ASCII character, and characters that str methods or int() treat specially: non-ASCII
# digits and letters, a lone surrogate, letters whose case mapping changes their length
ODD = "\u0663\uff10\u07c0\u00e9\u00c9\u0130\u0131\u017f\u212a\u00b5\u00a0\u2028\ud800\U0001d7ce"
CHARS = "".join(map(chr, range(128))) + ODD


def reference(key: str) -> bool:
    """What is_well_formed was before (the regex, then the CRC): the definition kept here."""
    if _SHAPE(key) is None:
        return False
    return int(key[-TAIL:], 36) == zlib.crc32(key[:-TAIL].encode())


def both(key: str) -> tuple[bool, bool]:
    return keyformat.is_well_formed(key), reference(key)


def sealed(head: str) -> str:
    """`head` with the checksum it needs, so only the shape can refuse it."""
    return head + keyformat._base36(zlib.crc32(head.encode("utf-8", "surrogatepass")), TAIL)


def single_changes(key: str) -> Iterator[str]:
    for i in range(len(key) + 1):
        for c in CHARS:
            yield key[:i] + c + key[i + 1 :]  # replaced (appended at the end)
            yield key[:i] + c + key[i:]  # inserted
        yield key[:i] + key[i + 1 :]  # deleted


@pytest.mark.parametrize("seed", range(4))
def test_every_single_character_change_is_judged_alike(seed: int) -> None:
    rng = random.Random(seed)
    key = sealed("klk_" + "".join(rng.choice(keyformat.ALPHABET) for _ in range(32)))
    assert both(key) == (True, True)
    for changed in single_changes(key):
        assert both(changed)[0] == both(changed)[1], ascii(changed)
    # the same with the checksum recomputed: the shape alone has to refuse
    for i in range(len(key) - TAIL):
        for c in CHARS:
            head = key[: len(key) - TAIL]
            changed = sealed(head[:i] + c + head[i + 1 :])
            new, old = both(changed)
            assert new == old, ascii(changed)


def test_checksums_spelled_so_that_only_int_accepts_them() -> None:
    """A checksum int(..., 36) reads right but the pattern refuses: "+", spaces, "_", upper
    case, non-ASCII digits; heads are searched whose checksum has a leading zero digit."""
    rng = random.Random(5)
    found = 0
    while found < 40:
        head = "klk_" + "".join(rng.choice(keyformat.ALPHABET) for _ in range(32))
        check = keyformat._base36(zlib.crc32(head.encode()), TAIL)
        if check[0] != "0":
            continue
        found += 1
        digits = check[1:]
        for spelled in (
            "+" + digits,
            " " + digits,
            digits + " ",
            "\t" + digits,
            digits[:3] + "_" + digits[3:] if len(digits) > 3 else "_" + digits,
            "0" + digits.upper(),
            "\u0660" + digits,  # ARABIC-INDIC DIGIT ZERO
            "0" + digits,
        ):
            key = head + spelled
            assert both(key)[0] == both(key)[1], ascii(key)
        assert both(head + check) == (True, True)


def test_random_strings_near_the_shape() -> None:
    rng = random.Random(11)
    pool = keyformat.ALPHABET + "KLM_-+ \u0663\u00e9\ud800"
    for _ in range(20_000):
        size = rng.choice((keyformat.KEY_LEN - 1, keyformat.KEY_LEN, keyformat.KEY_LEN + 1, 3))
        body = "".join(rng.choice(pool) for _ in range(size - 4))
        for key in ("klk_" + body, sealed("klk_" + body[: -TAIL or None]), body):
            assert both(key)[0] == both(key)[1], ascii(key)


def test_generated_keys_pass_both() -> None:
    for _ in range(2000):
        assert both(keyformat.generate()) == (True, True)


def test_the_bytes_form_agrees_with_the_text_form() -> None:
    key = keyformat.generate()
    assert keyformat.is_well_formed_ascii(key.encode())
    assert not keyformat.is_well_formed_ascii(key.upper().encode())
    assert not keyformat.is_well_formed_ascii(key[:-1].encode())
    assert not keyformat.is_well_formed_ascii((key[:5] + "é" + key[7:]).encode())
