"""Read what a customer's chat message wants, and its language, by rules that run in linear time.

A message is normalised (NFKC, casefold, umlauts as ae/oe/ue, ß as ss, punctuation and emoji
dropped), cut into clauses at punctuation and at "but"/"aber"/"sondern", and tokenised. Each token
is mapped onto a small vocabulary by its exact form, a German inflection ending, a compound's head
("Kundenberater") or an edit distance of 1 (5+ letters) or 2 (10+ letters, not both in place),
so typos and unseen inflections land on the same word; look-alikes that mean something else
("employer", "contract", "verhindern") are listed and never corrected.

A request for a person is a PERSON word joined to a REQUEST word by filler words only ("speak to
a real human", "mit einem Mitarbeiter sprechen"), a callback, or a short message that is little
more than a PERSON word ("Mitarbeiter!!"). Negation ("no agent needed"), possessives ("my
colleague"), noun modifiers ("employee discount") and information questions ("who is the contact
person ...") take it back. Small talk and complaints count only when every word of the message
belongs to them, so anything carrying a real question stays a question.
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache
from itertools import pairwise
from typing import Literal

from backend.bot.texts import Language

Intent = Literal["human", "greeting", "thanks", "goodbye", "not_helpful", "question"]

# Longer messages are read as their head and tail: a rant ends with its demand, and the work
# stays bounded whatever is pasted into the box.
_HEAD_CHARS, _TAIL_CHARS = 1500, 500
_MAX_TOKENS = 400
_MAX_WORD = 40
# Small talk and complaints are short; past this a message carries something to answer.
_SMALL_TALK_TOKENS = 16
_SHORT_REQUEST_TOKENS = 5
# How far a request word reaches for its person across filler words.
_REACH = 6


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


# Categories of the meaningful words.
_PERSON = "person"  # someone working for the company: agent, Mitarbeiter, Kundenservice
_SOMEONE = "someone"  # anybody: person, jemand, colleague; a person only when clearly asked for
_SERVICE = "service"  # support, team: a person only as the object of a contact verb
_CONTACT_EN = "contact_en"  # talk, speak: the person follows ("talk to a human")
_CONTACT_DE = "contact_de"  # sprechen: the person stands on either side ("Mitarbeiter sprechen")
_ASK = "ask"  # help, fragen: a request only with a PERSON word ("kann mir ein Mitarbeiter helfen")
_WANT = "want"  # want, möchte: the person follows ("I want an agent")
_WANT_AFTER = "want_after"  # bekommen: the person comes first ("einen Menschen bekommen")
_CALLBACK = "callback"  # Rückruf: a person calling back is a person
_BOT = "bot"  # "not a bot" asks for a human
_ADJ = "adj"  # real, echt: qualifies the person, never blocks the request

_VOCABULARY: dict[str, str] = {}
for _category, _list in (
    (
        _PERSON,
        "human agent representative rep operator staff employee consultant advisor adviser specialist "
        "supporter clerk manager supervisor technician hotline helpdesk callcenter servicedesk "
        "customerservice customersupport customercare mitarbeiter mitarbeiterin mitarbeitende mensch "
        "berater beraterin betreuer betreuerin kundenbetreuer sachbearbeiter sachbearbeiterin "
        "ansprechpartner ansprechpartnerin kundenservice kundendienst kundensupport kundenbetreuung "
        "agentin fachmann fachfrau techniker",
    ),
    (
        _SOMEONE,
        "person persons people someone somebody anyone anybody colleague member individual jemand "
        "irgendjemand irgendwen kollege kollegin leute chef chefin boss vorgesetzte vorgesetzter",
    ),
    (_SERVICE, "support service services team"),
    (
        _CONTACT_EN,
        "talk talking speak speaking chat chatting connect connected transfer transferred escalate "
        "escalated reach contact forward forwarded call phone ring",
    ),
    (
        _CONTACT_DE,
        "sprechen spreche sprich reden rede redet quatschen chatten schreiben verbinden verbindet "
        "verbunden verbinde weiterleiten weiterverbinden leiten leitet durchstellen telefonieren "
        "anrufen erreichen kontaktieren kontakt kontaktaufnahme rueckmeldung eskalieren kommunizieren "
        "termin gespraech telefonat appointment meeting conversation",
    ),
    (_ASK, "help assist ask helfen hilft hilfe fragen nachfragen unterstuetzen"),
    (
        _WANT,
        "want wants wanna need needs get give like prefer request require demand moechte moechten "
        "mochte will wollen brauche brauchen braucht benoetige benoetigen gern gerne wuensche verlange",
    ),
    (_WANT_AFTER, "bekommen kriegen haben"),
    (_CALLBACK, "rueckruf callback zurueckrufen zurueckruf rueckrufbitte"),
    (_BOT, "bot chatbot robot roboter maschine machine ki ai computer automat"),
    (
        _ADJ,
        "real actual live proper competent qualified responsible senior experienced personal echt "
        "richtig menschlich zustaendig kompetent verantwortlich lebendig leibhaftig qualifiziert "
        "erfahren",
    ),
):
    for _word in _list.split():
        _VOCABULARY[_word] = _category

# German compounds name the person in their last part: Servicemitarbeiter, Kontaktperson, Supportteam.
_HEADS = {
    "mitarbeiter": _PERSON,
    "mitarbeiterin": _PERSON,
    "berater": _PERSON,
    "beraterin": _PERSON,
    "betreuer": _PERSON,
    "bearbeiter": _PERSON,
    "ansprechpartner": _PERSON,
    "agent": _PERSON,
    "person": _SOMEONE,
    "team": _SERVICE,
}
# Advisers and staff of others: a Steuerberater or the employer's Personalmitarbeiter is not ours.
_OUTSIDE_PREFIXES = (
    "steuer", "rechts", "anlage", "finanz", "vermoegens", "unternehmens", "berufs", "ehe", "schuldner",
    "energie", "personal", "arbeitgeber", "haendler", "geheim", "fussball", "versuchs", "test", "privat",
)  # fmt: skip
_INFLECTIONS = ("innen", "ing", "in", "en", "em", "er", "es", "e", "n", "s")

# Words an edit away from a vocabulary word that mean something else; they are never corrected.
_LOOK_ALIKES = _words(
    "employer employers employed employment stuff staffel beraten beratung beratet advise advised "
    "operation operations operate sprachen managed manage manages managen hatte hatten personal "
    "contract contracts kontrakt react teach jeden jedem jeder telefoniert gesprochen geredet "
    "gechattet angerufen kontaktiert talked spoke spoken called chatted contacted reached perso "
    "betreuung beschreiben beschrieben supported expect export college mitarbeit leiter seiten "
    "verwenden verwendet gebunden technical tragen arent isnt wasnt werent stoff techniken iphone "
    "abrufen weiterleben zurueckkaufen zurueckgerufen sprecher branche branchen"
)
# Filler words: they may stand between a request and its person ("verbinden Sie mich mit einem").
_FILLERS = _words(
    "a an the to with me us i we you u your ur yours please pls plz plse pleas just now right away "
    "immediately asap directly quickly again really finally actually kindly maybe perhaps possibly "
    "also too still some any one other another else of from at on over through via by about "
    "regarding re for in be able possible can could would may might shall should must let lets is "
    "are it there here today tomorrow soon more only sb being id im ill ive d wd straight "
    "personally hello hi hey ein eine einen einem einer eines der die das den dem des zu zum zur mit "
    "an am bei beim vom von aus ueber fuer per im in mich mir uns ich wir sie ihnen du dich dir ihr "
    "ihre ihren ihrem ihrer ihres euer eure euren eurem eurer dein deine deinen deinem deiner bitte "
    "bitten jetzt sofort mal doch einfach direkt endlich noch nur vielleicht schnell kurz bald gleich "
    "umgehend nochmal einmal eben schon heute morgen irgendein irgendeine irgendeinem irgendeinen "
    "irgendeiner anderen anderem anderer andere anderes kann koennte koennten koennen kannst "
    "koenntest darf duerfte muss muessen soll sollte wuerde wuerden werden wird lassen lass es ist "
    "gibt da hier telefonisch persoenlich lieber auch hallo moeglich ganz um weiter durch this that "
    "dies diese dieses diesen nen nem ner ne dringend urgently unbedingt desperately"
)
# What a short request may consist of besides its person: "einen echten Menschen bitte".
_SHORT_FILLERS = _words(
    "a an the some any one ein eine einen einem einer der die den dem please pls plz plse bitte now "
    "jetzt sofort asap immediately quickly schnell endlich finally right away just nur only i ich me "
    "mir mich we wir us uns to with mit zu zum zur is there gibt es here hier da hallo hi hey hello "
    "your ihr ihre ihren ihrem euren eurem um nen nem ner ne from of vom von aus bei beim dringend "
    "urgently needed required wanted gewuenscht gebraucht noetig"
)
_HUMAN_ADJECTIVES = _words(
    "real actual live echt richtig menschlich lebendig leibhaftig persoenlich personal"
)
# Verbs that hand over only with their particle: "put me through", "hand me over".
_PHRASAL_VERBS = {"put": ("through",), "hand": ("over",), "pass": ("on", "over")}
_NEGATIONS = _words("not dont doesnt didnt never without nicht nie niemals ohne nobody noone niemand nichts")
# "no"/"kein" negate only the noun right after them: "no agent needed", but "no I want a human".
_NO = _words("no kein keine keinen keinem keiner keines")
_POSSESSIVES = _words(
    "my our his her their mein meine meinen meinem meiner meines unser unsere unseren unserem "
    "unserer sein seine seinen seinem seiner"
)
_FIRST_PERSON = _words("i me im id ive we us ich mich mir wir uns")
# A clause opening with these asks for information about someone, not for someone.
_INFO_QUESTION = _words(
    "who whom whose what whats whos which wer wen wem wessen was welche welcher welches welchen "
    "welchem wieviele wieviel"
)
_HOW_MANY = (_words("how wie"), _words("many much viele viel"))
_RHETORICAL = _words("why warum wieso weshalb")
_ABILITY = _words("kann konnte koennen kannst can could cannot cant couldnt")
_CONNECTORS = _words("who that which der die welche welcher from of at von vom bei beim aus")
_LANGUAGES = _words(
    "english englisch german deutsch french franzoesisch spanish spanisch italian italienisch "
    "turkish tuerkisch polish polnisch dutch niederlaendisch russian russisch arabic arabisch"
)
_CLAUSE_WORDS = _words("but aber sondern however jedoch")
_CALL_VERBS = _words("call ring phone rufen ruf ruft rufe anrufen")
_CALL_BACK = _words("back zurueck an")
_CONTACT_NOUN = _words("person persons partner people")


class _FuzzyIndex:
    """Words within the allowed edit distance, found by symmetric deletion (no scan of the list)."""

    def __init__(self, words: list[str]) -> None:
        self._deletions: dict[str, set[str]] = {}
        for word in words:
            for variant in _deletions(word, _allowed(len(word))):
                self._deletions.setdefault(variant, set()).add(word)

    def nearest(self, token: str) -> str | None:
        """The closest word, or None when none is near enough."""
        if not 5 <= len(token) <= 24 or not token.isascii() or not token.isalpha():
            return None
        best: tuple[int, str] | None = None
        candidates: set[str] = set()
        for variant in _deletions(token, _allowed(len(token))):
            candidates |= self._deletions.get(variant, set())
        for word in candidates:
            limit = _allowed(min(len(word), len(token)))
            if len(word) == len(token):
                # Two letters changed in place make another word more often than a typo
                # ("verwenden"/"verbinden", "changing"/"chatting"); a swap still counts one.
                limit = min(limit, 1)
            distance = _distance(token, word, limit)
            if distance <= limit and (best is None or (distance, word) < best):
                best = (distance, word)
        return None if best is None else best[1]


def _allowed(length: int) -> int:
    # Two edits only from 10 letters on: at 8 or 9 they already turn common words into ours
    # ("verhindern" into "verbinden", "constant" into "consultant").
    return 2 if length >= 10 else 1 if length >= 5 else 0


def _deletions(word: str, depth: int) -> set[str]:
    found = {word}
    frontier = {word}
    for _ in range(depth):
        frontier = {variant[:i] + variant[i + 1 :] for variant in frontier for i in range(len(variant))}
        found |= frontier
    return found


def _distance(a: str, b: str, limit: int) -> int:
    """Optimal-string-alignment distance (a swap of neighbours costs one), or limit + 1 beyond it."""
    if abs(len(a) - len(b)) > limit:
        return limit + 1
    before: list[int] = []
    previous = list(range(len(b) + 1))
    for i in range(1, len(a) + 1):
        current = [i] + [0] * len(b)
        for j in range(1, len(b) + 1):
            cost = 0 if a[i - 1] == b[j - 1] else 1
            current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + cost)
            if i > 1 and j > 1 and a[i - 1] == b[j - 2] and a[i - 2] == b[j - 1]:
                current[j] = min(current[j], before[j - 2] + 1)
        if min(current) > limit:
            return limit + 1
        before, previous = previous, current
    return previous[-1]


# Inflected forms and adjectives are matched exactly: their neighbours are other words
# ("talking"/"taking", "wollen"/"vollen", "wichtig"/"richtig"), and the base form takes the typos.
_EXACT_ONLY = _words(
    "talking speaking chatting connected transferred escalated forwarded verbunden verbindet verbinde "
    "redet rede spreche leiten leitet schreiben wants needs braucht moechten wollen fragen adviser "
    "persons services haben kriegen bekommen gern gerne wanna mochte brauche brauchen verlange reden "
    "quatschen leute vorgesetzte vorgesetzter help assist ask helfen hilft hilfe nachfragen "
    "zurueckrufen zurueckruf"
)
_VOCABULARY_INDEX = _FuzzyIndex(
    [
        word
        for word, category in _VOCABULARY.items()
        if len(word) >= 5 and category != _ADJ and word not in _EXACT_ONLY
    ]
)
_FUNCTION_WORDS = (
    _LOOK_ALIKES | _FILLERS | _NEGATIONS | _NO | _POSSESSIVES | _INFO_QUESTION | _LANGUAGES | _CLAUSE_WORDS
)


@lru_cache(maxsize=8192)
def _meaning(token: str) -> tuple[str, str]:
    """The vocabulary word a token stands for and its category; a content word keeps itself and ""."""
    if token in _VOCABULARY:
        return token, _VOCABULARY[token]
    if token in _FUNCTION_WORDS:
        return token, ""
    forms = [token] + [
        token[: -len(ending)]
        for ending in _INFLECTIONS
        if token.endswith(ending) and len(token) - len(ending) >= 4
    ]
    for form in forms[1:]:
        if form in _VOCABULARY and form not in _EXACT_ONLY:
            return form, _VOCABULARY[form]
    for form in forms:
        for head, category in _HEADS.items():
            if form.endswith(head) and len(form) >= len(head) + 3 and not form.startswith(_OUTSIDE_PREFIXES):
                return head, category
    near = _VOCABULARY_INDEX.nearest(token)
    if near is not None:
        return near, _VOCABULARY[near]
    return token, ""


# --- Normalising and splitting ---------------------------------------------------------------

_UMLAUTS = str.maketrans({"ä": "ae", "ö": "oe", "ü": "ue", "ß": "ss"})
_APOSTROPHES = re.compile(r"['’`´]")
_HYPHEN_IN_WORD = re.compile(r"(?<=[^\W\d_])[-‐‑](?=[^\W\d_])")
_CLAUSE_BREAK = re.compile(r"[.!?;:,()\[\]{}\"“”„«»\n\r\t…/|]+")
_TOKEN = re.compile(r"[^\W_]+")


def _bounded(text: str) -> str:
    if len(text) > _HEAD_CHARS + _TAIL_CHARS:
        return text[:_HEAD_CHARS] + "\n" + text[-_TAIL_CHARS:]
    return text


def _normalise(text: str) -> str:
    """Casefold and compose, without folding umlauts (the language check counts them)."""
    folded = unicodedata.normalize("NFKC", _bounded(text)).casefold()
    return folded[: 2 * (_HEAD_CHARS + _TAIL_CHARS)]


def _strip_accents(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text.translate(_UMLAUTS))
    return "".join(char for char in decomposed if not unicodedata.combining(char))


def _clauses(text: str) -> list[list[str]]:
    """The message's clauses as token lists, at most _MAX_TOKENS tokens in all."""
    plain = _HYPHEN_IN_WORD.sub("", _APOSTROPHES.sub("", _strip_accents(_normalise(text))))
    clauses: list[list[str]] = []
    budget = _MAX_TOKENS
    for part in _CLAUSE_BREAK.split(plain):
        # No word of ours is longer; a cut keeps the cached lookups small whatever is pasted.
        tokens = [token[:_MAX_WORD] for token in _TOKEN.findall(part)[:budget]]
        budget -= len(tokens)
        if tokens:
            clauses.append(tokens)
        if budget <= 0:
            break
    return clauses


