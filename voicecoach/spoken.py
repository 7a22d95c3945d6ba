"""Text as it is said: symbols and numbers written out in the routine's language, before any engine
sees them (engines read ``1m30s`` as "one m thirty s", ``3x`` as "three x", ``/`` as "slash").

``expand(text, vocab)`` rewrites, in this order:

- ``/`` between two numbers as "of" (``2/3`` -> "2 of 3"), after a number as "per"
  (``10/side`` -> "10 per side"), between words as "or" (``left/right`` -> "left or right");
- ``x`` or ``×`` after a number as "times" (``3x``, ``3 x 10``, ``3×10``);
- ``%`` as "percent";
- durations as the routine format writes them (``5s``, ``1.5s``, ``2m``, ``2min``, ``1m30s``, ``1h``,
  ``250ms``) in the vocabulary's words: "one minute thirty seconds", "eine Minute dreißig Sekunden";
- every other number (``12``, ``1.5``, ``1,5`` where the comma is the decimal separator, ``1st`` in
  English) in words, by num2words in the vocabulary's language;
- a number before a unit takes the vocabulary's ``count_forms`` for its last word ("veintiún
  segundos", "vingt et une secondes"), whether the unit came from a duration or was written out.
- a decimal is said with the vocabulary's ``decimal_word`` where it has one (Spanish "uno coma
  cinco"; num2words says "punto").

The words come from the vocabulary (``phrases`` for seconds and minutes, ``words`` for the rest),
so a language is added without code (num2words speaks 40-odd languages; for one it does not,
numbers stay digits, which the engine then reads in its own language).
"""

from __future__ import annotations

import re
from decimal import Decimal
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .vocab import Vocabulary

_LETTER = r"[^\W\d_]"
_SLASH_NUMBERS = re.compile(r"(\d)\s*/\s*(?=\d)")
_SLASH_PER = re.compile(rf"(\d)\s*/\s*(?={_LETTER})")
_SLASH_OR = re.compile(rf"({_LETTER})\s*/\s*(?={_LETTER})")
_TIMES = re.compile(rf"(\d)\s*[x×](?!{_LETTER})(\s*(?=\d))?")
_PERCENT = re.compile(r"\s*%")
_THOUSANDS = re.compile(r"(?<![\d.,])\d{1,3}(?:,\d{3})+(?![\d,]|\.\d)")  # 1,000 (where "." is the decimal point)
_ORDINAL = re.compile(r"(?<![\w.,])(\d+)(st|nd|rd|th)\b")
_NUMBER = {".": r"\d+(?:\.\d+)?", ",": r"\d+(?:[.,]\d+)?"}  # by the vocabulary's decimal separator
_DURATION = {sep: re.compile(rf"(?<![\w.,])((?:{number}(?:ms|min|h|m|s))+)(?!\w)") for sep, number in _NUMBER.items()}
_DURATION_PART = {sep: re.compile(rf"({number})(ms|min|h|m|s)") for sep, number in _NUMBER.items()}
_BARE_NUMBER = {sep: re.compile(number) for sep, number in _NUMBER.items()}
_UNITS = {"h": "hours", "min": "minutes", "m": "minutes", "s": "seconds", "ms": "milliseconds"}


def expand(text: str, vocab: "Vocabulary") -> str:
    """``text`` with symbols, durations and numbers in the words of ``vocab``'s language."""
    if not any(c.isdigit() or c in "/%×" for c in text):
        return text  # the common case: nothing to write out
    words = vocab.words
    sep = vocab.decimal_separator
    text = _SLASH_NUMBERS.sub(rf"\1 {words['of']} ", text)
    text = _SLASH_PER.sub(rf"\1 {words['per']} ", text)
    text = _SLASH_OR.sub(rf"\1 {words['or']} ", text)
    text = _TIMES.sub(lambda m: f"{m[1]} {words['times']}" + (" " if m[2] is not None else ""), text)
    text = _PERCENT.sub(f" {words['percent']}", text)
    if sep == ".":
        text = _THOUSANDS.sub(lambda m: m[0].replace(",", ""), text)
    text = _DURATION[sep].sub(lambda m: _duration(m[1], vocab), text)
    if vocab.language == "en":
        text = _ORDINAL.sub(lambda m: _number_words(m[1], vocab, ordinal=True), text)
    before_unit = _before_unit(vocab)
    text = _BARE_NUMBER[sep].sub(
        lambda m: _number_words(m[0], vocab, counting=bool(before_unit and before_unit.match(text, m.end()))), text)
    return " ".join(text.split())


def _before_unit(vocab: "Vocabulary") -> re.Pattern | None:
    """What follows a number that counts a unit ("21 segundos"); ``None`` where no word changes."""
    if not vocab.count_forms:
        return None
    templates = [vocab.phrases.get(f"{name}_many") or vocab.words[f"{name}_many"] for name in set(_UNITS.values())]
    nouns = sorted({t.replace("{n}", "").split()[0] for t in templates if t.replace("{n}", "").split()}, key=len,
                   reverse=True)
    return re.compile(rf"\s+(?:{'|'.join(map(re.escape, nouns))})\b", re.IGNORECASE)


def _duration(written: str, vocab: "Vocabulary") -> str:
    """``1m30s`` -> "one minute thirty seconds" (each part as written: ``90s`` stays ninety seconds)."""
    spoken = []
    for number, unit in _DURATION_PART[vocab.decimal_separator].findall(written):
        name = _UNITS[unit]
        if _value(number, vocab) == 1:
            spoken.append(vocab.unit(name, one=True))
        else:
            spoken.append(vocab.unit(name, n=_number_words(number, vocab, counting=True)))
    return " ".join(spoken)


def _value(number: str, vocab: "Vocabulary") -> Decimal:
    return Decimal(number.replace(",", "."))


def _number_words(number: str, vocab: "Vocabulary", *, ordinal: bool = False, counting: bool = False) -> str:
    """A written number in words; digits as they were where num2words cannot say it.  ``counting``:
    before a unit (the last word in the vocabulary's ``count_forms``)."""
    said = _cardinal_words(number, vocab, ordinal=ordinal)
    if counting and vocab.count_forms:
        head, last = re.match(r"(.*?)([^\s-]*)$", said, re.DOTALL).groups()
        said = head + vocab.count_forms.get(last, last)
    return said


def _cardinal_words(number: str, vocab: "Vocabulary", *, ordinal: bool = False) -> str:
    value = _value(number, vocab)
    if value == value.to_integral_value():
        whole = int(value)
        if whole in vocab.numbers and not ordinal:
            return vocab.numbers[whole]
        value = whole  # type: ignore[assignment]
    try:
        from num2words import num2words

        if vocab.decimal_word and not isinstance(value, int) and not ordinal:
            # num2words' own reading with the language's word for the separator: "uno coma cinco"
            whole_part, _, fraction = format(value, "f").partition(".")
            digits = " ".join(num2words(int(d), lang=vocab.language) for d in fraction)
            return f"{num2words(int(whole_part), lang=vocab.language)} {vocab.decimal_word} {digits}"
        return num2words(value, lang=vocab.language, to="ordinal" if ordinal else "cardinal")
    except (NotImplementedError, ImportError, OverflowError, ValueError):
        return number
