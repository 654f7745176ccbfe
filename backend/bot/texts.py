"""What the bot says besides knowledge answers, in German and English."""

from __future__ import annotations

from typing import Literal

Language = Literal["de", "en"]

_TEXTS: dict[str, dict[Language, str]] = {
    "greeting": {
        "en": "Hello! I'm the assistant. Ask me your question, or press “Talk to a person” at any time.",
        "de": "Hallo! Ich bin der Assistent. Stellen Sie mir Ihre Frage, oder wählen Sie jederzeit "
        "„Mit einem Menschen sprechen“.",
    },
    "thanks": {
        "en": "You're welcome! Is there anything else I can help you with?",
        "de": "Gern geschehen! Kann ich Ihnen noch bei etwas anderem helfen?",
    },
    "goodbye": {
        "en": "Thank you for your message. Goodbye!",
        "de": "Vielen Dank für Ihre Nachricht. Auf Wiedersehen!",
    },
    "rephrase": {
        "en": "I'm sorry that didn't help. Could you describe your question in other words? "
        "If you prefer, I'll connect you with a person.",
        "de": "Das tut mir leid. Können Sie Ihre Frage mit anderen Worten beschreiben? "
        "Gern verbinde ich Sie auch mit einem Mitarbeiter.",
    },
    "clarify": {
        "en": "I'm not sure which topic you mean. Is it about “{first}” or “{second}”? "
        "Reply with 1 or 2, or describe your question in more detail.",
        "de": "Ich bin nicht sicher, welches Thema Sie meinen. Geht es um „{first}“ oder um „{second}“? "
        "Antworten Sie mit 1 oder 2, oder beschreiben Sie Ihre Frage genauer.",
    },
    "answer_source": {
        "en": "Source: {title}",
        "de": "Quelle: {title}",
    },
    # Hand-overs: the first sentence says why, the second what happens next.
    "handover.customer_request": {
        "en": "Of course, I'm connecting you with a person.",
        "de": "Gern, ich verbinde Sie mit einem Mitarbeiter.",
    },
    "handover.low_confidence": {
        "en": "I'm not sure I can answer that correctly, so I'm handing your question to a person "
        "rather than guessing.",
        "de": "Darauf kann ich nicht sicher richtig antworten. Statt zu raten, gebe ich Ihre Frage "
        "an einen Mitarbeiter weiter.",
    },
    "handover.no_knowledge": {
        "en": "I can't answer questions on my own yet, so I'm handing your question to a person.",
        "de": "Ich kann noch keine Fragen selbst beantworten und gebe Ihre Frage an einen "
        "Mitarbeiter weiter.",
    },
    "handover.repeated_failure": {
        "en": "I couldn't help you so far, so I'm handing the chat to a person.",
        "de": "Ich konnte Ihnen bisher nicht weiterhelfen und übergebe den Chat an einen Mitarbeiter.",
    },
    "handover.bot_error": {
        "en": "Something went wrong on my side, so I'm handing the chat to a person.",
        "de": "Bei mir ist etwas schiefgegangen, daher übergebe ich den Chat an einen Mitarbeiter.",
    },
    "next.online": {
        "en": "A supporter will join this chat shortly; please stay on this page.",
        "de": "Gleich übernimmt ein Mitarbeiter diesen Chat; bitte bleiben Sie auf dieser Seite.",
    },
    "next.offline": {
        "en": "No supporter is online right now. Your chat is waiting in the queue, and the first "
        "supporter who comes back will answer here; you can keep this page open or come back "
        "later on this device.",
        "de": "Gerade ist kein Mitarbeiter online. Ihr Chat wartet in der Warteschlange, und der "
        "erste Mitarbeiter, der zurück ist, antwortet hier; Sie können diese Seite offen lassen "
        "oder später auf diesem Gerät wiederkommen.",
    },
}


def say(key: str, language: Language | None, **values: str) -> str:
    """The bot's sentence for `key` in the language (English when unknown)."""
    text = _TEXTS[key][language or "en"]
    return text.format(**values) if values else text


def handover_text(reason: str, language: Language | None, supporters_online: bool) -> str:
    """Why the bot hands over, and what happens next."""
    key = f"handover.{reason}" if f"handover.{reason}" in _TEXTS else "handover.low_confidence"
    next_key = "next.online" if supporters_online else "next.offline"
    return f"{say(key, language)} {say(next_key, language)}"
