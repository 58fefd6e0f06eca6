"""JSON Schema 2020-12 files for every message on NATS, valid for strict validators, + index."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from contracts.envelope import Via
from contracts.keys import ACCOUNT_ID
from contracts.replies import ErrorBody
from keyledger.audit.catalogue import ERROR_CODES, HEALTH, MODELS, SERVED, STREAMS, Stream

if TYPE_CHECKING:
    from pathlib import Path

    from pydantic import BaseModel

DIALECT = "https://json-schema.org/draft/2020-12/schema"
BASE = "https://keyledger.invalid/schemas/"  # an identifier only: nothing is fetched from it
HEX32 = "[0-9a-f]{32}"
UUID = "[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
SHA256 = {"type": "string", "pattern": "^[0-9a-f]{64}$"}
NOTES = {
    "event_id": "written now: 32 lowercase hex digits on every stream; stored history also "
    "holds hyphenated UUIDs (NOTIFY before the one form)",
    "occurred_at": "RFC 3339 in UTC; written now with `Z`, stored history also ends in "
    "`+00:00`. The hash chain covers the text exactly as stored",
    "payload.kind": "the payload's own name of its event type: always equal to the envelope's "
    "`type` (kept so a payload read alone still says what it is)",
    "correlation_id": "ties together everything one request caused: the command's "
    "correlation_id (else its command_id) on KEYS, the key id on NOTIFY",
    "causation_id": "what caused this event: the command_id on KEYS, the KEYS event_id that "
    "made the reminder due on NOTIFY",
    "pid": "health replies carry the answering process's id: replicas answer in one queue "
    "group, and the pid tells them apart",
    "Nats-Request-Info": "header nats-server adds to a request that came through a service "
    "import: the frontend account (and user) that sent it, recorded as `via`",
}
HEALTH_SCHEMA = {
    "type": "object",
    "description": "service name, process id and stream position; more fields may follow",
    "properties": {
        "service": {"type": "string"},
        "pid": {"type": "integer", "description": NOTES["pid"]},
        "stream_seq": {"type": "integer", "description": "last stream sequence applied"},
    },
    "required": ["service", "pid"],
}


def _strict(node: Any) -> Any:
    """pydantic's schema without OpenAPI's `discriminator`; a `kind` const is required, as
    every writer writes it, so each variant of a union is told apart by it alone."""
    if isinstance(node, list):
        return [_strict(item) for item in node]
    if not isinstance(node, dict):
        return node
    out = {k: _strict(v) for k, v in node.items() if k != "discriminator"}
    if "const" in out.get("properties", {}).get("kind", {}):
        out["required"] = sorted({*out.get("required", []), "kind"})
    return out


def _into(defs: dict[str, Any], name: str, model: type[BaseModel], mode: str) -> dict[str, str]:
    """Put a model's schema (and the ones it uses) in `defs`; returns a $ref to it."""
    schema = _strict(model.model_json_schema(mode=mode))  # type: ignore[arg-type]
    defs.update(schema.pop("$defs", {}))
    schema["title"] = name
    defs[name] = schema
    return {"$ref": f"#/$defs/{name}"}


def _document(name: str, description: str, body: dict[str, Any]) -> dict[str, Any]:
    return {
        "$schema": DIALECT,
        "$id": f"{BASE}{name}.schema.json",
        "title": name,
        "description": description,
        **body,
    }


def envelope(stream: Stream) -> dict[str, Any]:
    """A stream's envelope: the chained fields, and per event type its payload (`type` const)."""
    defs: dict[str, Any] = {}
    variants = [
        {
            "type": "object",
            "properties": {
                "type": {"const": m.__name__},
                "payload": _into(defs, m.__name__, m, "serialization"),
            },
        }
        for m in stream.events
    ]
    nullable_via = {"anyOf": [_into(defs, "Via", Via, "serialization"), {"type": "null"}]}
    properties = {
        "event_id": {
            "type": "string",
            "pattern": f"^({HEX32}|{UUID})$",
            "description": NOTES["event_id"],
        },
        "type": {"type": "string", "description": "the event type; equals payload.kind"},
        "version": {"type": "integer", "minimum": 1},
        "stream_id": {"type": "string", "pattern": ACCOUNT_ID, "description": "the account"},
        "sequence": {"type": "integer", "minimum": 1, "description": "per account, no gaps"},
        "occurred_at": {
            "type": "string",
            "format": "date-time",
            "pattern": "(Z|\\+00:00)$",
            "description": NOTES["occurred_at"],
        },
        "actor": {"type": "string"},
        "correlation_id": {"type": "string", "description": NOTES["correlation_id"]},
        "causation_id": {"type": "string", "description": NOTES["causation_id"]},
        "prev_hash": {**SHA256, "description": "the account's previous hash; 64 zeros first"},
        "hash": {**SHA256, "description": "sha-256 of the canonical JSON without `hash`"},
        "payload": {"type": "object", "description": NOTES["payload.kind"]},
        "via": {**nullable_via, "description": NOTES["Nats-Request-Info"]},
        "request_digest": {"anyOf": [SHA256, {"type": "null"}]},
    }
    required = [k for k in properties if k not in ("via", "request_digest")]
    body = {
        "type": "object",
        "properties": properties,
        "required": required,
        "oneOf": variants,
        "$defs": defs,
    }
    description = (
        f"One event on {stream.name} ({stream.subject}), written by {stream.writer}; "
        f"Nats-Msg-Id: {stream.msg_id}"
    )
    return _document(stream.schema, description, body)