# --- A request for a person ------------------------------------------------------------------


def _pair_names_a_person(left: str, right: str, right_category: str) -> bool:
    """Whether two words name a person together: "customer service", "a real person"."""
    if right_category == _SERVICE and left in ("customer", "client", "kunden", "human"):
        return True
    if left == "live" and right in ("chat", "support"):
        return True
    if left in ("help", "service") and right == "desk":
        return True
    # The adjective says a human is wanted: "a real person", "menschlicher Support".
    return left in _HUMAN_ADJECTIVES and right_category in (_SOMEONE, _SERVICE)


class _Clause:
    """One clause's words with their vocabulary categories, and the checks the rules share."""

    def __init__(self, tokens: list[str]) -> None:
        meanings = [_meaning(token) for token in tokens]
        self.words = [word for word, _ in meanings]
        self.cats = [category for _, category in meanings]
        self._join_compounds()

    def _join_compounds(self) -> None:
        for i in range(len(self.words) - 1):
            if _pair_names_a_person(self.words[i], self.words[i + 1], self.cats[i + 1]):
                self.cats[i], self.cats[i + 1] = _ADJ, _PERSON
        for verb, particles in _PHRASAL_VERBS.items():
            if verb in self.words and any(particle in self.words for particle in particles):
                self.cats[self.words.index(verb)] = _CONTACT_EN

    def is_filler(self, i: int) -> bool:
        return self.cats[i] == _ADJ or (self.cats[i] == "" and self.words[i] in _FILLERS)

    def is_staff(self, i: int, categories: tuple[str, ...]) -> bool:
        """Whether word i is a person of these categories who works for the company."""
        return self.cats[i] in categories and not self.belongs_elsewhere(i) and not self._modifies(i)

    def belongs_elsewhere(self, i: int) -> bool:
        # "my colleague", "an employee of my company": someone of the customer's, not ours.
        for k in range(i - 1, max(-1, i - 4), -1):
            if self.words[k] in _POSSESSIVES:
                return True
            if self.cats[k] not in ("", _ADJ):
                break
        after = self.words[i + 1 : i + 3]
        return bool(after) and after[0] in _CONNECTORS and any(word in _POSSESSIVES for word in after[1:])

    def _modifies(self, i: int) -> bool:
        # "employee discount", "human resources": the person word qualifies the next noun.
        if i + 1 >= len(self.words) or self.cats[i + 1] != "":
            return False
        following = self.words[i + 1]
        if following in _FILLERS or following in _SHORT_FILLERS or following in _NEGATIONS:
            return False
        return not following.endswith("en")

    def reach(self, start: int, step: int, categories: tuple[str, ...]) -> int | None:
        """The first word of the categories from start on, across filler words only."""
        k = start + step
        while 0 <= k < len(self.words) and abs(k - start) <= _REACH:
            if self.cats[k] in categories:
                return k if self.is_staff(k, categories) else None
            if not self.is_filler(k):
                return None
            k += step
        return None


