"""One AsyncAPI 3.0 document for the whole system, its messages referencing the schema files."""

from __future__ import annotations

import re
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from keyledger.audit.catalogue import HEALTH, SERVED, STREAMS
from keyledger.audit.schemas import NOTES

_EVENT_HEADERS = {
    "type": "object",
    "properties": {
        "Nats-Msg-Id": {
            "type": "string",
            "description": "JetStream de-duplication id; each stream's scheme is in the "
            "channel's description and index.json",
        },
        "Nats-Expected-Last-Subject-Sequence": {
            "type": "string",
            "description": "the writer's last sequence on this subject: an append onto a "
            "state the writer no longer holds is refused, so a chain never forks "
            "(KEYS, NOTIFY and CHECKPOINTS; CALLS has no chain)",
        },
    },
}
_REQUEST_HEADERS = {
    "type": "object",
    "properties": {
        "Nats-Request-Info": {
            "type": "string",
            "description": "the frontend identity header the server adds: JSON with the "
            "account (and user) a request came from through a service import. "
            + NOTES["Nats-Request-Info"],
        }
    },
}


def _id(subject: str) -> str:
    return subject.replace(".", "_").replace("{", "").replace("}", "")


def _ref(file_stem: str) -> dict[str, str]:
    return {"$ref": f"./{file_stem}.schema.json"}


def _package_version() -> str:
    try:
        return version("keyledger")
    except PackageNotFoundError:  # a checkout run without installing
        return "0.0.0"


def document() -> dict[str, Any]:
    """The AsyncAPI document: channels, operations and messages of every subject."""
    channels: dict[str, Any] = {}
    operations: dict[str, Any] = {}
    messages: dict[str, Any] = {}
    for stream in STREAMS:
        cid = _id(stream.subject)
        messages[stream.schema] = {
            "name": stream.schema,
            "summary": f"one message on the {stream.name} stream",
            "headers": _EVENT_HEADERS,
            "payload": _ref(stream.schema),
        }
        channels[cid] = {
            "address": stream.subject,
            "description": f"{stream.name} stream, written by {stream.writer}; Nats-Msg-Id: "
            f"{stream.msg_id}" + (f"; stored as {stream.stored}" if stream.stored else ""),
            "parameters": _parameters(stream.subject),
            "messages": {"event": {"$ref": f"#/components/messages/{stream.schema}"}},
        }
        operations[f"append_{stream.name}"] = {
            "action": "send",
            "channel": {"$ref": f"#/channels/{cid}"},
            "messages": [{"$ref": f"#/channels/{cid}/messages/event"}],
        }
    for served in SERVED:
        cid, request = _id(served.subject), f"{served.request}Request"
        stem = "HealthRequest" if served.request == HEALTH else served.request
        messages.setdefault(
            request, {"name": request, "headers": _REQUEST_HEADERS, "payload": _ref(stem)}
        )
        reply = f"{served.result}Reply"
        messages.setdefault(reply, {"name": reply, "payload": _ref(reply)})
        channels[cid] = {
            "address": served.subject,
            "description": served.description,
            "messages": {"request": {"$ref": f"#/components/messages/{request}"}},
        }
        channels[f"{cid}_reply"] = {
            "address": None,  # the requester's inbox
            "description": f"replies to {served.subject}, on the requester's inbox",
            "messages": {"reply": {"$ref": f"#/components/messages/{reply}"}},
        }
        operations[f"answer_{cid}"] = {
            "action": "receive",
            "channel": {"$ref": f"#/channels/{cid}"},
            "messages": [{"$ref": f"#/channels/{cid}/messages/request"}],
            "reply": {
                "channel": {"$ref": f"#/channels/{cid}_reply"},
                "messages": [{"$ref": f"#/channels/{cid}_reply/messages/reply"}],
            },
        }
    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": "keyledger",
            "version": _package_version(),
            "description": "Every subject keyledger's services answer or write. Schemas: the "
            "*.schema.json files beside this document (JSON Schema 2020-12); index.json maps "
            "subjects, event types and error codes to them.",
        },
        "defaultContentType": "application/json",
        "servers": {
            "nats": {
                "host": "{host}:{port}",
                "protocol": "nats",
                "description": "the NATS server (or cluster member) the services use",
                "variables": {
                    "host": {"default": "127.0.0.1"},
                    "port": {"default": "4222"},
                },
            }
        },
        "channels": channels,
        "operations": operations,
        "components": {"messages": messages},
    }


def _parameters(address: str) -> dict[str, Any]:
    """The `{name}` parts of a channel address, described."""
    described = {
        "account_id": "the account the events belong to",
        "stream": "the checkpointed stream, lower case: keys or notify",
    }
    return {name: {"description": described[name]} for name in re.findall(r"{(\w+)}", address)}
