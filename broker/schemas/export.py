"""JSON Schema export: one file per model into ``schemas/`` (``nbx schema export``).

File names: ``notice.json`` (the union), ``notice.<type>.json`` for each notice type and
``lifecycle.<kind>.json`` for each lifecycle message, and ``asyncapi.yaml``, the AsyncAPI 3
contract whose payloads reference them (:mod:`broker.schemas.asyncapi`). A test regenerates them
and fails when the committed files are out of date.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import BaseModel, TypeAdapter

from broker.schemas.asyncapi import FILE_NAME as ASYNCAPI_FILE
from broker.schemas.asyncapi import render_asyncapi
from broker.schemas.lifecycle import (
    Cancel,
    ErasureOrder,
    ReceiptBatch,
    Response,
    Suspend,
    UpdateInfo,
)
from broker.schemas.notices import NOTICE_MODELS, Notice
from broker.vocab import MessageKind

SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"
ID_BASE = "https://nbx.example/schemas/"

_LIFECYCLE: dict[MessageKind, type[BaseModel]] = {
    MessageKind.UPDATE: UpdateInfo,
    MessageKind.SUSPEND: Suspend,
    MessageKind.CANCEL: Cancel,
    MessageKind.ERASURE: ErasureOrder,
    MessageKind.RECEIPT: ReceiptBatch,
    MessageKind.RESPONSE: Response,  # the header's ``response`` body
}


def _document(name: str, schema: dict[str, Any]) -> str:
    doc = {"$schema": SCHEMA_DIALECT, "$id": f"{ID_BASE}{name}", **schema}
    return json.dumps(doc, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def render_schemas() -> dict[str, str]:
    """Every schema file: ``{file name: text}`` (JSON, and the AsyncAPI YAML), deterministic."""
    files = {"notice.json": _document("notice.json", TypeAdapter(Notice).json_schema())}
    for kind, notice_model in NOTICE_MODELS.items():
        name = f"notice.{kind.value}.json"
        files[name] = _document(name, notice_model.model_json_schema())
    for message_kind, model in _LIFECYCLE.items():
        name = f"lifecycle.{message_kind.value}.json"
        files[name] = _document(name, model.model_json_schema())
    files[ASYNCAPI_FILE] = render_asyncapi(files)
    return dict(sorted(files.items()))


def is_generated(name: str) -> bool:
    """Whether a file name in ``schemas/`` belongs to this export (other tools add other files)."""
    return name == ASYNCAPI_FILE or (
        name.endswith(".json") and name.startswith(("notice.", "lifecycle."))
    )


def export_schemas(out_dir: Path) -> list[Path]:
    """Write every schema into ``out_dir``, remove stale ones of ours, return the written paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    files = render_schemas()
    for stale in out_dir.iterdir():
        if is_generated(stale.name) and stale.name not in files:
            stale.unlink()
    written = []
    for name, text in files.items():
        path = out_dir / name
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written
