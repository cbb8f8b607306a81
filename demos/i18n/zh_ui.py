"""简体中文 for the page itself: tabs, labels, buttons, help texts, notes, info lines, notices and error messages
(demos/, app.py and the service's messages). Exact English → Chinese; patterns for texts with numbers or names."""

from __future__ import annotations

from demos.i18n import CATALOGS

PHRASES: dict[str, str] = {
    "Generate": "生成",
    "Ask": "问答",
    "Translate": "翻译",
    "Sentiment": "情感分析",
    "Explain": "讲解",
}

# (regex over the whole English text, Chinese template): named groups are kept as they are, or translated in
# turn when their name starts with "t_"
PATTERNS: list[tuple[str, str]] = [
]

CATALOGS["zh"].add(PHRASES, PATTERNS)
