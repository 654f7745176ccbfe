"""The bot reads what a customer's message wants, in German or English, typed the way people type."""

from __future__ import annotations

import time
from typing import get_args

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from backend.bot.intent import Intent, detect_intent, detect_language

INTENTS = frozenset(get_args(Intent))

# HELD-OUT: written before the rules in backend/bot/intent.py and never tuned against. Its accuracy
# is reported, not required case by case; a miss here is a known miss, not a reason to add a word.
HELD_OUT_INTENT: list[tuple[str, str]] = [
    ("Can you put me through to a real person please", "human"),
    ("I'd like to speak with someone from your team", "human"),
    ("pls get me a live agent", "human"),
    ("is there a human I can chat with?", "human"),
    ("I need to talk to somebody, this isn't working", "human"),
    ("Ich will mit einem Mitarbeiter telefonieren", "human"),
    ("Können Sie mich bitte an einen Menschen weiterleiten?", "human"),
    ("bitte einen echten menschen", "human"),
    ("Kundenberater bitte", "human"),
    ("Gibt es hier auch echte Menschen? Ich möchte mit jemandem sprechen", "human"),
    ("ich moechte gerne mit jemandem vom support reden", "human"),
    ("MENSCH BITTE!!! 😡", "human"),
    ("speak to agent", "human"),
    ("can i talk to an actual person", "human"),
    ("Ich hätte gern einen Rückruf", "human"),
    ("connect me to a representive", "human"),
    ("Does a person need a helmet on an e-bike?", "question"),
    ("My colleague wants to lease a bike too, how does that work?", "question"),
    ("Kann ich das Rad an einen Kollegen weitergeben?", "question"),
    ("Wie viele Mitarbeiter braucht mein Arbeitgeber für den Rahmenvertrag?", "question"),
    ("I don't want to talk to anyone, just tell me the deadline", "question"),
    ("Who do I call if my bike gets stolen?", "question"),
    ("Can my partner use the bike?", "question"),
    ("Ich habe gestern mit einem Mitarbeiter telefoniert, er sagte ich soll hier fragen", "question"),
    ("Guten Abend", "greeting"),
    ("hello there!", "greeting"),
    ("Hi 🙂", "greeting"),
    ("Grüß Gott", "greeting"),
    ("Thanks a lot!", "thanks"),
    ("Dankeschön 🙏", "thanks"),
    ("perfekt, vielen Dank", "thanks"),
    ("ciao", "goodbye"),
    ("Auf Wiedersehen", "goodbye"),
    ("have a nice day", "goodbye"),
    ("bis bald", "goodbye"),
    ("That didn't answer my question", "not_helpful"),
    ("Das ist nicht meine Frage", "not_helpful"),
    ("not helpful", "not_helpful"),
    ("Das bringt mir nichts", "not_helpful"),
    ("Hi, how long does the lease run?", "question"),
    ("Danke, und wie kann ich das Rad versichern?", "question"),
    ("ok", "question"),
    ("1", "question"),
    ("Was kostet die Versicherung?", "question"),
]
HELD_OUT_LANGUAGE: list[tuple[str, str | None]] = [
    ("Wie lange dauert die Lieferung?", "de"),
    ("What happens at the end of the lease?", "en"),
    ("👍", None),
    ("Hallo, I have a question about my contract", "en"),
    ("Tschüss", "de"),
    ("thx", "en"),
]
# Agreed before the first run; below it the approach, not a word list, needs rethinking.
HELD_OUT_FLOOR = 0.8