_ANY_PERSON = (_PERSON, _SOMEONE, _SERVICE)
_NAMED_PERSON = (_PERSON, _SOMEONE)
_REQUESTS = (_WANT, _WANT_AFTER, _CONTACT_EN, _CONTACT_DE, _ASK)


def _wants_human(clause: _Clause) -> bool:
    words, cats = clause.words, clause.cats
    if _asks_about_someone(words):
        return False
    negated = _negated(clause)
    if negated == "person":
        return False
    if negated == "bot" and (any(cat in _REQUESTS for cat in cats) or len(words) <= 4):
        return True
    return (
        _callback(clause)
        or any(_contact(clause, i) for i, cat in enumerate(cats) if cat in (_CONTACT_EN, _CONTACT_DE))
        or any(_want(clause, i) for i, cat in enumerate(cats) if cat == _WANT)
        or any(clause.reach(i, -1, _NAMED_PERSON) is not None for i, c in enumerate(cats) if c == _WANT_AFTER)
        or any(
            clause.reach(i, step, (_PERSON,)) is not None
            for i, cat in enumerate(cats)
            if cat == _ASK
            for step in (1, -1)
        )
        or _short_request(clause)
    )


def _asks_about_someone(words: list[str]) -> bool:
    """Whether the clause asks who someone is ("who is the contact person?"), not for someone."""
    opening = words[:2]
    if any(word in _FIRST_PERSON for word in words):
        return False
    if any(word in _INFO_QUESTION for word in opening):
        return True
    return len(opening) == 2 and opening[0] in _HOW_MANY[0] and opening[1] in _HOW_MANY[1]


