"""A JSON Schema for config.toml, generated from the settings declared in settings.py, so an
editor (Taplo, Even Better TOML) completes keys and flags mistakes as they are typed. Those
declarations stay the one place a setting is declared; `digest check` remains the judge (it
also checks what a schema cannot: that a time zone exists, that a feed's file is there)."""

from __future__ import annotations

import json

from digest.settings import SECTION_TITLES, SECTIONS, Setting
from digest.values import EMAIL_RE, ENV_RE

SCHEMA_ID = "https://digest.invalid/config.schema.json"  # a name, never fetched
DURATION = r"^\s*\d+(\.\d+)?\s*[smhdw]\s*$"
SIZE = r"^\s*\d+(\.\d+)?\s*([Bb]|[KkMmGg][Ii]?[Bb])?\s*$"


def _value(s: Setting) -> dict:
    k = s.kind
    number = {"minimum": s.minimum} if s.minimum is not None else {}
    if k == "int":
        return {"type": "integer", **number}
    if k == "float":
        return {"type": "number", **number}
    if k == "bool":
        return {"type": "boolean"}
    if k == "choice":
        return {"enum": list(s.choices)}
    if k == "time":
        return {"type": "string", "pattern": r"^\s*\d{1,2}:\d{2}\s*$"}
    if k == "duration":
        return {"anyOf": [{"type": "integer", "exclusiveMinimum": 0},
                          {"type": "string", "pattern": DURATION}]}
    if k == "retention":
        return {"anyOf": [{"type": "integer", "exclusiveMinimum": 0},
                          {"type": "string", "pattern": DURATION}, {"const": "never"}]}
    if k == "size":
        return {"anyOf": [{"type": "integer", "exclusiveMinimum": 0},
                          {"type": "string", "pattern": SIZE}]}
    if k == "url":
        return {"type": "string", "pattern": r"^https?://[^\s/]+"}
    if k == "email":
        pattern = EMAIL_RE.pattern if s.required else f"^$|{EMAIL_RE.pattern}"
        return {"type": "string", "pattern": pattern}
    if k == "env":
        return {"type": "string", "pattern": f"^$|{ENV_RE.pattern}"}
    if k == "list":
        return {"anyOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}]}
    if k == "weights":
        return {"anyOf": [{"type": "object", "additionalProperties": {"type": "number"}},
                          {"type": "array", "items": {"type": "string"}}]}
    if k == "sections":
        words = {"anyOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"},
                                                "minItems": 1}]}
        return {"type": "object", "additionalProperties": {"anyOf": [
            {"type": "object", "additionalProperties": False, "required": ["match"],
             "properties": {"match": words, "max": {"type": "integer", "minimum": 1}}},
            words]}}
    if k in ("str", "timezone", "path"):
        return {"type": "string"}
    raise AssertionError(f"unhandled setting kind {k}")


def _table(settings: tuple[Setting, ...], title: str) -> dict:
    props = {}
    for s in settings:
        prop = {"description": s.help, **_value(s)}
        if s.default not in (None, "", (), {}):
            prop["default"] = s.default
        props[s.name] = prop
    table = {"type": "object", "title": title, "additionalProperties": False,
             "properties": props}
    required = [s.name for s in settings if s.required]
    if required:
        table["required"] = required
    return table


def config_schema() -> dict:
    props = {}
    for section, settings in SECTIONS.items():
        table = _table(settings, SECTION_TITLES[section])
        if section == "feeds":  # exactly one of url and path
            table["oneOf"] = [{"required": ["url"]}, {"required": ["path"]}]
        if section == "users":  # an address, or chat channels instead
            table["anyOf"] = [{"required": ["email"]}, {"required": ["notify"]},
                              {"required": ["notify_env"]}]
        if section in ("feeds", "users"):
            props[section] = {"type": "object", "description": f"One {SECTION_TITLES[section]} "
                              "table per name.", "additionalProperties": table}
        else:
            props[section] = table
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", "$id": SCHEMA_ID,
            "title": "digest config.toml", "type": "object", "additionalProperties": False,
            "properties": props}


def schema_json() -> str:
    return json.dumps(config_schema(), indent=2, ensure_ascii=False) + "\n"
