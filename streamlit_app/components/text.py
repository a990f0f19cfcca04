"""User-supplied text (names, error messages) shown through Streamlit's markdown: always
literal, never a link, image, formula, icon or HTML."""

from __future__ import annotations

import html
import re

_MARKDOWN_PUNCTUATION = re.compile(r"([\\`*_{}\[\]()#+\-.!|~>:@$=])")


def md(text: object) -> str:
    return _MARKDOWN_PUNCTUATION.sub(r"\\\1", html.escape(str(text), quote=True))
