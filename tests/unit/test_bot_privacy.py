"""Personal data is masked before text goes to an external model, and nothing else is."""

from __future__ import annotations

import time

import pytest

from backend.bot.privacy import MASK_KINDS, mask_personal_data, parse_mask_setting

ALL = MASK_KINDS


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Meine IBAN ist DE89 3704 0044 0532 0130 00, bitte.", "Meine IBAN ist [IBAN], bitte."),
        ("IBAN: DE89370400440532013000", "IBAN: [IBAN]"),
        ("bitte auf de89 3704 0044 0532 0130 00 überweisen", "bitte auf [IBAN] überweisen"),
        ("Konto DE44 5001 0517 5407 3249 31.", "Konto [IBAN]."),
        ("UK account GB82 WEST 1234 5698 7654 32 please", "UK account [IBAN] please"),
        ("NL91ABNA0417164300 and AT61 1904 3002 3457 3201", "[IBAN] and [IBAN]"),
        ("CH93 0076 2011 6238 5295 7 (Schweiz)", "[IBAN] (Schweiz)"),
        ("FR14 2004 1010 0505 0001 3M02 606", "[IBAN]"),
        ("IT60 X054 2811 1010 0000 0123 456", "[IBAN]"),
        ("PL61 1090 1014 0000 0712 1981 2874", "[IBAN]"),
        ("BE68 5390 0754 7034", "[IBAN]"),
        # A country outside the length table: the mod-97 check alone decides.
        ("LY83 0020 4800 0020 1001 2036 1", "[IBAN]"),
        # Followed by more capitals: the IBAN ends where its country's length says.
        ("DE89 3704 0044 0532 0130 00 BIC COBADEFFXXX", "[IBAN] BIC COBADEFFXXX"),
        # A code that fails in front does not hide the real IBAN behind it.
        ("XX12 DE89 3704 0044 0532 0130 00", "XX12 [IBAN]"),
    ],
)
def test_ibans_are_masked(text: str, expected: str) -> None:
    assert mask_personal_data(text, ALL) == expected


@pytest.mark.parametrize(
    "text",
    [
        "DE89 3704 0044 0532 0130 07",  # one digit off: fails mod 97
        "DE12 3456 7890 1234 5678 90",
        "Artikel AB12CDEFGHIJKLMNOP",
        "DE893704004405320130000",  # one character too long for Germany
        "Gutscheincode SUMMER2024SALE1234",
    ],
)
def test_strings_that_are_no_iban_stay(text: str) -> None:
    assert "[IBAN]" not in mask_personal_data(text, ALL)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Karte 4111 1111 1111 1111 gültig bis 12/26", "Karte [CARD] gültig bis 12/26"),
        ("card 4111-1111-1111-1111.", "card [CARD]."),
        ("Mastercard 5500 0000 0000 0004", "Mastercard [CARD]"),
        ("5555555555554444", "[CARD]"),
        ("Amex 3782 822463 10005 expires 01/27", "Amex [CARD] expires 01/27"),
        ("Discover: 6011 1111 1111 1117", "Discover: [CARD]"),
        ("alte Visa 4222222222222", "alte Visa [CARD]"),
        ("UnionPay 6212 3456 7890 1234 569", "UnionPay [CARD]"),
        ("Nr. 12 4111 1111 1111 1111 belastet", "Nr. 12 [CARD] belastet"),
    ],
)
def test_card_numbers_are_masked(text: str, expected: str) -> None:
    assert mask_personal_data(text, ALL) == expected


@pytest.mark.parametrize(
    "text",
    [
        "4111 1111 1111 1112",  # fails Luhn
        "Bestellnummer 1234567812345678",
        "Sendung 12345678901234567",
        "Rechnung 1234567890123 vom 03.04.2024",
        "Zahlen 4111 1111 1111 11111 1111",  # too long as a whole, no valid part
    ],
)
def test_numbers_that_are_no_card_stay(text: str) -> None:
    assert "[CARD]" not in mask_personal_data(text, ALL)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Schreib an max.mustermann@web.de.", "Schreib an [EMAIL]."),
        ("jürgen.müller@gmx.de hat geschrieben", "[EMAIL] hat geschrieben"),
        ("Contact: a.b+support@example.co.uk!", "Contact: [EMAIL]!"),
        ("<info@firma-xyz.de>", "<[EMAIL]>"),
        ("mailto:first_last@sub.domain.org", "mailto:[EMAIL]"),
        ("zwei: a@b.de, c@d.com", "zwei: [EMAIL], [EMAIL]"),
    ],
)
def test_email_addresses_are_masked(text: str, expected: str) -> None:
    assert mask_personal_data(text, ALL) == expected