HUMAN = [
    # From the brief.
    "talk to a person",
    "can I speak to a human",
    "I want a real agent",
    "connect me with support staff",
    "operator please",
    "human!",
    "get me someone from customer service",
    "Mitarbeiter sprechen",
    "Ich möchte mit einem Menschen reden",
    "Kann ich bitte mit jemandem vom Kundenservice sprechen?",
    "bitte verbinden sie mich mit einem berater",
    "echter Mensch bitte",
    "Mitarbeiter!!",
    "menschlicher Ansprechpartner",
    "Rückruf von einem Mitarbeiter",
    "speek to a humen",
    "mitarbieter bitte",
    "ich will zum kundenserivce",
    "This bot is useless, let me talk to a person",
    # English.
    "I want to talk to a human",
    "Can I talk to someone about my invoice?",
    "I need a human",
    "HUMAN PLEASE",
    "real person please",
    "Please transfer me to an agent",
    "Could you connect me to a live agent?",
    "I'd like to speak to a representative",
    "Can I chat with a real person?",
    "get me a human 😤",
    "agent",
    "Representative.",
    "I need to speak with someone from support",
    "Is it possible to talk to a human being?",
    "escalate to a human please",
    "let me speak to your manager",
    "i want to talk to a real human not a bot",
    "talk to customer service",
    "Can someone from your team call me back?",
    "Please call me back",
    "I'd prefer to talk to a person",
    "can u connect me to someone",
    "need human asap",
    "hello? I want a person",
    "wanna talk to a human",
    "Can I get a human on the line?",
    "transfer me to a human agent",
    "I don't want to talk to a bot",
    "How can I reach a human?",
    "conect me to a persn",
    "speak to an agnet",
    "Can I speak with a staff member?",
    "I want to talk to an employee",
    "Why can't I talk to a human??",
    "👉 human pls 👈",
    "Human??",
    "agent!!!!!!",
    # German.
    "Ich moechte mit einem Mitarbeiter sprechen",
    "Koennen Sie mich mit einem Menschen verbinden?",
    "KANN ICH MIT EINEM MITARBEITER SPRECHEN",
    "Ich brauche einen Menschen 🙏",
    "Bitte einen Mitarbeiter",
    "Ich will mit einem echten Menschen chatten",
    "Verbinden Sie mich bitte mit dem Kundendienst",
    "Ich möchte mit einem Sachbearbeiter sprechen",
    "Gibt es einen Mitarbeiter, mit dem ich sprechen kann?",
    "Bitte leiten Sie mich an einen Mitarbeiter weiter",
    "Ich hätte gerne einen Ansprechpartner",
    "Kann ich mit einer Mitarbeiterin sprechen?",
    "Ich will mit einem Menschen sprechen und nicht mit einer Maschine",
    "Rückruf bitte",
    "Bitte um Rückruf",
    "Können Sie mich zurückrufen?",
    "Menschlicher Mitarbeiter bitte",
    "mit einem Mensch sprechen bitte",
    "Ich will einen Menschen!!!",
    "Ich moechte bitte mit dem Kundenservice telefonieren",
    "Kann mich jemand anrufen?",
    "Ich möchte mit dem Support-Team sprechen",
    "Bitte an einen Mitarbeiter weiterleiten",
    "Ich moechte mit jemandem persoenlich sprechen",
    "Kontakt zu einem Mitarbeiter bitte",
    "Mitarbieter sprechen bitte",
    "Ich muss mit einem Berater reden",
    "Kann ich bitte mit einem Menschen schreiben?",
    "Ich moechte einen Rueckruf",
    "Ich heiße Max und möchte mit einem Mitarbeiter sprechen",
    "Mitarbeiter sprechen 🙏🙏",
    "MENSCH",
    "Warum kann ich nicht mit einem Mitarbeiter sprechen?",
    "Ich kann keinen Mitarbeiter erreichen, bitte verbinden Sie mich",
    "Ich will keinen Bot, ich will einen Menschen",
    "Schöne Grüße, bitte einen Menschen",
    "Ich möchte mit Ihrem Chef sprechen",
    "Kann mir ein Mitarbeiter helfen?",
    "Hallo, ich möchte bitte mit einem Kundenberater sprechen",
    # Written after the first tuning round, to check that the rules, not the words, generalise.
    "Could I please be connected to one of your staff members?",
    "i would like to talk with a human being",
    "Can I get transferred to customer support",
    "please let me talk to somebody real",
    "real human needed",
    "I need a real person to look at my case",
    "any chance I can speak to someone?",
    "Can you escalate this to a supervisor?",
    "Hand me over to an agent",
    "Stop. Human.",
    "i want my money back get me a manager",
    "I demand to speak to a manager",
    "can i pls talk to sb from ur team",
    "I would prefer a human agent",
    "How do I get to talk to a human?",
    "talk to support",
    "agent please, this is urgent",
    "Customer service please",
    "I need help from a human",
    "Ich hätte gerne einen Menschen am Telefon",
    "Verbinde mich mit einem Mitarbeiter",
    "Ich will mit nem Menschen reden",
    "Bitte Mitarbeiter kontaktieren",
    "Gibt es eine Möglichkeit, mit einem Mitarbeiter zu sprechen?",
    "Wie erreiche ich einen Mitarbeiter?",
    "Ich brauche dringend einen Ansprechpartner",
    "jemanden vom Service bitte",
    "Menschlichen Support bitte",
    "ich will nen mitarbeiter",
    "Kann ich einen Berater sprechen?",
    "Ich möchte einen Termin mit einem Berater",
    "Bitte um Kontaktaufnahme durch einen Mitarbeiter",
    "Rufen Sie mich bitte an",
    "Hallo, können Sie mich bitte mit einer Person verbinden?",
    "Ich möchte das mit einem Mitarbeiter klären",
    "Bitte ruft mich zurück",
    "Ich brauche Hilfe von einem Mitarbeiter",
    "Kann ich einen Rückruf bekommen?",
    "Ich will mit jemandem reden der sich auskennt",
    "Könnte mich ein Mitarbeiter kontaktieren?",
]

