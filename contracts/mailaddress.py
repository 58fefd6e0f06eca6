"""The one e-mail address rule: what a command may name is what the notifier can send to."""

from __future__ import annotations

import re
from email.headerregistry import Address
from email.utils import parseaddr

MAX_ADDRESS_OCTETS = 254  # RFC 5321's path limit (256) minus the angle brackets
MAX_LOCAL_OCTETS = 64
RULE = (
    "an e-mail address: local-part@domain, at most 254 bytes (UTF-8), local part at most 64. "
    "The local part is dot-separated atoms of letters, digits and !#$%&'*+/=?^_`{|}~- ; "
    "the domain is dot-separated labels of letters, digits and inner hyphens. "
    "Non-ASCII letters are allowed in both (sent with SMTPUTF8). Refused: quotes, "
    "backslashes, spaces, control characters, other punctuation, empty or doubled dots, "
    "an IP-literal domain."
)

# RFC 5321 Dot-string / sub-domain, widened by RFC 6531 to any printable non-ASCII character
_NON_ASCII = "\u00a1-\U0010ffff"
_ATOM = rf"[A-Za-z0-9!#$%&'*+/=?^_`{{|}}~{_NON_ASCII}-]+"
_LABEL = rf"[A-Za-z0-9{_NON_ASCII}](?:[A-Za-z0-9{_NON_ASCII}-]*[A-Za-z0-9{_NON_ASCII}])?"
_LOCAL = re.compile(rf"{_ATOM}(?:\.{_ATOM})*")
_DOMAIN = re.compile(rf"{_LABEL}(?:\.{_LABEL})*")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def address_problem(value: str) -> str | None:
    """Why `value` is not an address this system accepts, or None if it is one.

    Never quotes the value back: the reason goes into replies and logs.
    """
    if _CONTROL.search(value):
        return "the address contains a line break or control character"
    if any(ch.isspace() or not ch.isprintable() for ch in value):  # every script's spaces too
        return "the address contains a space or an invisible character"
    if '"' in value or "\\" in value:
        return "the address contains a quote or a backslash"
    if len(value.encode()) > MAX_ADDRESS_OCTETS:
        return f"the address is longer than {MAX_ADDRESS_OCTETS} bytes"
    local, at, domain = value.rpartition("@")
    if not at or not local or not domain:
        return "the address needs a local part, an @ and a domain"
    if len(local.encode()) > MAX_LOCAL_OCTETS:
        return f"the local part is longer than {MAX_LOCAL_OCTETS} bytes"
    if not _LOCAL.fullmatch(local):
        return "the local part must be dot-separated letters, digits or !#$%&'*+/=?^_`{|}~-"
    if not _DOMAIN.fullmatch(domain):
        return "the domain must be dot-separated labels of letters, digits and inner hyphens"
    # the e-mail library must agree: it writes the address unquoted and reads it back whole
    if str(Address(username=local, domain=domain)) != value or parseaddr(value) != ("", value):
        return "the address would not survive a mail header unchanged"
    return None


def check_email(value: str) -> str:
    """A pydantic after-validator: the address unchanged, or ValueError with the reason."""
    problem = address_problem(value)
    if problem is not None:
        raise ValueError(problem)
    return value


def needs_smtputf8(address: str) -> bool:
    """A non-ASCII address travels only over SMTPUTF8, in a header written as UTF-8."""
    return not address.isascii()