@pytest.mark.parametrize("text", ["user@localhost", "a @ b", "@handle auf Twitter", "x@y.1"])
def test_strings_that_are_no_email_stay(text: str) -> None:
    assert mask_personal_data(text, ALL) == text


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Ruf an: +49 171 1234567", "Ruf an: [PHONE]"),
        ("Tel. +49 (0)30 1234567", "Tel. [PHONE]"),
        ("+49-171-1234567 oder", "[PHONE] oder"),
        ("+491711234567", "[PHONE]"),
        ("0049 171 1234567", "[PHONE]"),
        ("Handy 0171 1234567", "Handy [PHONE]"),
        ("meine Nummer ist 01711234567.", "meine Nummer ist [PHONE]."),
        ("Festnetz (030) 123456", "Festnetz [PHONE]"),
        ("030/1234567", "[PHONE]"),
        ("Tel.-Nr.: 0171-1234567", "Tel.-Nr.: [PHONE]"),
        ("Rufnummer 089 12345678", "Rufnummer [PHONE]"),
        ("0171 / 123 45 67 ab 18 Uhr", "[PHONE] ab 18 Uhr"),
        ("030 1234567 / 0171 7654321", "[PHONE] / [PHONE]"),
        ("Call me at (555) 123-4567.", "Call me at [PHONE]."),
        ("my cell is 555-123-4567", "my cell is [PHONE]"),
        ("or 555.123.4567", "or [PHONE]"),
        ("+1 555 123 4567", "[PHONE]"),
        ("UK office +44 20 7946 0958", "UK office [PHONE]"),
        ("Tel 0171 1234567, Vertrag 0123456789", "Tel [PHONE], Vertrag 0123456789"),
    ],
)
def test_phone_numbers_are_masked(text: str, expected: str) -> None:
    assert mask_personal_data(text, ALL) == expected


@pytest.mark.parametrize(
    "text",
    [
        "am 12.03.2024 um 14:30",
        "Lieferung am 03/12/2024",
        "Termin 01-02-2024",
        "seit 2024-03-12 08:15",
        "Öffnungszeiten 08:00-17:00 Uhr",
        "um 14.30 Uhr",
        "Vertrag 12345",
        "Vertragsnummer 0123456789",
        "Kundennummer: 0123 456789",
        "Bestellung #0012345678",
        "Order 123-456-7890",
        "contract no. 0815 4711 00",
        "Der Preis ist 1.299,00 €",
        "nur 0,99 € im Monat",
        "10115 Berlin",
        "01067 Dresden",
        "im Jahr 2024",
        "zwischen 1990 und 2024",
        "ISBN 978-3-16-148410-0",
        "Version 10.0.19045",
        "Raum 0.12, Gebäude 3",
    ],
)
def test_dates_times_amounts_and_references_stay(text: str) -> None:
    assert mask_personal_data(text, ALL) == text


def test_only_the_chosen_kinds_are_masked() -> None:
    text = "IBAN DE89 3704 0044 0532 0130 00, Mail max@web.de, Tel 0171 1234567, Karte 4111 1111 1111 1111"
    assert mask_personal_data(text, frozenset({"email"})) == (
        "IBAN DE89 3704 0044 0532 0130 00, Mail [EMAIL], Tel 0171 1234567, Karte 4111 1111 1111 1111"
    )
    assert mask_personal_data(text, frozenset()) == text
    assert mask_personal_data(text, ALL) == "IBAN [IBAN], Mail [EMAIL], Tel [PHONE], Karte [CARD]"


def test_an_unmasked_iban_is_not_taken_for_a_phone_or_card() -> None:
    text = "DE89 3704 0044 0532 0130 00 und 0171 1234567"
    assert mask_personal_data(text, frozenset({"phone", "card"})) == "DE89 3704 0044 0532 0130 00 und [PHONE]"


def test_an_address_with_digits_is_one_email() -> None:
    assert mask_personal_data("01711234567@mail.de", ALL) == "[EMAIL]"


def test_unknown_kinds_are_refused() -> None:
    with pytest.raises(ValueError, match="iban"):
        mask_personal_data("x", frozenset({"passport"}))


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("iban,card,email,phone", ALL),
        ("IBAN, Card ,EMAIL", frozenset({"iban", "card", "email"})),
        ("phone,", frozenset({"phone"})),
        ("", frozenset()),
        ("  ", frozenset()),
    ],
)
def test_the_mask_setting_is_parsed(value: str, expected: frozenset[str]) -> None:
    assert parse_mask_setting(value) == expected


def test_an_unknown_mask_name_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match=r"unknown kind of personal data to mask: adress.*email"):
        parse_mask_setting("iban,adress")


ADVERSARIAL = [
    "a" * 4000,
    "1" * 4000,
    "1 " * 2000,
    "1-" * 2000,
    "0 " * 2000,
    "a@" * 2000,
    "a." * 2000 + "@",
    "a@" + "a." * 2000,
    "a" * 3990 + "@example",
    "DE00" * 1000,
    "DE00 " * 800,
    "+" * 4000,
    "(0" * 2000,
    "+(1 " * 1000,
    "0171 " * 800,
    "4111 " * 800,
    "555-123-4567-" * 300,
    "555.123.4567." * 300,
    "Vertrag 0171 " * 300,
    ("DE12 a@b. +49 (0) 0171/1-2 ") * 150,
]


@pytest.mark.parametrize("text", ADVERSARIAL, ids=[f"{t[:6]!r}" for t in ADVERSARIAL])
def test_masking_is_linear_on_adversarial_input(text: str) -> None:
    started = time.perf_counter()
    mask_personal_data(text, ALL)
    small = time.perf_counter() - started
    started = time.perf_counter()
    mask_personal_data(text * 4, ALL)
    large = time.perf_counter() - started
    # Generous bounds: catastrophic backtracking takes seconds here, and grows with the square.
    assert small < 0.5
    assert large < max(2.0, 12 * small)