def _negated(clause: _Clause) -> str | None:
    """What a negation in the clause denies: "person" (the request), "bot", or None."""
    words, cats = clause.words, clause.cats
    if words[0] in _RHETORICAL:
        return None  # "warum kann ich nicht mit einem Mitarbeiter sprechen?" still asks for one
    denied: str | None = None
    for j, word in enumerate(words):
        if word not in _NEGATIONS and word not in _NO:
            continue
        if any(earlier in _ABILITY for earlier in words[max(0, j - 3) : j]):
            continue  # "ich kann keinen Mitarbeiter erreichen" complains that no one answers
        target = _negation_target(clause, j, narrow=word in _NO)
        if target == "person":
            return "person"
        denied = target or denied
    # German puts "nicht" last: "Einen Mitarbeiter brauche ich nicht".
    if (
        words[-1] in ("nicht", "not")
        and any(cat in _REQUESTS for cat in cats[:-1])
        and any(cat in _ANY_PERSON for cat in cats)
    ):
        return "person"
    return denied


def _negation_target(clause: _Clause, j: int, *, narrow: bool) -> str | None:
    for k in range(j + 1, min(len(clause.words), j + 1 + _REACH)):
        category = clause.cats[k]
        if category in _ANY_PERSON or category == _CALLBACK:
            return "person"
        if category == _BOT:
            return "bot"
        if category == _WANT and narrow:
            continue  # "no need for a human"
        if category in _REQUESTS and not narrow:
            continue  # "don't want to talk to a human"
        if narrow and category != _ADJ and clause.words[k] not in ("a", "an", "the", "for", "fuer", "need"):
            return None
        if not narrow and not clause.is_filler(k):
            return None
    return None


