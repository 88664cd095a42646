"""Shared text helpers: words with their offsets, stop-words, the Snowball stemmer."""

import re
from functools import lru_cache

import Stemmer

# Letters of any script (SLAKE has Chinese questions), inner hyphens/apostrophes, or a number.
WORD = re.compile(r"[^\W\d_](?:[\w\-']*[^\W\d_])?|\d+(?:\.\d+)?")

STOP_WORDS = frozenset(
    """a about above after again against all also am an and any are as at be because been
    before being below between both but by can could did do does doing down during each few
    for from further had has have having he her here hers herself him himself his how i if in
    into is it its itself just me more most my myself no nor not of off on once only or other
    our ours out over own same she should so some such than that the their theirs them then
    there these they this those through to too under until up very was we were what when where
    which while who whom why will with would you your yours shown show shows showing seen see
    image images picture photo figure fig demonstrate demonstrates demonstrating depict depicts
    visible appear appears appearance noted note there's it's also may might likely well one
    two within without upon via using used use based including include includes per here
    provide provides given describe described description based question answer""".split()
)

_SNOWBALL = Stemmer.Stemmer("english")


@lru_cache(maxsize=200_000)  # pure, and a corpus repeats its words endlessly
def stem(word: str) -> str:
    """Snowball (Porter 2) stem: 'opacities' and 'opacity', 'enlarged' and 'enlarge' meet."""
    return _SNOWBALL.stemWord(word.lower().removesuffix("'s"))


def words(text: str) -> list[tuple[str, int, int]]:
    """(word, start, end) for every word or number in text."""
    return [(m.group(0), m.start(), m.end()) for m in WORD.finditer(text)]


def content_words(text: str) -> list[tuple[str, int, int]]:
    return [
        (w, s, e) for w, s, e in words(text)
        if w.lower() not in STOP_WORDS and (len(w) > 2 or w.isdigit())
    ]


def stems(text: str) -> set[str]:
    return {stem(w) for w, _, _ in words(text)}
