"""User-supplied text (names, error messages) shown through Streamlit's markdown: always
literal, never a link, image, formula, icon or HTML."""

from __future__ import annotations

import html
import re

_MARKDOWN_PUNCTUATION = re.compile(r"([\\`*_{}\[\]()#+\-.!|~>:@$=])")


def md(text: object) -> str:
    # Quotes stay as they are: markdown shows an entity like &#x27; literally once its # is
    # escaped, and no attribute value is built from this text.
    return _MARKDOWN_PUNCTUATION.sub(r"\\\1", html.escape(str(text), quote=False))