def _callback(clause: _Clause) -> bool:
    words = clause.words
    for i, category in enumerate(clause.cats):
        if category == _CALLBACK and not clause.belongs_elsewhere(i):
            return True
        if words[i] in _CALL_VERBS:
            near = words[max(0, i - 2) : i + 3]
            if any(word in ("me", "us", "mich", "uns") for word in near) and (
                words[i] in ("anrufen",) or any(word in _CALL_BACK for word in words[i + 1 : i + 6])
            ):
                return True
    return False


def _contact(clause: _Clause, i: int) -> bool:
    words = clause.words
    if words[i] in ("contact", "kontakt") and i + 1 < len(words) and words[i + 1] in _CONTACT_NOUN:
        return False  # "contact person" is a noun
    forward = clause.reach(i, 1, _ANY_PERSON)
    if forward is not None and not _speaks_a_language(clause, i, forward):
        return True
    backward = clause.reach(i, -1, _ANY_PERSON)
    if backward is None or _speaks_a_language(clause, backward, i):
        return False
    if clause.cats[i] == _CONTACT_DE:
        return True
    # English names the person after the verb, unless the person is to act: "can an agent call me".
    return any(word in ("me", "us") for word in words[i + 1 : i + 3])


def _speaks_a_language(clause: _Clause, first: int, last: int) -> bool:
    """Whether the clause asks which language someone speaks ("do your agents speak English?")."""
    if not any(word in _LANGUAGES for word in clause.words):
        return False
    return not any(word in ("to", "with", "mit", "zu", "zum") for word in clause.words[first:last])


