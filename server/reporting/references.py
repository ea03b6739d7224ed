"""Published figures (lowdino.eval.references) as rows for the API: never measured here, always labelled."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any


def load_reference_rows() -> list[dict[str, Any]]:
    from lowdino.eval.references import load_references

    return [{**asdict(row), "label": row.label} for row in load_references()]
