"""What a customer's message wants: a person, small talk, a complaint about the last answer, or an answer."""

from __future__ import annotations

import re
import unicodedata
from typing import Literal

Intent = Literal["human", "greeting", "thanks", "goodbye", "not_helpful", "question"]
Language = Literal["de", "en"]

MAX_CHARS = 600  # intents are short; a long text is a question, and this bounds the work
_TOKEN = re.compile(r"[a-z0-9]+")
_FOLD = str.maketrans({"ä": "ae", "ö": "oe", "ü": "ue", "ß": "ss"})

PERSON = [
    "human",
    "humans",
    "person",
    "people",
    "agent",
    "agents",
    "representative",
    "rep",
    "operator",
    "someone",
    "somebody",
    "staff",
    "employee",
    "colleague",
    "supporter",
    "advisor",
    "adviser",
    "consultant",
    "mensch",
    "menschen",
    "mitarbeiter",
    "mitarbeiterin",
    "mitarbeitern",
    "berater",
    "beraterin",
    "ansprechpartner",
    "ansprechpartnerin",
    "jemand",
    "jemandem",
    "jemanden",
    "kundenservice",
    "kundendienst",
    "kundenbetreuer",
    "sachbearbeiter",
    "hotline",
    "servicemitarbeiter",
    "kollege",
    "kollegin",
]
REQUEST = [
    "talk",
    "speak",
    "chat",
    "connect",
    "transfer",
    "escalate",
    "call",
    "callback",
    "reach",
    "contact",
    "want",
    "need",
    "get",
    "give",
    "put",
    "sprechen",
    "reden",
    "verbinden",
    "verbinde",
    "weiterleiten",
    "durchstellen",
    "rueckruf",
    "anrufen",
    "moechte",
    "will",
    "brauche",
    "haette",
    "gerne",
    "wanna",
    "mit",
]
REAL = ["real", "echter", "echten", "echte", "live", "actual", "lebenden"]
NEGATION = [
    "no",
    "not",
    "dont",
    "don",
    "t",
    "without",
    "kein",
    "keine",
    "keinen",
    "nicht",
    "ohne",
    "never",
    "nie",
]
# "contact person for X", "HR staff", "another person ride": a person as the topic, not the wish.
TOPIC_MARKERS = ["who", "wer", "which", "welcher", "another", "other", "andere", "anderer", "ride", "fahren"]

GREETING = [
    "hi",
    "hello",
    "hey",
    "hallo",
    "moin",
    "servus",
    "gruezi",
    "hola",
    "howdy",
    "greetings",
    "morning",
    "evening",
    "abend",
    "morgen",
    "tag",
    "guten",
    "good",
    "gruess",
    "gott",
    "there",
]
THANKS = [
    "thanks",
    "thank",
    "thx",
    "ty",
    "danke",
    "dankeschoen",
    "vielen",
    "dank",
    "merci",
    "cheers",
    "super",
    "great",
    "toll",
    "perfekt",
    "das",
    "hilft",
    "helps",
]
GOODBYE = [
    "bye",
    "goodbye",
    "tschuess",
    "tschau",
    "ciao",
    "ade",
    "wiedersehen",
    "wiederhoeren",
    "later",
    "schoenen",
    "tag",
    "noch",
    "that",
    "s",
    "all",
    "alles",
]
NOT_HELPFUL = [
    "doesn",
    "t",
    "does",
    "not",
    "help",
    "helpful",
    "useless",
    "wrong",
    "falsch",
    "nicht",
    "hilft",
    "meinte",
    "meant",
    "asked",
    "not",
    "what",
    "das",
    "hilft",
    "mir",
    "nicht",
    "nein",
    "no",
    "answer",
    "antwort",
]

DE_WORDS = frozenset(
    [
        "der",
        "die",
        "das",
        "und",
        "ist",
        "nicht",
        "ich",
        "sie",
        "wie",
        "was",
        "mein",
        "meine",
        "ein",
        "eine",
        "mit",
        "fuer",
        "auf",
        "bei",
        "ihr",
        "ihre",
        "kann",
        "koennen",
        "wir",
        "habe",
        "hat",
        "wird",
        "bitte",
        "danke",
        "hallo",
        "vertrag",
        "rad",
        "warum",
        "wann",
        "wo",
    ]
)
EN_WORDS = frozenset(
    [
        "the",
        "and",
        "is",
        "not",
        "i",
        "you",
        "how",
        "what",
        "my",
        "a",
        "an",
        "with",
        "for",
        "on",
        "at",
        "your",
        "can",
        "we",
        "have",
        "has",
        "will",
        "please",
        "thanks",
        "hello",
        "contract",
        "bike",
        "why",
        "when",
        "where",
        "do",
        "does",
    ]
)