def _want(clause: _Clause, i: int) -> bool:
    words = clause.words
    if words[i] == "will" and not any(word in ("ich", "i") for word in words[max(0, i - 2) : i + 2]):
        return False  # English "will" is the future, German "will" wants
    if words[i] == "like" and not any(
        word in ("would", "d", "id", "wd") for word in words[max(0, i - 2) : i]
    ):
        return False
    person = clause.reach(i, 1, _NAMED_PERSON)
    if person is None:
        return False
    if clause.cats[person] == _PERSON:
        return True
    # Anybody is asked for only when nothing else follows: "I need someone", not "... to sign".
    for k in range(person + 1, len(words)):
        if words[k] in _CONNECTORS:
            return True
        if not clause.is_filler(k) and clause.cats[k] == "":
            return False
    return True


def _short_request(clause: _Clause) -> bool:
    """Whether a short clause is little more than a person: "human!", "echter Mensch bitte"."""
    words, cats = clause.words, clause.cats
    if len(words) > _SHORT_REQUEST_TOKENS:
        return False
    named = weak = False
    for i, (word, category) in enumerate(zip(words, cats, strict=True)):
        if category in (_PERSON, _CALLBACK) and clause.is_staff(i, (_PERSON, _CALLBACK)):
            named = True
        elif category in (_SOMEONE, _SERVICE) and clause.is_staff(i, (_SOMEONE, _SERVICE)):
            weak = weak or category == _SOMEONE
        elif category not in (_WANT, _ADJ) and word not in _SHORT_FILLERS:
            return False
    asked = any(
        cat in (_WANT, _ADJ) or word in ("please", "pls", "plz", "bitte")
        for word, cat in zip(words, cats, strict=True)
    )
    return named or (weak and asked)


def _human_requested(clauses: list[list[str]]) -> bool:
    for tokens in clauses:
        part: list[str] = []
        for token in [*tokens, "but"]:
            if token in _CLAUSE_WORDS:
                if part and _wants_human(_Clause(part)):
                    return True
                part = []
            else:
                part.append(token)
    return False


# --- Small talk and complaints ---------------------------------------------------------------

