"""How the engine guard reads a JSON body: as Docker reads it, checked against an allowlist
(the allowlists themselves are in engine_bodies.py).

Docker decodes bodies with Go's ``encoding/json``: a key matches a field whatever its case (and
with Unicode folding: ``ſ`` is ``s``, ``K``, the Kelvin sign, is ``k``), the last of duplicate
keys wins, ``null`` leaves a field at its zero value, unknown keys are ignored. So here: keys are
plain ASCII, matched case-insensitively to their canonical name; duplicates (in any case) are
refused; unknown keys are refused; every value is checked for its type and its allowed values.
What comes out is a canonical value (nulls and zero values dropped) that the guard serialises
itself and forwards instead of the client's bytes.

A ``Check`` takes a value and where it is (``HostConfig.PortBindings``), and returns the
canonical value, or ``OMIT`` (leave the field out: it is null or at its zero value), or raises
Refused with a message that says what is refused and what is allowed.
"""

from __future__ import annotations

import ipaddress
import json
import re
from collections.abc import Callable, Mapping
from typing import Any

from .engine_http import Malformed

INT64 = 2**63 - 1
OMIT: Any = object()  # a field left out of the canonical body


class Refused(Exception):
    """A request the guard does not forward. ``status``: 403 (not allowed) or 404 (no such)."""

    def __init__(self, message: str, status: int = 403) -> None:
        super().__init__(message)
        self.status = status


Check = Callable[[Any, str], Any]


def at(where: str, key: str) -> str:
    return f"{where}.{key}" if where else key


def _refuse(where: str, why: str) -> Refused:
    return Refused(f"{where or 'the body'}: {why}")


# --- decoding -------------------------------------------------------------------------------


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    seen: dict[str, str] = {}
    for key, _ in pairs:
        folded = key.casefold()  # covers Go's folding (ſ -> s, K -> k) and more
        if folded in seen:
            raise Malformed(
                f"the key {key!r} appears twice in one object (also as {seen[folded]!r}); Docker "
                "would take the last, matched case-insensitively: give each key once"
            )
        seen[folded] = key
    return dict(pairs)


def _no_constant(name: str) -> Any:
    raise Malformed(f"{name} is not JSON")


def decode_json(body: bytes, what: str) -> Any:
    """``body`` as JSON, refusing duplicate keys (in any case), NaN/Infinity and non-UTF-8."""
    try:
        text = body.decode("utf-8")
        return json.loads(text, object_pairs_hook=_unique_keys, parse_constant=_no_constant)
    except UnicodeDecodeError:
        raise Malformed(f"{what} is not UTF-8") from None
    except RecursionError:
        raise Malformed(f"{what} is nested too deeply") from None
    except ValueError as error:
        if isinstance(error, Malformed):  # pragma: no cover - Malformed is no ValueError
            raise
        raise Malformed(f"{what} is not JSON: {error}") from None


def encode_json(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=True, allow_nan=False).encode()


# --- checks ---------------------------------------------------------------------------------


class Struct:
    """A Go struct: keys matched case-insensitively (ASCII only), unknown keys refused."""

    def __init__(self, fields: Mapping[str, Check]) -> None:
        self.fields = dict(fields)
        self._by_folded = {name.lower(): name for name in fields}

    def settable(self) -> list[str]:
        return [n for n, c in self.fields.items() if not isinstance(c, Zero)]

    def __call__(self, value: Any, where: str) -> Any:
        if value is None:
            return OMIT
        if not isinstance(value, dict):
            raise _refuse(where, "must be a JSON object")
        given: dict[str, Any] = {}
        for key, item in value.items():
            if not key.isascii():
                raise _refuse(
                    at(where, key),
                    "keys are plain ASCII here (Docker's decoder would fold this one onto "
                    "another field's name, e.g. ſ onto s, K onto k)",
                )
            name = self._by_folded.get(key.lower())
            if name is None:
                allowed = ", ".join(self.settable()) or "none"
                raise _refuse(at(where, key), f"not a field the guard allows; allowed: {allowed}")
            if name in given:
                raise _refuse(at(where, name), "given twice (in another case)")
            given[name] = item
        out: dict[str, Any] = {}
        for name, check in self.fields.items():  # in the schema's order: the first refusal
            if name in given:  # is the one that matters most (HostConfig before Volumes)
                checked = check(given[name], at(where, name))
                if checked is not OMIT:
                    out[name] = checked
        return out


class Zero:
    """A field that reaches the host: only its zero value (null, false, 0, "", [], {})."""

    def __init__(self, why: str, allow_empty: bool = True) -> None:
        self.why = why
        self.allow_empty = allow_empty  # MaskedPaths: [] unmasks everything, only null is zero

    def __call__(self, value: Any, where: str) -> Any:
        empty = value in (False, 0, "", [], {}) and type(value) in (bool, int, str, list, dict)
        if value is None or (self.allow_empty and empty):
            return OMIT
        shown = "null" if not self.allow_empty else "absent, null or empty"
        raise _refuse(where, f"{self.why}; allowed: {shown}")


