"""Where a benchmark script writes its record: ``<stem>.json`` (meta and rows) and
``<stem>.md`` (a title, the meta and the tables), in the results folder."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path


def stamp() -> str:
    """UTC minute of the run, the suffix of the record's files."""
    return dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M")


def free_stem(out: Path, stem: str) -> Path:
    """``out/stem``, or ``out/stem-2`` (then ``-3``, ...) where a record of that name exists:
    two runs that write in the same minute do not overwrite each other."""
    out.mkdir(parents=True, exist_ok=True)
    base, n = out / stem, 1
    while base.with_suffix(".json").exists():
        n += 1
        base = out / f"{stem}-{n}"
    return base


def write_record(out: Path, stem: str, title: str, meta: dict, rows: list, body: str) -> str:
    """Write ``out/stem.json`` and ``out/stem.md`` (see :func:`free_stem`); returns the
    Markdown text."""
    base = free_stem(out, stem)
    base.with_suffix(".json").write_text(json.dumps({"meta": meta, "rows": rows}, indent=1))
    text = f"# {title}\n\n```\n{json.dumps(meta)}\n```\n\n{body.rstrip()}\n"
    base.with_suffix(".md").write_text(text)
    return text