_GREETING = _words(
    "hi hii hiii hallo halloo hello helo hey heyy heya hej moin moinsen servus gruezi hoi salut howdy "
    "hiya yo greetings halloechen hallihallo huhu tach tag morgen morning evening afternoon abend "
    "gruess gruss"
)
_GREETING_FILLERS = _words(
    "good guten gott dich there all everyone everybody zusammen team liebes liebe dear leute folks "
    "guys ihr bot assistant miteinander frau herr mr mrs ms sir madam support erstmal how are you "
    "wie geht gehts es dir ihnen euch doing is anyone anybody jemand da ist moin schoenen"
)
# "Ich habe eine Frage" opens a conversation: the greeting's answer ("ask me") fits it.
_OPENER = _words("i have a quick short small question ich habe hab eine kurze frage one another noch")
_THANKS = _words(
    "thanks thank thx thnx thanx tx ty tysm danke dankeschoen dank merci cheers appreciate appreciated "
    "helpful hilfreich helped helps hilft geholfen weitergeholfen"
)
_THANKS_FILLERS = _words(
    "you u so very much a lot many vielen viel herzlichen herzlich lieben besten tausend mal dir "
    "ihnen euch for the your die ihre deine info infos information informationen help hilfe answer "
    "antwort reply response quick fast schnell schnelle schnellen super great perfect perfekt top ok "
    "okay k alles klar gut sehr nice cool awesome wonderful excellent toll prima klasse spitze got it "
    "verstanden understood i see ah aha oh das that this hat has mir me es again nochmal good fine "
    "alright genau yes ja jo will do try werde probieren ausprobieren mache ich ist is was war no "
    "nein und and schoen schon erstmal fuer dass answered beantwortet question frage my meine "
    "wunderbar lovely brilliant hilfreich vielmals"
)
_GOODBYE = _words(
    "bye byebye goodbye tschuess tschues tschuss tschau ciao adieu cya ttyl wiedersehen wiederhoeren "
    "wiederschauen ade"
)
_GOODBYE_PAIRS = frozenset(
    tuple(pair.split("+"))
    for pair in _words(
        "see+you see+ya bis+dann bis+bald bis+spaeter bis+morgen bis+zum schoenen+tag schoenen+abend "
        "schoenes+wochenende schoenen+sonntag nice+day good+day great+day nice+weekend good+one "
        "take+care thats+all that+all das+wars das+war das+alles good+night gute+nacht machs+gut "
        "nothing+else sonst+nichts nichts+mehr im+done thats+it"
    )
)
_GOODBYE_FILLERS = _words(
    "noch ihnen dir euch auch also for now then dann so ok okay a have nice good great day weekend "
    "wochenende tag abend schoenen schoenes einen ein see you ya soon later bis bald spaeter take care "
    "thats that is all it das wars war es alles ist nothing else sonst nichts mehr im i am done from "
    "me my side von meiner seite und and vielen gute nacht machs gut nochmal again wieder auf "
    "schoen schoene wuensche ich wish too sonntag zum naechsten mal one night morgen"
)
# A complaint: a negation with what the answer failed at, or a word that says it was wrong.
_COMPLAINT_NEGATIONS = _words(
    "not no dont doesnt didnt isnt wasnt arent nicht nichts kein keine keinen nie never"
)
_COMPLAINT_CORE = _words(
    "help helps helped helpful helping hilfe answer answers answered asked ask meant mean wanted looking "
    "question correct right true understand understood it es hilft geholfen hilfreich weiter "
    "weitergeholfen meinte gemeint gefragt frage wollte gesucht richtig stimmt verstanden verstehe "
    "versteht passt bringt beantwortet antwort"
)
_COMPLAINT_WRONG = _words(
    "wrong incorrect falsch falsche falscher falsches useless unhelpful nutzlos unbrauchbar sinnlos "
    "quatsch unsinn nonsense irrelevant pointless misunderstood missverstanden"
)
_COMPLAINT_FILLERS = _words(
    "that this thats its is was the your you me my i what im of for at all really quite very totally "
    "completely absolutely just sorry unfortunately no nope nein hmm hm ok okay still bot so well "
    "but das es ist war mir mich ich sie du die der antwort ihre deine meine mein leider wirklich "
    "echt total voellig komplett absolut ueberhaupt gar noch immer eben also ja doch am an a to hat "
    "haben hast habe have has do does did danke thanks aber even are auf on"
)
_SMALL_TALK = (
    _GREETING
    | _GREETING_FILLERS
    | _OPENER
    | _THANKS
    | _THANKS_FILLERS
    | _GOODBYE
    | _GOODBYE_FILLERS
    | _COMPLAINT_NEGATIONS
)
_SMALL_TALK_INDEX = _FuzzyIndex([word for word in _GREETING | _THANKS | _GOODBYE if len(word) >= 5])