def error_body() -> dict[str, Any]:
    schema: dict[str, Any] = _strict(ErrorBody.model_json_schema())
    schema["properties"]["code"]["enum"] = [str(code) for code in ERROR_CODES]
    schema["properties"]["code"]["description"] = "see error_codes in index.json"
    return schema


def reply(result: str) -> dict[str, Any]:
    """`{"ok": true, "result": <result>}` or `{"ok": false, "error": {code, message}}`."""
    defs: dict[str, Any] = {"ErrorBody": error_body()}
    ref = {"$ref": "#/$defs/Health"} if result == HEALTH else None
    if result == HEALTH:
        defs[HEALTH] = HEALTH_SCHEMA
    else:
        ref = _into(defs, result, MODELS[result], "serialization")
    body = {
        "oneOf": [
            {
                "type": "object",
                "required": ["ok", "result"],
                "properties": {"ok": {"const": True}, "result": ref},
            },
            {
                "type": "object",
                "required": ["ok", "error"],
                "properties": {"ok": {"const": False}, "error": {"$ref": "#/$defs/ErrorBody"}},
            },
        ],
        "$defs": defs,
    }
    return _document(f"{result}Reply", f"the reply carrying {result} or a refusal", body)


def request(name: str) -> dict[str, Any]:
    if name == HEALTH:
        any_object = {"type": "object", "description": "any JSON object, or an empty message"}
        return _document("HealthRequest", "a health probe", any_object)
    defs: dict[str, Any] = {}
    _into(defs, name, MODELS[name], "validation")
    schema = defs.pop(name)
    if name in ("Sweep", "RemindersQuery"):  # a date alone means midnight UTC
        dates = [{"type": "string", "format": f} for f in ("date-time", "date")]
        schema["properties"]["as_of"] = {"anyOf": [*dates, {"type": "null"}]}
    return _document(name, schema.pop("description", name), {**schema, "$defs": defs})


def documents() -> dict[str, dict[str, Any]]:
    """Every schema document by file name."""
    docs: dict[str, dict[str, Any]] = {}
    for stream in STREAMS:
        for model in stream.events:
            defs: dict[str, Any] = {}
            _into(defs, model.__name__, model, "serialization")
            schema = defs.pop(model.__name__)
            body = {**schema, "$defs": defs}
            docs[model.__name__] = _document(model.__name__, f"payload on {stream.name}", body)
        if stream.schema not in {m.__name__ for m in stream.events}:  # CALLS, CHECKPOINTS: bare
            docs[stream.schema] = envelope(stream)
    for served in SERVED:
        docs[served.request if served.request != HEALTH else "HealthRequest"] = request(
            served.request
        )
        docs[f"{served.result}Reply"] = reply(served.result)
    for name in {s.result for s in SERVED} - {HEALTH}:
        docs[name] = result_alone(name)
    docs["ErrorBody"] = _document("ErrorBody", "why a request was refused", error_body())
    return {f"{name}.schema.json": doc for name, doc in docs.items()}


def result_alone(name: str) -> dict[str, Any]:
    """A result model alone (what `result` holds in a success reply)."""
    defs: dict[str, Any] = {}
    _into(defs, name, MODELS[name], "serialization")
    schema = defs.pop(name)
    return _document(name, schema.pop("description", name), {**schema, "$defs": defs})


def index() -> dict[str, Any]:
    subjects: dict[str, Any] = {
        s.subject.replace("{account_id}", "*"): {
            "kind": "event",
            "stream": s.name,
            "schema": f"{s.schema}.schema.json",
            "nats_msg_id": s.msg_id,
            "description": f"events appended by {s.writer}",
            **({"stored_as": s.stored.replace("{account_id}", "*")} if s.stored else {}),
        }
        for s in STREAMS
    }
    for s in SERVED:
        request_file = "HealthRequest" if s.request == HEALTH else s.request
        subjects[s.subject] = {
            "kind": "request",
            "description": s.description,
            "request": f"{request_file}.schema.json",
            "reply": f"{s.result}Reply.schema.json",
        }
    event_types = {
        m.__name__: {
            "stream": s.name,
            "envelope": f"{s.schema}.schema.json",
            "payload": f"{m.__name__}.schema.json",
        }
        for s in STREAMS
        for m in s.events
    }
    return {
        "dialect": DIALECT,
        "subjects": subjects,
        "event_types": event_types,
        "error_codes": {str(k): v for k, v in ERROR_CODES.items()},
        "notes": NOTES,
        "schemas": sorted(documents()),
    }


def export_schemas(folder: Path) -> dict[str, Any]:
    """Write every `<Name>.schema.json`, index.json and asyncapi.json; returns the index."""
    from keyledger.audit.asyncapi import document

    folder.mkdir(parents=True, exist_ok=True)
    for file_name, doc in documents().items():
        _write(folder / file_name, doc)
    found = index()
    _write(folder / "index.json", found)
    _write(folder / "asyncapi.json", document())
    return found


def _write(path: Path, doc: dict[str, Any]) -> None:
    path.write_text(json.dumps(doc, indent=2, sort_keys=True, ensure_ascii=False) + "\n")