NOT_HUMAN = [
    # Negated requests.
    "I don't need a human, just tell me the price",
    "no agent needed",
    "kein Mitarbeiter nötig",
    "Ich brauche keinen Menschen, nur die Antwort",
    "No need for a human, I just want the opening hours",
    "I don't want to speak to anyone, just answer the question",
    "I do not want to talk to an agent",
    "Please don't transfer me to a human, I'll wait",
    "Nicht mit einem Mitarbeiter verbinden, bitte nur die Info",
    "Ich möchte nicht mit einem Mitarbeiter sprechen",
    "no human please, just the link",
    "I don't need to speak to anyone",
    "Einen Mitarbeiter brauche ich nicht",
    # Questions that mention people.
    "Can another person ride my leased bike?",
    "Does my employer's HR staff see my contract?",
    "Mein Mitarbeiterausweis ist weg, was tun?",
    "How do I contact my employer about the lease?",
    "Kann mein Arbeitgeber den Vertrag kündigen?",
    "Who is the contact person for insurance claims?",
    "Can my colleague also lease a bike?",
    "My colleague wants to lease a bike as well",
    "Kann mein Kollege das Rad auch fahren?",
    "Do employees get a discount?",
    "Ich bin Mitarbeiter bei einer Stadtverwaltung und möchte wissen, ob ich leasen darf",
    "As an employee, am I allowed to lease two bikes?",
    "Wie viele Mitarbeiter muss eine Firma haben?",
    "What are the opening hours of customer service?",
    "Wann ist der Kundenservice erreichbar?",
    "What is the phone number of your customer service?",
    "Who can sign the contract for my company?",
    "Does the bike shop employee need to see my ID?",
    "My employer's staff already approved the request",
    "Is there a person limit for the company bike program?",
    "Can a family member use the bike?",
    "Mein Arbeitgeber hat 20 Mitarbeiter, lohnt sich das?",
    "Welche Sprachen sprechen Ihre Mitarbeiter?",
    "Do your agents speak English?",
    "I talked to an agent yesterday but nothing happened",
    "Ich habe mit einem Berater gesprochen, aber der Vertrag kam nie",
    "A customer service employee told me to ask here",
    "Can I transfer my lease to another person?",
    "How do I transfer the contract to a new employer?",
    "Ist eine Person als Zweitfahrer erlaubt?",
    "Can someone else pick up the bike for me?",
    "Human resources said I should ask you about the contract",
    "Is the human error covered by insurance?",
    "Do I need someone to sign the handover protocol?",
    "Who is my contact person at the leasing company?",
    "Wer ist mein Ansprechpartner bei meinem Arbeitgeber?",
    "Are you a bot or a human?",
    "Are you a real person?",
    "Bist du ein Mensch oder ein Bot?",
    "Mitarbeiterrabatt?",
    "Werden Mitarbeiter benachrichtigt, wenn ich kündige?",
    "Which employee benefits are included?",
    "Someone stole my bike, what now?",
    "Jemand hat mein Rad gestohlen",
    "Sprechen Sie Englisch?",
    "Should I talk to my colleague first?",
    "Muss ich meinen Chef fragen?",
    "Kann ich das Rad einem Freund leihen?",
    "I want to know whether an employee can lease two bikes",
    "Can I get someone else to pick up the bike?",
    "Können Sie mich beraten, welches Rad passt?",
    "Wann kommt mein Rückruf?",
    "Can my husband also use the bike?",
    "What happens if an employee leaves the company?",
    "Was passiert, wenn ein Mitarbeiter das Unternehmen verlässt?",
    "How many people can use one bike?",
    "Wir sind 50 Mitarbeiter, lohnt sich das?",
    "I spoke to a colleague and he said the insurance is included",
    "Muss ich mit meinem Arbeitgeber sprechen?",
    "Who should I contact about the damage?",
    "My boss wants to know the monthly costs",
    "Ich möchte keinen Rückruf, nur eine E-Mail",
    "Sind Ihre Mitarbeiter auch am Wochenende erreichbar?",
    "Does a human check my documents?",
    "Is the support team available on Saturday?",
    "I don't want a callback",
    "Kein Rückruf nötig, danke",
    "How do employees apply for the bike?",
    "Wie beantragen Mitarbeiter das Rad?",
    "What if I talk to my bank first?",
    "Can a person with a disability lease an adapted bike?",
    "Können zwei Personen das Rad nutzen?",
    "Was ist, wenn der Händler-Mitarbeiter das Rad falsch einstellt?",
    "Does the dealer's staff do the inspection?",
    "Gibt es ein Kontaktformular?",
    "Can I speak about the contract here?",
    "Ich habe keine Mitarbeiternummer",
    "My employee number is 12345",
    "I'm a human resources manager, how do I add employees?",
    "Does the insurance cover a colleague riding the bike?",
    "Soll ich vorher mit einem Steuerberater sprechen?",
    "Kann ich das Rad am Ende zurückkaufen?",
    "Wie kann ich verhindern, dass das Rad gestohlen wird?",
    "Welche Branche hat die meisten Mitarbeiter im Programm?",
]