def boolean(value: Any, where: str) -> Any:
    if value is None:
        return OMIT
    if type(value) is not bool:
        raise _refuse(where, "must be true or false (not a string or a number)")
    return value


def false_only(why: str) -> Check:
    def check(value: Any, where: str) -> Any:
        if value is None or value is False:
            return OMIT
        raise _refuse(where, f"{why}; allowed: false")

    return check


def integer(low: int, high: int = INT64) -> Check:
    def check(value: Any, where: str) -> Any:
        if value is None:
            return OMIT
        if type(value) is not int:
            raise _refuse(where, f"must be a whole number from {low} to {high}, not {value!r}")
        if not low <= value <= high:
            raise _refuse(where, f"{value} is out of range; allowed: {low} to {high}")
        return value

    return check


def text(pattern: str = r"[\x20-\x7e]*", why: str = "", *choices: str) -> Check:
    """A string matching ``pattern`` (printable ASCII by default) or one of ``choices``."""
    compiled = re.compile(pattern)

    def check(value: Any, where: str) -> Any:
        if value is None:
            return OMIT
        if not isinstance(value, str):
            raise _refuse(where, f"must be a string, not {value!r}")
        if choices and value not in choices:
            shown = ", ".join(repr(c) for c in choices)
            raise _refuse(where, f"{value!r} {why or 'is not allowed'}; allowed: {shown}")
        if not compiled.fullmatch(value):
            raise _refuse(where, f"{value[:80]!r} {why or 'has characters that are not allowed'}")
        return value

    return check


def one_of(why: str, *choices: str) -> Check:
    return text(r"[\s\S]*", why, *choices)


ANY_TEXT = text(r"[^\x00]*", "contains a NUL character")


def strings(item: Check = ANY_TEXT, most: int = 4096) -> Check:
    def check(value: Any, where: str) -> Any:
        if value is None:
            return OMIT
        if not isinstance(value, list):
            raise _refuse(where, "must be a list of strings")
        if len(value) > most:
            raise _refuse(where, f"more than {most} items")
        return [item(v, f"{where}[{i}]") for i, v in enumerate(value)]

    return check


def command(value: Any, where: str) -> Any:
    """Docker's StrSlice: a list of strings, or one string (kept a list here)."""
    return strings()([value] if isinstance(value, str) else value, where)


def mapping(key: Check, item: Check, most: int = 1024) -> Check:
    """A Go map: keys are exact (no case folding), values each checked."""

    def check(value: Any, where: str) -> Any:
        if value is None:
            return OMIT
        if not isinstance(value, dict):
            raise _refuse(where, "must be a JSON object")
        if len(value) > most:
            raise _refuse(where, f"more than {most} entries")
        out = {}
        for k, v in value.items():
            key(k, f"{where}[{k!r}]")
            checked = item(v, f"{where}[{k}]")
            out[k] = None if checked is OMIT else checked
        return out

    return check


def checked_then_dropped(check: Check) -> Check:
    """Check a value that may only restate the default, then leave it out."""

    def dropped(value: Any, where: str) -> Any:
        check(value, where)
        return OMIT

    return dropped


def empty_object(value: Any, where: str) -> Any:
    if value is None or value == {}:
        return {}
    raise _refuse(where, "must be {} (an empty object)")


# --- ports ----------------------------------------------------------------------------------

PORT_KEY = text(r"[0-9]{1,5}(/(tcp|udp|sctp))?", "is not a port such as 80/tcp")


def host_ip(value: Any, where: str) -> Any:
    if value is None or value == "":
        return OMIT
    if isinstance(value, str):
        try:
            address = ipaddress.ip_address(value)
        except ValueError:
            pass
        else:
            if address.is_loopback or address.is_unspecified:
                return str(address)
    raise _refuse(
        where,
        f"{value!r}: ports are published on loopback (127.0.0.1, ::1) or every address "
        "(0.0.0.0, ::, or empty) only",
    )


def host_port(value: Any, where: str) -> Any:
    if value is None or value == "":
        return OMIT
    if isinstance(value, str) and value.isdigit() and 1024 <= int(value) <= 65535:
        return str(int(value))
    raise _refuse(
        where,
        f"{value!r}: a host port is a string from 1024 to 65535, or empty for any free port "
        "(ports below 1024 are the host's services)",
    )


BINDING = Struct({"HostIp": host_ip, "HostPort": host_port})


def port_bindings(value: Any, where: str) -> Any:
    if value is None:
        return OMIT
    if not isinstance(value, dict):
        raise _refuse(where, "must be a JSON object of port: [bindings]")
    out = {}
    for key, bindings in value.items():
        PORT_KEY(key, f"{where}[{key!r}]")
        listed = bindings if isinstance(bindings, list) else None
        if listed is None and bindings is not None:
            raise _refuse(f"{where}[{key}]", "must be a list of {HostIp, HostPort}")
        checked = [BINDING(b, f"{where}[{key}][{i}]") for i, b in enumerate(listed or [])]
        out[key] = [{} if b is OMIT else b for b in checked]
    return out
