"""Numbers in prose: digits, number words, ordinals and spinal levels, with units made comparable.

"2 cm" and "20 mm" are the same length, "three" is 3, "third" is 3, and "L4" or "C5-C6" is a
level (a name, compared as written), not the number 4. Units are converted with pint.
"""

import re
import threading
from dataclasses import dataclass

_UNITS_FOR_PINT = {
    "mm": "millimeter", "cm": "centimeter", "m": "meter", "ml": "milliliter", "cc": "milliliter",
    "l": "liter", "kg": "kilogram", "g": "gram", "mg": "milligram", "mcg": "microgram",
    "year": "year", "years": "year", "yr": "year", "yrs": "year", "month": "month",
    "months": "month", "week": "week", "weeks": "week", "day": "day", "days": "day",
    "hour": "hour", "hours": "hour", "millimeter": "millimeter", "millimeters": "millimeter",
    "millimetre": "millimeter", "millimetres": "millimeter", "centimeter": "centimeter",
    "centimeters": "centimeter", "centimetre": "centimeter", "centimetres": "centimeter",
}
# Units pint has no dimension for here: compared only with the same unit.
_OWN_UNITS = {"%": "%", "percent": "%", "hu": "HU", "bpm": "bpm", "mmhg": "mmHg"}
UNIT = "|".join(sorted((re.escape(u) for u in (*_UNITS_FOR_PINT, *_OWN_UNITS)), key=len,
                       reverse=True))

_WORDS = {w: i for i, w in enumerate(
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen "
    "fifteen sixteen seventeen eighteen nineteen twenty".split())}
_WORDS.update({"thirty": 30, "forty": 40, "fifty": 50, "sixty": 60, "seventy": 70,
               "eighty": 80, "ninety": 90, "hundred": 100, "single": 1, "twice": 2, "both": 2})
_ORDINALS = {w: i + 1 for i, w in enumerate(
    "first second third fourth fifth sixth seventh eighth ninth tenth eleventh twelfth".split())}
# "one" is a pronoun far more often than a count ("the one on the left"), "second" a unit of
# time: they count only before a unit.
_ONLY_WITH_UNIT = {"one", "second", "single", "both"}

# A spinal level; "T2-weighted" or "T1 hyperintense" is an MRI sequence, not the T2 vertebra.
LEVEL = re.compile(r"\b([CTLS])(\d{1,2})(?:\s*[-/]\s*([CTLS])?(\d{1,2}))?\b"
                   r"(?![- ]?(?i:weighted|wi\b|hyper|hypo|signal|flair|sequence|image))")
NUMBER = re.compile(
    r"(?<![\w.])(?P<value>\d+(?:\.\d+)?|" + "|".join(sorted([*_WORDS, *_ORDINALS], key=len, reverse=True))
    + r")(?:st|nd|rd|th)?(?:[\s-]*(?P<unit>" + UNIT + r"))?(?![\w])",
    re.IGNORECASE,
)

_ureg_lock = threading.Lock()
_ureg: dict = {}


def _registry():
    with _ureg_lock:
        if "u" not in _ureg:
            import pint

            _ureg["u"] = pint.UnitRegistry()
        return _ureg["u"]


@dataclass(frozen=True)
class Quantity:
    text: str
    start: int
    end: int
    value: float  # in the unit's base form (metres, litres, ...) when pint knows the unit
    dimension: str  # "" for a bare count, pint's dimensionality, or our own unit name
    level: str = ""  # "L4", "C5-C6": a spinal level, compared as a name


def _in_base(value: float, unit: str) -> tuple[float, str]:
    unit = unit.lower()
    if not unit:
        return value, ""
    if unit in _OWN_UNITS:
        return value, _OWN_UNITS[unit]
    q = _registry().Quantity(value, _UNITS_FOR_PINT[unit]).to_base_units()
    return round(float(q.magnitude), 9), str(q.dimensionality)


def quantities(text: str) -> list[Quantity]:
    found = []
    for m in LEVEL.finditer(text):
        first, n1, second, n2 = m.groups()
        name = f"{first}{int(n1)}" + (f"-{second or first}{int(n2)}" if n2 else "")
        found.append(Quantity(m.group(0), m.start(), m.end(), 0.0, "level", level=name))
    for m in NUMBER.finditer(text):
        if any(q.start <= m.start() < q.end for q in found):
            continue
        raw, unit = m.group("value").lower(), m.group("unit") or ""
        if raw in _ONLY_WITH_UNIT and not unit:
            continue
        value = float(raw) if raw[0].isdigit() else float(_WORDS.get(raw) or _ORDINALS[raw])
        value, dimension = _in_base(value, unit)
        found.append(Quantity(m.group(0), m.start(), m.end(), value, dimension))
    return sorted(found, key=lambda q: q.start)


def same(a: Quantity, b: Quantity) -> bool:
    if a.level or b.level:
        return a.level == b.level
    return a.dimension == b.dimension and abs(a.value - b.value) <= 1e-6 * max(1.0, abs(b.value))
