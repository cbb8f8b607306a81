"""简体中文 for the figures and HTML views (viz/): titles, captions, axis and colour-bar titles, hovers, legends.
Exact English → Chinese; patterns for texts with numbers, tokens or model names in them (kept as they are)."""

from __future__ import annotations

from demos.i18n import CATALOGS

PHRASES: dict[str, str] = {
    "attention weight": "注意力权重",
}

PATTERNS: list[tuple[str, str]] = [
    (r"layer (?P<n>\d+)", "第 {n} 层"),
    (r"head (?P<n>\d+)", "头 {n}"),
]

CATALOGS["zh"].add(PHRASES, PATTERNS)
