"""Per-upstream curation: include/exclude globs, renames and description overrides."""

from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass, field

from ..config import ToolCuration


@dataclass(frozen=True, slots=True)
class Curator:
    include: re.Pattern[str] | None
    exclude: re.Pattern[str] | None
    rename: dict[str, str] = field(default_factory=dict)
    descriptions: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_config(cls, curation: ToolCuration) -> Curator:
        return cls(
            include=None if curation.include == ["*"] else _compile(curation.include),
            exclude=_compile(curation.exclude) if curation.exclude else None,
            rename=dict(curation.rename),
            descriptions=dict(curation.descriptions),
        )

    def admits(self, name: str) -> bool:
        if self.include is not None and not self.include.match(name):
            return False
        return not (self.exclude is not None and self.exclude.match(name))


def _compile(patterns: list[str]) -> re.Pattern[str]:
    # One precompiled alternation: a single regex match per name, however many globs.
    return re.compile("|".join(f"(?:{fnmatch.translate(p)})" for p in patterns) or "(?!)")