GREETING = [
    "hi",
    "Hallo!",
    "guten Morgen",
    "moin",
    "hey there 👋",
    "servus",
    "Hello",
    "Hallo zusammen",
    "Good morning!",
    "Hi there",
    "Moin moin",
    "Guten Tag",
    "hey",
    "Hallöchen",
    "Grüezi",
    "hallo team",
    "Hey :)",
    "Hi, how are you?",
    "Hallo ihr Lieben",
    "Good evening",
    "Hey, wie gehts?",
]
NOT_GREETING = [
    "Hallo, wie kündige ich meinen Vertrag?",
    "Hi, my bike is broken",
    "Guten Morgen, wann kommt mein Rad?",
    "Hello, can I lease two bikes?",
    "Hallo, ich habe eine Frage zur Versicherung",
    "Hey, is the insurance included?",
    "Guten Tag, mein Akku lädt nicht mehr",
]

THANKS = [
    "thank you!",
    "thx",
    "Danke schön",
    "vielen dank, das hilft",
    "super, danke",
    "Thanks!",
    "danke",
    "Vielen Dank für die schnelle Antwort",
    "Thanks, that helped",
    "ok thanks",
    "alles klar, danke",
    "many thanks 🙏",
    "merci",
    "ty",
    "thank you so much",
    "Perfekt, danke dir",
    "Danke, das hat mir sehr geholfen",
    "Danke vielmals",
    "Vielen lieben Dank!",
    "Thank you very much for your help",
    "Super, vielen Dank für die Hilfe!",
    "Ah okay, danke!",
]
NOT_THANKS = [
    "thanks, but how do I return the bike?",
    "Danke, aber das Rad ist immer noch kaputt",
    "Danke. Wie lange dauert die Lieferung?",
    "Thank you for the answer, what about insurance?",
    "danke, wo finde ich den vertrag",
    "Thanks, and can I lease a second bike?",
]

