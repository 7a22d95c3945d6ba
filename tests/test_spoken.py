"""spoken.py: everything spoken is written out in the routine's language before synthesis, so no
engine reads a symbol: durations, numbers, ``x``, ``%`` and ``/``, in each vocabulary."""

from __future__ import annotations

import re

import pytest

from voicecoach.model import EventKind
from voicecoach.pipeline import Settings, plan
from voicecoach.script import parse_routine
from voicecoach.vocab import available_languages, load_vocabulary

CASES = {  # text -> what each language says
    "Hold for 1m30s.": {
        "en": "Hold for one minute thirty seconds.", "de": "Hold for eine Minute dreißig Sekunden.",
        "es": "Hold for un minuto treinta segundos.", "fr": "Hold for une minute trente secondes."},
    "5s, 1h, 2min, 250ms": {
        "en": "five seconds, one hour, two minutes, two hundred and fifty milliseconds",
        "de": "fünf Sekunden, eine Stunde, zwei Minuten, zweihundertfünfzig Millisekunden",
        "es": "cinco segundos, una hora, dos minutos, doscientos cincuenta milisegundos",
        "fr": "cinq secondes, une heure, deux minutes, deux cent cinquante millisecondes"},
    "3x10 at 50%": {
        "en": "three times ten at fifty percent", "de": "drei mal zehn at fünfzig Prozent",
        "es": "tres veces diez at cincuenta por ciento", "fr": "trois fois dix at cinquante pour cent"},
    "left/right, 10/side, 2/3": {
        "en": "left or right, ten per side, two of three", "de": "left oder right, zehn pro side, zwei von drei",
        "es": "left o right, diez por side, dos de tres", "fr": "left ou right, dix par side, deux sur trois"},
    "Hold 3 x.": {"en": "Hold three times.", "de": "Hold drei mal.", "es": "Hold tres veces.", "fr": "Hold trois fois."},
    "21 and 71": {
        "en": "twenty-one and seventy-one", "de": "einundzwanzig and einundsiebzig",
        "es": "veintiuno and setenta y uno", "fr": "vingt et un and soixante et onze"},
    "21s, 31m, 1m21s": {  # a number counting a unit: Spanish "uno" loses its o, French units are feminine
        "en": "twenty-one seconds, thirty-one minutes, one minute twenty-one seconds",
        "de": "einundzwanzig Sekunden, einunddreißig Minuten, eine Minute einundzwanzig Sekunden",
        "es": "veintiún segundos, treinta y un minutos, un minuto veintiún segundos",
        "fr": "vingt et une secondes, trente et une minutes, une minute vingt et une secondes"},
}
DECIMALS = {"en": ("1.5s", "one point five seconds"), "de": ("1,5s", "eins Komma fünf Sekunden"),
            "es": ("1,5s", "uno coma cinco segundos"),
            "fr": ("1,5s", "un virgule cinq secondes")}


def test_every_vocabulary_is_tested():
    assert set(available_languages()) == set(DECIMALS) == {lang for case in CASES.values() for lang in case}


@pytest.mark.parametrize("language", available_languages())
@pytest.mark.parametrize("text", CASES)
def test_each_vocabulary_writes_out_symbols_durations_and_numbers(language, text):
    assert load_vocabulary(language).spoken(text) == CASES[text][language]


@pytest.mark.parametrize("language", available_languages())
def test_decimals_are_read_with_the_languages_separator(language):
    written, said = DECIMALS[language]
    assert load_vocabulary(language).spoken(written) == said


def test_more_decimals_are_said_digit_by_digit_with_the_languages_word():
    assert load_vocabulary("es").spoken("2,25 y 0,5") == "dos coma dos cinco y cero coma cinco"
    assert load_vocabulary("de").spoken("2,25") == "zwei Komma zwei fünf"


def test_text_without_numbers_or_symbols_is_unchanged():
    vocab = load_vocabulary("en")
    for text in ("Lift the brows.", "Smile: wide, then narrow!", "Tiny & quick"):
        assert vocab.spoken(text) == text
    assert vocab.spoken("1,000 strokes, the 1st and the 22nd") == "one thousand strokes, the first and the twenty-second"


@pytest.mark.parametrize("language", available_languages())
def test_nothing_spoken_in_a_routine_keeps_a_digit_or_symbol(language):
    text = (f"routine: Test 2\nlanguage: {language}\nintro: Do 3x10 at 50%, left/right.\nsteps:\n"
            "  - exercise: Lift 1\n    area: cheeks\n    say: Hold 1m30s, then 5s.\n    reps: 2\n    hold: 3s\n"
            "    sets: 2\n  - rest: 1m30s\n  - massage: Sweep\n    area: cheeks\n    strokes: 3\n    count: true\n")
    timeline = plan(parse_routine(text, path="r.yaml"), settings=Settings(engine="fake"))
    spoken = [e.text for e in timeline.events if e.kind is EventKind.SPEECH]
    assert spoken and not [t for t in spoken if re.search(r"[\d%/×]|\dx", t)], spoken


@pytest.mark.parametrize("language, said", [("es", "veintiún segundos"), ("fr", "vingt et une secondes"),
                                            ("de", "einundzwanzig Sekunden"), ("en", "twenty-one seconds")])
def test_a_rest_of_21_seconds_is_said_in_the_units_form(language, said):
    text = f"routine: Test\nlanguage: {language}\nsteps:\n  - rest: 21s\n  - rest: 21s\n"
    timeline = plan(parse_routine(text, path="r.yaml"), settings=Settings(engine="fake"))
    spoken = " ".join(e.text for e in timeline.events if e.kind is EventKind.SPEECH)
    assert said in spoken, spoken