@lru_cache(maxsize=4096)
def _small_talk_word(token: str) -> str:
    if token in _SMALL_TALK or token in _COMPLAINT_CORE or token in _COMPLAINT_WRONG:
        return token
    return _SMALL_TALK_INDEX.nearest(token) or token


def _complaint(tokens: list[str], asked: bool) -> bool:
    allowed = _COMPLAINT_NEGATIONS | _COMPLAINT_CORE | _COMPLAINT_WRONG | _COMPLAINT_FILLERS
    if not all(token in allowed for token in tokens):
        return False
    denied = any(token in _COMPLAINT_NEGATIONS for token in tokens) and any(
        token in _COMPLAINT_CORE for token in tokens
    )
    # "Is that wrong?" asks; "that's wrong" and "that doesn't help?" complain.
    return denied or (not asked and any(token in _COMPLAINT_WRONG for token in tokens))


def _small_talk(tokens: list[str]) -> Intent | None:
    words = [_small_talk_word(token) for token in tokens]
    if not all(word in _SMALL_TALK for word in words):
        return None
    # A pair may have one word between: "das war alles", "einen schönen Tag".
    pairs = set(pairwise(words)) | set(zip(words, words[2:], strict=False))
    if any(word in _GOODBYE for word in words) or pairs & _GOODBYE_PAIRS:
        return "goodbye"
    if any(word in _THANKS for word in words):
        return "thanks"
    if any(word in _GREETING for word in words):
        return "greeting"
    if any(word in ("question", "frage") for word in words) and all(word in _OPENER for word in words):
        return "greeting"
    return None


def detect_intent(text: str) -> Intent:
    """Tell what a customer's message wants; anything unclear is a question."""
    clauses = _clauses(text)
    if not clauses:
        return "question"
    if _human_requested(clauses):
        return "human"
    tokens = [token for clause in clauses for token in clause]
    if len(tokens) > _SMALL_TALK_TOKENS:
        return "question"
    if _complaint(tokens, asked="?" in text):
        return "not_helpful"
    return _small_talk(tokens) or "question"


# --- Language --------------------------------------------------------------------------------

# Function words and words of chat small talk only one of the two languages has; words both
# share ("in", "an", "was", "will", "also") are left out, so they never tip the balance.
_GERMAN = _words(
    "der das und ist ich nicht ein eine einen einem einer mit mein meine meinen meinem meiner wie wo "
    "wann warum wieso kann koennen bitte danke dankeschoen hallo mir mich sie wir ihr es auf fuer von "
    "zu zum zur den dem des auch noch nur schon aber oder wenn dass hat habe haben sind bin bist wird "
    "werden moechte gibt kein keine keinen nein ja sehr gut tschuess tschues moin servus guten morgen "
    "tag vielen schoen schoenen im bei nach ueber unter vom beim dann jetzt hier mal doch welche wer "
    "weshalb mitarbeiter mensch menschen sprechen reden frage antwort hilfe vertrag gruess gott "
    "wiedersehen bis bald brauche muss meinte hilft geholfen falsch richtig leider die ihre ihren "
    "ihrem ihrer dieses diese dieser sich wurde als mehr weil damit jeder alle alles viele rund uhr "
    "gegen ohne soll wurden ob"
)
_ENGLISH = _words(
    "the a and is i not to with my how what where when why can could would please thanks thank you "
    "your it of for on do does did dont doesnt didnt have has are be this that there here hello hi "
    "hey bye goodbye yes no me we our they but or if about from get want need talk speak human person "
    "help just some any should which who its im id thx ty question answer wrong morning good "
    "contract nice day see at by as were been than then them their these those all one out up more "
    "only other after before over into per each every new year time"
)
_GERMAN_LETTERS = re.compile(r"[äöüß]")


def detect_language(text: str) -> Language | None:
    """Tell whether a message is German or English by its function words; None when it can't tell."""
    # A word with an umlaut or ß counts once for German (a name in English text tips nothing
    # alone); it is looked for before casefolding, which writes ß as ss.
    composed = unicodedata.normalize("NFKC", _bounded(text)).lower()
    german = sum(1 for word in composed.split() if _GERMAN_LETTERS.search(word))
    english = 0
    for clause in _clauses(text):
        for token in clause:
            german += token in _GERMAN
            english += token in _ENGLISH
    if german > english:
        return "de"
    if english > german:
        return "en"
    return None