GOODBYE = [
    "bye",
    "tschüss",
    "that's all, bye",
    "schönen Tag noch",
    "Tschüs!",
    "Goodbye",
    "see you",
    "Auf Wiederhören",
    "Das war's, danke",
    "thanks, bye",
    "Danke und tschüss",
    "bye bye 👋",
    "have a good one",
    "bis dann",
    "Einen schönen Abend noch!",
    "Ciao ciao",
    "Bis zum nächsten Mal",
    "ok bye",
    "Schönes Wochenende!",
    "good night",
]
NOT_GOODBYE = [
    "Bis wann muss ich das Rad zurückgeben?",
    "Can I say goodbye to my lease early?",
    "Schönen Tag, wie lange läuft mein Vertrag?",
    "bye, one more thing: where is my invoice?",
]

NOT_HELPFUL = [
    "that doesn't help",
    "that's not what I asked",
    "das hilft mir nicht",
    "nein, das meinte ich nicht",
    "wrong answer",
    "falsch",
    "This doesn't answer my question",
    "not what I meant",
    "Das ist falsch",
    "Die Antwort hilft mir leider nicht",
    "Sie haben mich nicht verstanden",
    "no, that's wrong",
    "Das war nicht hilfreich",
    "you didn't understand me",
    "useless answer",
    "Das hilft mir nicht weiter",
    "Das ist nicht die Antwort auf meine Frage",
    "That is not correct",
    "No, that's not it",
    "Stimmt nicht",
    "This is wrong",
    "You are not helping",
    "Hilft nicht",
]
NOT_NOT_HELPFUL = [
    "Das hilft mir nicht, wie kann ich den Vertrag kündigen?",
    "The app doesn't work",
    "I entered the wrong IBAN",
    "Is that wrong?",
    "That doesn't help, how do I cancel then?",
    "The bike is the wrong size",
    "Mein Akku hilft nicht mehr beim Bergauffahren",
    "Falsche Rechnung erhalten",
    "Not working: my app",
]

QUESTION_ODDITIES = [
    "",
    "   ",
    "👍",
    "😀😀😀",
    "ok",
    "123",
    "?!",
    "a" * 4000,
    "Hallo, I need Hilfe mit meinem contract",
    "asdf qwer zxcv",
    "Was kostet eine Inspektion?",
    "How long is the lease?",
    "\x00\u200b\ufeff",
    "Ζωή είναι ωραία",
    "Ich möchte wissen, wann mein Rad geliefert wird",
]


@pytest.mark.parametrize("text", HUMAN)
def test_a_request_for_a_person_is_recognised(text: str) -> None:
    assert detect_intent(text) == "human"


@pytest.mark.parametrize("text", NOT_HUMAN)
def test_a_mention_or_a_refusal_is_not_a_request_for_a_person(text: str) -> None:
    assert detect_intent(text) != "human"


@pytest.mark.parametrize(
    "text",
    [
        "Who is the contact person for insurance claims?",
        "Can another person ride my leased bike?",
        "I don't need a human, just tell me the price",
        "Kann mein Arbeitgeber den Vertrag kündigen?",
    ],
)
def test_questions_about_people_go_to_the_knowledge(text: str) -> None:
    assert detect_intent(text) == "question"


