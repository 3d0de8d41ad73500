"""Interface texts per language (texts/nl.yaml, texts/en.yaml; Dutch by default).

Keys are dotted paths into the YAML (`login.title`); `{name}` placeholders are filled with
str.format. tests/test_web_auth.py checks that both files have the same keys and that every key a
template uses exists."""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

from roleplay.history.accounts import LANGUAGES

TEXTS_DIR = Path(__file__).resolve().parent / "texts"
DEFAULT_LANGUAGE = "nl"

Translate = Callable[..., str]


def _flatten(tree: dict[str, Any], prefix: str = "") -> dict[str, str]:
    flat: dict[str, str] = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            flat.update(_flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = str(value)
    return flat


@lru_cache(maxsize=len(LANGUAGES))
def texts(language: str) -> dict[str, str]:
    """Every text of one language, by dotted key."""
    with open(TEXTS_DIR / f"{language}.yaml", encoding="utf-8") as f:
        return _flatten(yaml.safe_load(f))


def translator(language: str | None) -> Translate:
    """t(key, **params) in `language` (an unknown language gives Dutch). A missing key shows the key
    itself: a page with one odd word is better than no page, and the tests catch it."""
    table = texts(language if language in LANGUAGES else DEFAULT_LANGUAGE)

    def t(key: str, **params: Any) -> str:
        text = table.get(key, key)
        return text.format(**params) if params else text

    return t
