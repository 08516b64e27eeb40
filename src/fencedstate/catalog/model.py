"""Pydantic models of a catalog entry and of the generated index (the markdown is the source)."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, HttpUrl, field_validator

INDEX_FORMAT: Literal[1] = 1

Category = Literal[
    "race condition",
    "state desync",
    "message loss/duplication",
    "memory integrity",
    "liveness",
    "resource waste",
    "durability",
]

_SLUG = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")
_DOTTED = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)+$")
_NODE_ID = re.compile(
    r"^tests/[A-Za-z0-9_/]+\.py::[A-Za-z_][A-Za-z0-9_]*(?:::[A-Za-z_][A-Za-z0-9_]*)?$"
)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Mitigation(_Strict):
    """One way to prevent or contain the failure, with its cost."""

    name: str = Field(min_length=3)
    description: str = Field(min_length=10)
    tradeoffs: str = Field(min_length=10)
    code: str | None = Field(
        default=None, description="Dotted Python path to the implementation in this project."
    )
    repro: str | None = Field(
        default=None, description="pytest node id of the test showing naive vs mitigated."
    )

    @field_validator("code")
    @classmethod
    def _dotted(cls, v: str | None) -> str | None:
        if v is not None and not _DOTTED.match(v):
            raise ValueError(f"code must be a dotted Python path, got {v!r}")
        return v

    @field_validator("repro")
    @classmethod
    def _node(cls, v: str | None) -> str | None:
        if v is not None and not _NODE_ID.match(v):
            raise ValueError(f"repro must be a pytest node id 'tests/...py::test_x', got {v!r}")
        return v


class Mappings(_Strict):
    """Where the entry fits in published taxonomies (empty list: no good fit)."""

    mast: list[str] = Field(default_factory=list, description="MAST (arXiv 2503.13657) modes")
    owasp: list[str] = Field(default_factory=list, description="OWASP Agentic AI threats")
    taxdc: list[str] = Field(default_factory=list, description="TaxDC (ASPLOS 2016) classes")


class Reference(_Strict):
    """A real incident, issue thread, paper or post-mortem that was read before being cited."""

    title: str = Field(min_length=3)
    url: HttpUrl
    symptom: str = Field(min_length=10, description="One line: what went wrong there.")


class Entry(_Strict):
    """One coordination failure mode."""

    id: str
    name: str = Field(min_length=3)
    aliases: list[str] = Field(default_factory=list)
    symptoms: list[str] = Field(
        default_factory=list,
        description="How builders report it: error messages and symptom phrasings (for search).",
    )
    category: Category
    summary: str = Field(min_length=20)
    reproduction: str = Field(min_length=20)
    impact: str = Field(min_length=20)
    detection: str = Field(min_length=20)
    mitigations: list[Mitigation] = Field(min_length=1)
    related: list[str] = Field(default_factory=list)
    mappings: Mappings = Field(default_factory=Mappings)
    references: list[Reference] = Field(default_factory=list)
    incidents_note: str | None = Field(
        default=None, description="Set when no public incident was found: says so plainly."
    )

    @field_validator("id")
    @classmethod
    def _slug(cls, v: str) -> str:
        if not _SLUG.match(v):
            raise ValueError(f"id must be a lowercase slug like 'zombie-writer', got {v!r}")
        return v

    @property
    def mitigated(self) -> bool:
        """True when this project ships an executable mitigation for the entry."""
        return any(m.code for m in self.mitigations)


class Index(_Strict):
    """The generated index (`src/fencedstate/catalog/_data/index.json`)."""

    format: Literal[1] = INDEX_FORMAT
    generated_by: Literal["python -m fencedstate.catalog build"] = (
        "python -m fencedstate.catalog build"
    )
    entries: list[Entry]