@pytest.mark.parametrize(
    ("texts", "expected"),
    [
        (GREETING, "greeting"),
        (THANKS, "thanks"),
        (GOODBYE, "goodbye"),
        (NOT_HELPFUL, "not_helpful"),
    ],
    ids=["greeting", "thanks", "goodbye", "not_helpful"],
)
def test_small_talk_and_complaints_are_recognised(texts: list[str], expected: str) -> None:
    wrong = {text: detect_intent(text) for text in texts if detect_intent(text) != expected}
    assert not wrong


@pytest.mark.parametrize(
    "text", NOT_GREETING + NOT_THANKS + NOT_GOODBYE + NOT_NOT_HELPFUL + QUESTION_ODDITIES
)
def test_anything_with_a_real_question_is_a_question(text: str) -> None:
    assert detect_intent(text) == "question"


def test_a_request_at_the_end_of_a_long_rant_still_reaches_a_person() -> None:
    rant = "Ich warte seit Wochen auf mein Rad und niemand meldet sich. " * 50
    assert detect_intent(rant + "Ich will jetzt mit einem Mitarbeiter sprechen!") == "human"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Wie kündige ich meinen Vertrag?", "de"),
        ("How do I cancel my contract?", "en"),
        ("Hallo!", "de"),
        ("thanks", "en"),
        ("danke", "de"),
        ("Ich moechte mit einem Mitarbeiter sprechen", "de"),
        ("Can I speak to a human?", "en"),
        ("Mitarbeiter!!", "de"),
        ("human!", "en"),
        ("speek to a humen", "en"),
        ("guten morgen", "de"),
        ("good morning", "en"),
        ("bitte", "de"),
        ("please", "en"),
        ("Straße", "de"),
        ("Hi, ich habe eine Frage zu meinem Vertrag", "de"),
        ("Hello, my Vertrag has a problem and I need help", "en"),
        ("Mein bike ist kaputt und ich brauche Hilfe", "de"),
        ("👍", None),
        ("ok", None),
        ("OK 👍", None),
        ("12345", None),
        ("", None),
        ("?!", None),
    ],
)
def test_the_language_is_read_from_function_words(text: str, expected: str | None) -> None:
    assert detect_language(text) == expected


def test_held_out_accuracy() -> None:
    intent_hits = [detect_intent(text) == want for text, want in HELD_OUT_INTENT]
    language_hits = [detect_language(text) == want for text, want in HELD_OUT_LANGUAGE]
    hits = intent_hits + language_hits
    accuracy = sum(hits) / len(hits)
    misses = [case for case, hit in zip(HELD_OUT_INTENT + HELD_OUT_LANGUAGE, hits, strict=True) if not hit]
    print(f"held-out accuracy {accuracy:.2%} ({sum(hits)}/{len(hits)}); misses: {misses}")
    assert accuracy >= HELD_OUT_FLOOR, misses


@settings(deadline=200, max_examples=300)
@given(st.text(max_size=4000))
def test_any_text_gets_an_intent_and_a_language_quickly(text: str) -> None:
    assert detect_intent(text) in INTENTS
    assert detect_language(text) in ("de", "en", None)


@settings(deadline=200, max_examples=100)
@given(
    st.lists(
        st.sampled_from(
            ["human", "mitarbieter", "not", "bitte", "sprechen", "kein", "talk", "to", ",", "?", "😀", "ß"]
        )
        | st.text(alphabet="abcdefghijklmnopqrstuvwxyzäöü", min_size=1, max_size=30),
        max_size=700,
    ).map(" ".join)
)
def test_word_salad_gets_an_intent_quickly(text: str) -> None:
    assert detect_intent(text) in INTENTS


def test_the_longest_message_is_classified_in_milliseconds() -> None:
    words = [f"wort{i}lang{i * 7919 % 10007}x" for i in range(400)]
    text = " ".join(words)[:4000]
    started = time.perf_counter()
    assert detect_intent(text) == "question"
    detect_language(text)
    assert time.perf_counter() - started < 0.25