def _tokens(text: str) -> list[str]:
    folded = unicodedata.normalize("NFKC", text[:MAX_CHARS]).casefold().translate(_FOLD)
    return _TOKEN.findall(folded)


def _distance_at_most(a: str, b: str, limit: int) -> bool:
    """Whether the edit distance (with transpositions) of a and b is at most `limit`."""
    if abs(len(a) - len(b)) > limit:
        return False
    previous2: list[int] | None = None
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        current = [i] + [0] * len(b)
        for j, cb in enumerate(b, 1):
            cost = 0 if ca == cb else 1
            current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + cost)
            if previous2 is not None and i > 1 and j > 1 and ca == b[j - 2] and a[i - 2] == cb:
                current[j] = min(current[j], previous2[j - 2] + 1)
        if min(current) > limit:
            return False
        previous2, previous = previous, current
    return previous[-1] <= limit


def _like(token: str, vocabulary: list[str]) -> bool:
    """The token is a vocabulary word, a typo of one, or a compound starting with a long one."""
    if token in vocabulary:
        return True
    limit = 2 if len(token) >= 8 else 1 if len(token) >= 5 else 0
    return any(limit and len(word) >= 5 and _distance_at_most(token, word, limit) for word in vocabulary)


# Near neighbours of person words that name someone else: never a wish for a supporter.
NOT_PERSON = frozenset(["employer", "employers", "arbeitgeber", "personal", "persons", "personen"])


def _is_person(token: str) -> bool:
    # Compounds that merely contain a person word ("Mitarbeiterausweis") are a topic, not a wish.
    return token not in NOT_PERSON and _like(token, PERSON)


def detect_intent(text: str) -> Intent:
    """The customer's intent; anything unclear is a question (the bot then searches)."""
    tokens = _tokens(text)
    if not tokens:
        return "question"
    people = [i for i, t in enumerate(tokens) if _is_person(t)]
    wishes = [i for i, t in enumerate(tokens) if _like(t, REQUEST) or t in REAL]
    negated = any(t in NEGATION for t in tokens[: people[0]] if people) if people else False
    topical = any(t in TOPIC_MARKERS for t in tokens)
    if people and not negated:
        short = len(tokens) <= 3
        if short or (wishes and not topical) or any(t in REAL for t in tokens):
            return "human"
    rest = [t for t in tokens if not (_like(t, GREETING) or t in THANKS or t in GOODBYE)]
    question_like = "?" in text or len(rest) > 2
    if len(tokens) <= 8 and _not_helpful(tokens):
        return "not_helpful"
    if not question_like:
        if any(t in THANKS for t in tokens):
            return "thanks"
        if any(t in GOODBYE for t in tokens):
            return "goodbye"
        if any(_like(t, GREETING) for t in tokens):
            return "greeting"
    return "question"


def _not_helpful(tokens: list[str]) -> bool:
    joined = " ".join(tokens)
    patterns = (
        "doesn t help",
        "does not help",
        "didn t help",
        "did not help",
        "not helpful",
        "not what i",
        "wrong answer",
        "useless",
        "hilft nicht",
        "hilft mir nicht",
        "nicht hilfreich",
        "meinte ich nicht",
        "nicht gemeint",
        "falsch",
        "that s wrong",
    )
    return any(p in joined for p in patterns)


def detect_language(text: str) -> Language | None:
    """German or English by function words and umlauts; None when it cannot tell."""
    german_letters = sum(text[:MAX_CHARS].count(c) for c in "äöüÄÖÜß")
    tokens = _tokens(text)
    de = sum(1 for t in tokens if t in DE_WORDS) + german_letters
    en = sum(1 for t in tokens if t in EN_WORDS)
    if de == en:
        return None
    return "de" if de > en else "en"
