"""Language codes and names: tools take ISO 639-1 codes, the reference's events take names.

whisperX, espeak-ng and spaCy want codes (``en``); the reference writes the full
lower-case name in the ``language`` column of its Word events (``english``, its
``ExtractWordsFromAudio`` default, named as whisper names languages). Inputs may
use either: :func:`language_code` and :func:`language_name` map both ways with
one table. A value the table does not know passes through unchanged.
"""

from __future__ import annotations

# ISO 639-1 code -> whisper's name (``whisperx.utils.LANGUAGES``), the reference's
# five (english, french, spanish, dutch, chinese) and other common languages.
LANGUAGE_NAMES: dict[str, str] = {
    "ar": "arabic",
    "ca": "catalan",
    "cs": "czech",
    "da": "danish",
    "de": "german",
    "el": "greek",
    "en": "english",
    "es": "spanish",
    "fi": "finnish",
    "fr": "french",
    "he": "hebrew",
    "hi": "hindi",
    "hu": "hungarian",
    "it": "italian",
    "ja": "japanese",
    "ko": "korean",
    "nl": "dutch",
    "no": "norwegian",
    "pl": "polish",
    "pt": "portuguese",
    "ro": "romanian",
    "ru": "russian",
    "sv": "swedish",
    "tr": "turkish",
    "uk": "ukrainian",
    "zh": "chinese",
}
_CODES = {name: code for code, name in LANGUAGE_NAMES.items()}


def language_code(value: str) -> str:
    """ISO 639-1 code of a language given as a code or a name.

    ``"english"``, ``"English"``, ``"en"``, ``"en-US"`` and ``"en_GB"`` give ``"en"``;
    a value the table does not know is returned stripped, otherwise unchanged.
    """
    text = value.strip()
    key = text.lower()
    if key in _CODES:
        return _CODES[key]
    base = key.replace("_", "-").split("-")[0]
    if base in LANGUAGE_NAMES:
        return base
    return text


def language_name(value: str) -> str:
    """The reference's name of a language given as a code or a name (``"en"`` -> ``"english"``).

    A value the table does not know is returned stripped, otherwise unchanged.
    """
    code = language_code(value)
    return LANGUAGE_NAMES.get(code, code)
