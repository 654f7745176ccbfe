"""Mask personal data (IBANs, card numbers, e-mail addresses, phone numbers) before text leaves for a model.

Every pattern is a simple scan whose matches are bounded or consume their input once, and the
candidates are checked in Python (mod-97, Luhn, digit counts), so masking stays linear in the
text's length whatever a customer types.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator

MASK_KINDS = frozenset({"iban", "card", "email", "phone"})
_PLACEHOLDERS = {"email": "[EMAIL]", "iban": "[IBAN]", "card": "[CARD]", "phone": "[PHONE]"}
# Found in this order, each on the text with the earlier finds blanked out: an IBAN's digits or
# an address's local part are never taken for a phone number, even when only phones are masked.
_ORDER = ("email", "iban", "card", "phone")
_BLANK = "\x00"

Span = tuple[int, int]

# ISO 13616 lengths (SWIFT IBAN registry); a country not listed is accepted at any valid length.
_IBAN_LENGTHS = {
    "AD": 24, "AE": 23, "AL": 28, "AT": 20, "AZ": 28, "BA": 20, "BE": 16, "BG": 22, "BH": 22,
    "BR": 29, "BY": 28, "CH": 21, "CR": 22, "CY": 28, "CZ": 24, "DE": 22, "DK": 18, "DO": 28,
    "EE": 20, "EG": 29, "ES": 24, "FI": 18, "FO": 18, "FR": 27, "GB": 22, "GE": 22, "GI": 23,
    "GL": 18, "GR": 27, "GT": 28, "HR": 21, "HU": 28, "IE": 22, "IL": 23, "IQ": 23, "IS": 26,
    "IT": 27, "JO": 30, "KW": 30, "KZ": 20, "LB": 28, "LC": 32, "LI": 21, "LT": 20, "LU": 20,
    "LV": 21, "MC": 27, "MD": 24, "ME": 22, "MK": 19, "MR": 27, "MT": 31, "MU": 30, "NL": 18,
    "NO": 15, "PK": 24, "PL": 28, "PS": 29, "PT": 25, "QA": 29, "RO": 24, "RS": 22, "SA": 24,
    "SC": 31, "SE": 24, "SI": 19, "SK": 24, "SM": 27, "ST": 25, "SV": 28, "TL": 23, "TN": 24,
    "TR": 26, "UA": 29, "VA": 22, "VG": 24, "XK": 20,
}  # fmt: skip
_IBAN_MIN, _IBAN_MAX = 15, 34
_IBAN = re.compile(r"(?<![A-Za-z0-9])[A-Za-z]{2}[0-9]{2}(?:[ \u00a0]?[A-Za-z0-9]){11,30}")

_EMAIL = re.compile(r"(?<![\w.%+-])[\w.%+-]+@[\w-]+(?:\.[\w-]+)+")

# A run of digit groups joined by one space or dash, not glued to a word or a "+".
_CARD_RUN = re.compile(r"(?<![\w+])[0-9](?:[ -]?[0-9])*")
_CARD_MIN, _CARD_MAX = 13, 19

# Digit groups with the characters phone numbers are written with; dots and commas are left
# out on purpose, so dates (12.03.2024), times and amounts (1.299,00) never form a candidate.
_PHONE_RUN = re.compile(r"(?<![\w+(])[+(]{0,2}[0-9][0-9 ()/-]*")
_US_DOTTED = re.compile(r"(?<![\w.])[2-9][0-9]{2}\.[0-9]{3}\.[0-9]{4}(?![\w]|\.[0-9])")
_GROUP = re.compile(r"[0-9]+")
_PHONE_WORD = re.compile(
    r"\b(?:tel|fon|phone|handy|mobil|fax|ruf|anruf|festnetz|call|cell|whatsapp|sms|erreich|reach)",
    re.IGNORECASE,
)
_REFERENCE_WORD = re.compile(
    r"\b(?:vertrag|bestell|auftrag|kunden|rechnung|order|contract|invoice|ticket|referenz|reference"
    r"|sendung|tracking|vorgang|case|konto|account|artikel|article|serien|serial|paket|parcel"
    r"|nr|no|id)\w*[\s.:#-]{0,4}$",
    re.IGNORECASE,
)
_CONTEXT = 32
_DIGIT_OR_BLANK = re.compile(r"[0-9\x00]")
_INTL_DIGITS = (8, 16)  # E.164 allows 15; one more for a "(0)" trunk prefix
_INTL00_DIGITS = (10, 18)
_NATIONAL_DIGITS = (7, 14)
_MAX_SEPARATOR = 3


def parse_mask_setting(value: str) -> frozenset[str]:
    """Read a comma-separated list of kinds to mask; an empty value masks nothing."""
    names = {part.strip().lower() for part in value.split(",") if part.strip()}
    _refuse_unknown(names)
    return frozenset(names)


def mask_personal_data(text: str, kinds: frozenset[str]) -> str:
    """Replace the IBANs, card numbers, e-mail addresses and phone numbers of the given kinds."""
    _refuse_unknown(kinds)
    if not kinds:
        return text
    last = max(_ORDER.index(kind) for kind in kinds)
    found: list[tuple[int, int, str]] = []
    work = text
    for kind in _ORDER[: last + 1]:
        spans = _disjoint(_FINDERS[kind](work))
        if spans:
            found.extend((start, end, kind) for start, end in spans)
            work = _blank(work, spans)
    found.sort()
    parts: list[str] = []
    position = 0
    for start, end, kind in found:
        parts.append(text[position:start])
        parts.append(_PLACEHOLDERS[kind] if kind in kinds else text[start:end])
        position = end
    parts.append(text[position:])
    return "".join(parts)


def _disjoint(spans: Iterator[Span]) -> list[Span]:
    """The spans in order, dropping any that overlaps an earlier one (a finder's passes may touch)."""
    kept: list[Span] = []
    for start, end in sorted(spans):
        if not kept or start >= kept[-1][1]:
            kept.append((start, end))
    return kept


def _refuse_unknown(names: set[str] | frozenset[str]) -> None:
    unknown = sorted(set(names) - MASK_KINDS)
    if unknown:
        raise ValueError(
            f"unknown kind of personal data to mask: {', '.join(unknown)}; "
            f"use a comma-separated list of {', '.join(sorted(MASK_KINDS))} (or nothing)"
        )


def _blank(text: str, spans: list[Span]) -> str:
    parts: list[str] = []
    position = 0
    for start, end in spans:
        parts.append(text[position:start])
        parts.append(_BLANK * (end - start))
        position = end
    parts.append(text[position:])
    return "".join(parts)


def _emails(text: str) -> Iterator[Span]:
    for match in _EMAIL.finditer(text):
        start, end = match.span()
        while text[start] == ".":
            start += 1
        tld = text[text.rindex(".", start, end) + 1 : end]
        if len(tld) >= 2 and tld.isalpha() and text[start] != "@":
            yield start, end


def _ibans(text: str) -> Iterator[Span]:
    position = 0
    while (match := _IBAN.search(text, position)) is not None:
        end = _iban_end(text, match)
        if end is None:
            # A rejected candidate may hide a real IBAN that starts inside it ("XX12 DE89 ...").
            position = match.start() + 1
        else:
            yield match.start(), end
            position = end


def _iban_end(text: str, match: re.Match[str]) -> int | None:
    """Where the valid IBAN at the match's start ends, or None."""
    compact: list[str] = []
    ends: list[int] = []
    for offset, char in enumerate(match.group()):
        if char.isalnum():
            compact.append(char.upper())
            ends.append(match.start() + offset + 1)
    expected = _IBAN_LENGTHS.get("".join(compact[:2]))
    lengths = [expected] if expected else range(min(len(compact), _IBAN_MAX), _IBAN_MIN - 1, -1)
    for length in lengths:
        if length > len(compact):
            continue
        end = ends[length - 1]
        at_word_end = end == len(text) or not text[end].isalnum()
        if at_word_end and _mod97_valid("".join(compact[:length])):
            return end
    return None


def _mod97_valid(iban: str) -> bool:
    rearranged = iban[4:] + iban[:4]
    return int("".join(str(int(char, 36)) for char in rearranged)) % 97 == 1


def _cards(text: str) -> Iterator[Span]:
    for run in _CARD_RUN.finditer(text):
        groups = [(m.start() + run.start(), m.end() + run.start()) for m in _GROUP.finditer(run.group())]
        index = 0
        while index < len(groups):
            best = _card_end(text, groups, index)
            if best is None:
                index += 1
            else:
                yield groups[index][0], groups[best][1]
                index = best + 1


def _card_end(text: str, groups: list[Span], first: int) -> int | None:
    """The last group of the longest Luhn-valid card number starting at group `first`, or None."""
    if text[groups[first][0]] == "0":
        return None  # no card network issues numbers starting with 0
    digits = ""
    best = None
    for index in range(first, len(groups)):
        digits += text[groups[index][0] : groups[index][1]]
        if len(digits) > _CARD_MAX:
            break
        if len(digits) >= _CARD_MIN and _luhn_valid(digits):
            best = index
    return best


def _luhn_valid(digits: str) -> bool:
    total = 0
    for position, char in enumerate(reversed(digits)):
        value = int(char)
        if position % 2:
            value = value * 2 - 9 if value > 4 else value * 2
        total += value
    return total % 10 == 0


def _phones(text: str) -> Iterator[Span]:
    for run in _PHONE_RUN.finditer(text):
        groups = [(m.start() + run.start(), m.end() + run.start()) for m in _GROUP.finditer(run.group())]
        index = 0
        while index < len(groups):
            found = _phone_at(text, run.start(), groups, index)
            if found is None:
                index += 1
            else:
                span, index = found
                yield span
    for match in _US_DOTTED.finditer(text):
        if not _reference_context(text, match.start()):
            yield match.span()


def _phone_at(text: str, run_start: int, groups: list[Span], first: int) -> tuple[Span, int] | None:
    """The phone number starting at group `first` and the index of the group after it, or None."""
    start, end = groups[first]
    before = text[groups[first - 1][1] if first else run_start : start]
    lead = len(before) - len(before.rstrip("+("))
    head = text[start:end]
    if "+" in before:
        last = _extend(text, groups, first, _INTL_DIGITS[1], allow_zero=True)
        low = _INTL_DIGITS[0]
    elif head.startswith("00") and head[2:3] not in ("", "0"):
        last = _extend(text, groups, first, _INTL00_DIGITS[1], allow_zero=True)
        low = _INTL00_DIGITS[0]
    elif head.startswith("0") and head[1:2] != "0":
        # Subscriber numbers never start with 0: a later group starting with 0 is the next number.
        last = _extend(text, groups, first, _NATIONAL_DIGITS[1], allow_zero=False)
        low = _NATIONAL_DIGITS[0]
        if len(head) > 1 and _looks_like_date(groups[first : last + 1]):
            return None
    else:
        us_last = _us_end(text, groups, first, before)
        if us_last is None:
            return None
        last, low = us_last, 0
    digits = sum(e - s for s, e in groups[first : last + 1])
    if digits < low:
        return None
    inner = text[start : groups[last][1]]
    if lead and "(" in before[len(before) - lead :] and ")" not in inner:
        lead = len(before) - len(before.rstrip("+"))  # a "(" that closes outside the number
    if "+" not in before and _reference_context(text, start - lead):
        return None
    return (start - lead, groups[last][1]), last + 1


def _extend(text: str, groups: list[Span], first: int, most: int, *, allow_zero: bool) -> int:
    """The last group a number starting at `first` can take in, given its longest digit count."""
    digits = groups[first][1] - groups[first][0]
    slashes = 0
    last = first
    for index in range(first + 1, len(groups)):
        start, end = groups[index]
        separator = text[groups[index - 1][1] : start]
        slashes += separator.count("/")
        if len(separator) > _MAX_SEPARATOR or slashes > 1:
            break
        if not allow_zero and text[start] == "0":
            break
        digits += end - start
        if digits > most:
            break
        last = index
    return last


def _looks_like_date(groups: list[Span]) -> bool:
    sizes = [end - start for start, end in groups]
    return len(sizes) == 3 and sizes[0] <= 2 and sizes[1] <= 2 and sizes[2] in (2, 4)


def _us_end(text: str, groups: list[Span], first: int, before: str) -> int | None:
    """The last group of a US number written 555-123-4567 or (555) 123-4567 at `first`, or None."""
    if first + 2 >= len(groups):
        return None
    sizes = [end - start for start, end in groups[first : first + 3]]
    separators = [text[groups[i - 1][1] : groups[i][0]] for i in (first + 1, first + 2)]
    if sizes != [3, 3, 4] or text[groups[first][0]] in "01":
        return None
    parenthesised = before.endswith("(")
    first_ok = separators[0] in ((") ", ")") if parenthesised else ("-", " "))
    if not first_ok or separators[1] not in ("-", " "):
        return None
    return first + 2


def _reference_context(text: str, start: int) -> bool:
    """Whether the words just before `start` name an order, contract or account number, not a phone."""
    # Only the words after the last number count: "Tel. 0171 1234567, Vertrag 0123" is a contract.
    window = _DIGIT_OR_BLANK.split(text[max(0, start - _CONTEXT) : start])[-1]
    return _PHONE_WORD.search(window) is None and _REFERENCE_WORD.search(window) is not None


_FINDERS: dict[str, Callable[[str], Iterator[Span]]] = {
    "email": _emails,
    "iban": _ibans,
    "card": _cards,
    "phone": _phones,
}
