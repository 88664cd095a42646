"""The scorers' evaluation set, built from the real demo records (VQA-RAD, SLAKE in English).

For each record: faithful responses (paraphrases, modality synonyms, numbers in words,
"right-sided", negated mentions of other modalities) and responses with one injected error of a
known kind (negation in prose, wrong or both sides, wrong number in digits or words, wrong
modality by any of its names, PHI of each kind, a hallucinated finding, organ or procedure).

Two parts with DIFFERENT templates and phrasings: "tuning" (what the rules were developed
against) and "held_out" (phrasings never used while writing them). Deterministic: same set on
every run.
"""

import json
import random
import re
from dataclasses import dataclass
from pathlib import Path

DEMO = Path(__file__).resolve().parent.parent / "demo_data"
PARTS = ("tuning", "held_out")


@dataclass(frozen=True)
class Case:
    part: str
    kind: str  # "faithful" or the error injected
    row: dict
    response: str


def demo_rows() -> list[dict]:
    rows = []
    for name in ("vqa_rad.jsonl", "slake.jsonl"):
        for line in (DEMO / name).read_text().splitlines():
            row = json.loads(line)
            if row.get("question", "").isascii() and row.get("answer", "").strip():
                rows.append(row)
    return rows


# --- phrasing by part ---------------------------------------------------------------------------

_NUMBER_WORDS = ("zero one two three four five six seven eight nine ten eleven twelve thirteen "
                 "fourteen fifteen sixteen seventeen eighteen nineteen twenty").split()
_ORDINAL_WORDS = "zeroth first second third fourth fifth sixth seventh eighth ninth tenth".split()
MODALITY_NAMES = {
    "CT": (["CT", "computed tomography", "CT scan"], ["CAT scan", "computed tomographic", "NCCT"]),
    "MRI": (["MRI", "magnetic resonance imaging", "T2-weighted MRI"],
            ["MR", "FLAIR", "T1-weighted", "diffusion-weighted"]),
    "X-Ray": (["X-ray", "radiograph", "chest X-ray"], ["plain film", "CXR", "radiographic"]),
}
WRONG_MODALITIES = (["MRI", "ultrasound", "X-ray", "CT", "PET scan"],
                    ["T2-weighted", "sonogram", "radiograph", "computed tomography", "FLAIR",
                     "H&E-stained", "sonography"])
FINDINGS = (["mass", "pleural effusion", "pneumothorax", "fracture", "abscess", "cyst"],
            ["hematoma", "calcification", "aneurysm", "nodule", "metastasis", "consolidation"])
ORGANS = (["liver", "spleen", "kidney", "bladder"], ["pancreas", "thyroid", "gallbladder", "aorta"])
PROCEDURES = (["biopsy", "stent"], ["resection", "catheter"])


def _pick(options, rng):
    return options[rng.randrange(len(options))]


def _cap(text: str) -> str:
    return text[:1].upper() + text[1:]


def _number(value: int, words: bool) -> str:
    return _NUMBER_WORDS[value] if words and value < len(_NUMBER_WORDS) else str(value)


# --- statements from yes/no questions ----------------------------------------------------------

def statement(question: str, yes: bool, part: int) -> str | None:
    """'Is there a fracture of the left humerus?' + no -> 'There is no fracture of the left
    humerus' (tuning) or 'A fracture of the left humerus is absent' (held out)."""
    q = question.strip().rstrip("?").strip()
    m = re.match(r"(?i)(is|are) there (?:an?y? |a |an )?(.+)$", q)
    if m:
        be, what = m.group(1).lower(), re.sub(r"\s+present$", "", m.group(2))
        if yes:
            return (f"There {be} {what}", f"{_cap(what)} {be} present")[part]
        return (f"There {be} no {what}", f"{_cap(what)} {be} absent")[part]
    m = re.match(r"(?i)does the picture contain (?:the )?(.+)$", q)
    if m:
        what = m.group(1)
        if yes:
            return (f"The picture contains the {what}", f"The {what} is seen in this image")[part]
        return (f"The picture does not contain the {what}",
                f"The {what} is not identified in this image")[part]
    m = re.match(r"(?i)(?:does|do) (?:the )?(.+?) (appear|look) (.+)$", q)
    if m:
        subject, verb, rest = m.groups()
        if yes:
            return (f"The {subject} {verb}s {rest}", f"Indeed, the {subject} {verb}s {rest}")[part]
        return (f"The {subject} does not {verb} {rest}", f"The {subject} doesn't {verb} {rest}")[part]
    m = re.match(r"(?i)(is|are) the (\w+(?: \w+)?) (enlarged|normal|abnormal|fractured|broken|"
                 r"widened|compressed|lacerated|loculated|visualized|present)\b(.*)$", q)
    if m:
        be, subject, adjective, rest = m.groups()
        be = be.lower()
        if yes:
            return (f"The {subject} {be} {adjective}{rest}", f"Yes, the {subject} {be} {adjective}{rest}")[part]
        return (f"The {subject} {be} not {adjective}{rest}",
                f"The {subject} {be}n't {adjective}{rest}")[part]
    return None


# --- builders --------------------------------------------------------------------------------------

def _faithful(row: dict, part: int, rng) -> list[str]:
    q, a = row["question"], row["answer"].strip()
    yes_no = a.lower().rstrip(".") in ("yes", "no")
    out = []
    if yes_no:
        yes = a.lower().startswith("y")
        s = statement(q, yes, part)
        word = "Yes" if yes else "No"
        out.append((f"{word}.", f"{word}, that is right.")[part])
        if s:
            out.append((f"{word}. {s}.", f"{s}.")[part])
    else:
        shown = a
        for canonical, (tuning, held) in MODALITY_NAMES.items():
            if a.lower() == canonical.lower():
                shown = _pick((tuning, held)[part], rng)
        m = re.fullmatch(r"(\d+)", a)
        if m and int(m.group(1)) < len(_NUMBER_WORDS):
            shown = _number(int(m.group(1)), words=True)
        m = re.fullmatch(r"(\d)(?:st|nd|rd|th) (.+)", a)
        if m:
            shown = f"{_ORDINAL_WORDS[int(m.group(1))]} {m.group(2)}"
        side = re.fullmatch(r"(?i)(right|left)( side)?", a)
        if side:
            shown = (f"{side.group(1).lower()} side", f"{side.group(1).lower()}-sided")[part]
        templates = (["The answer is {x}.", "{X}.", "It is {x}."],
                     ["This image shows {x}.", "{X}, as seen here.", "Findings: {x}."])[part]
        out.append(_pick(templates, rng).format(x=shown, X=_cap(shown)))
    modality = row.get("meta", {}).get("modality")
    if modality in MODALITY_NAMES:
        others = [m for m in ("MRI", "ultrasound", "CT", "X-ray")
                  if m.lower() != modality.lower() and not (m == "X-ray" and modality == "X-Ray")]
        name = _pick(MODALITY_NAMES[modality][part], rng)
        other = _pick(others, rng)
        out.append((f"This is a {name} image, not an {other}.",
                    f"Acquired as {name}; this is not an {other} study.")[part])
    return out


def _negation_errors(row: dict, part: int, rng) -> list[str]:
    a = row["answer"].strip().lower().rstrip(".")
    if a not in ("yes", "no"):
        return []
    flipped = statement(row["question"], a == "no", part)
    if not flipped:
        return []
    frame = (["{s}.", "On this image, {s_lower}."], ["{s}.", "Looking at the scan, {s_lower}."])[part]
    return [_pick(frame, rng).format(s=flipped, s_lower=flipped[0].lower() + flipped[1:])]


def _swap_side(text: str) -> str:
    return re.sub(r"(?i)\b(left|right)\b",
                  lambda m: {"left": "right", "right": "left"}[m.group(1).lower()], text)


def _laterality_errors(row: dict, part: int, rng) -> list[str]:
    q, a = row["question"], row["answer"].strip()
    out = []
    if re.search(r"(?i)\b(left|right)\b", a):
        swapped = _swap_side(a)
        out.append((f"The {swapped.lower()}.", f"It is on the {swapped.lower()}.")[part])
        out.append((f"Both the left and right sides: {a.lower()} and {swapped.lower()}.",
                    f"The finding is bilateral ({a.lower()}).")[part])
    elif a.lower() == "yes" and re.search(r"(?i)\b(left|right)\b", q):
        s = statement(_swap_side(q), True, part)
        if s:
            out.append(f"{s}.")
    return out


def _number_errors(row: dict, part: int, rng) -> list[str]:
    a = row["answer"].strip()
    words = {w: i for i, w in enumerate(_NUMBER_WORDS)}
    m = re.search(r"\d+", a)
    if m:
        value = int(m.group(0))
    elif a.lower() in words:
        value = words[a.lower()]
    else:
        return []
    ordinal = bool(m and re.match(r"(?i)(?:st|nd|rd|th)\b", a[m.end():]))
    rest = a[m.end() + 2 * ordinal:] if m else ""
    templates = (["The answer is {n}{rest}.", "There are {n}{rest}."],
                 ["I count {n}{rest}.", "{N}{rest}, on this image."])[part]
    out = []
    for delta, words in ((1, bool(part)), (2, not part)):  # digits and words in each part
        wrong = value + delta if value < 5 else value - delta
        if ordinal:
            shown = (f"{wrong}{'th' if wrong > 3 else ['th', 'st', 'nd', 'rd'][wrong]}"
                     if not words else _ORDINAL_WORDS[wrong] if wrong < len(_ORDINAL_WORDS)
                     else str(wrong))
        else:
            shown = _number(wrong, words=words)
        out.append(_pick(templates, rng).format(n=shown, N=_cap(shown), rest=rest))
    return out


def _modality_errors(row: dict, part: int, rng) -> list[str]:
    modality = row.get("meta", {}).get("modality")
    if modality not in MODALITY_NAMES:
        return []
    options = [w for w in WRONG_MODALITIES[part]
               if not any(w.lower() in n.lower() or n.lower() in w.lower()
                          for n in (*MODALITY_NAMES[modality][0], *MODALITY_NAMES[modality][1]))]
    wrong = _pick(options, rng)
    templates = (["This {m} image answers it: {a}.", "On this {m}, {a}."],
                 ["{a}; the study is a {m}.", "As the {m} shows, {a}."])[part]
    return [_pick(templates, rng).format(m=wrong, a=row["answer"].strip().lower())]


PHI = {
    "name": (["Mr. John Smith was scanned.", "Patient Maria Lopez, scanned today."],
             ["Reviewed with Dr. Helen Okafor.", "Seen by Prof. Daniel Meyer."]),
    "date": (["Scan from 03/14/2019.", "Imaged on March 3, 2021."],
             ["Study dated 2020-11-02.", "Acquired 5th of June 2018."]),
    "mrn": (["MRN: 00123456.", "Medical record number 4455667."],
            ["Record no. 99887766.", "patient ID 20071234."]),
    "phone": (["Call 617-555-0199 for results.", "Phone (212) 555-0134."],
              ["Ring +44 20 7946 0958.", "Contact 555 201 3344."]),
    "short_phone": (["Page ext. 4521.", "Questions: x2231."],
                    ["pager 7789 for the fellow.", "bleep 3312 on call."]),
    "email": (["Send to jdoe@example.org.", "Copy: radiology@hospital.example.com."],
              ["Reply to m.okafor@clinic.example.net.", "Mail pat.smith@example.com."]),
    "address": (["Lives at 42 Elm Street.", "Home: 7 Oak Avenue."],
                ["Resides at 1200 Lake Shore Drive.", "From 15 Mill Road."]),
    "age_over_89": (["A 93-year-old woman.", "Patient aged 95."],
                    ["A ninety-two-year-old man.", "She is 101 years old."]),
    "accession": (["Accession number: RAD-2019-88412.", "Accession #55231876."],
                  ["acc. no. 20210099.", "Exam number 7712345."]),
    "account": (["Account #00992211.", "Billing number 55667788."],
                ["acct. 44556677.", "Insurance ID 99881234."]),
    "national_id": (["SSN 123-45-6789.", "NHS number 943 476 5919."],
                    ["Social security 078-05-1120.", "Medicare number 1EG4-TE5-MK73."]),
    "url": (["Images at https://pacs.example.org/study/77.", "See www.example-hospital.org/case1."],
            ["Viewer: http://10.1.2.3/viewer?id=5.", "Link https://imaging.example.com/s/9."]),
    "ip_address": (["Uploaded from 10.0.0.12.", "Host 192.168.1.20."],
                   ["Source node 172.16.4.9.", "From 10.20.30.40 overnight."]),
    "zip_code": (["Boston, MA 02115.", "ZIP 60614."],
                 ["Postal code SW1A 1AA.", "Seattle, WA 98101."]),
    "hospital": (["Transferred from St. Mary's Hospital.", "Imaged at Massachusetts General Hospital."],
                 ["Referred by Mayo Clinic.", "Seen at Royal Free Infirmary."]),
}


def _phi_errors(row: dict, part: int, rng, faithful: str) -> list[tuple[str, str]]:
    return [(f"phi_{kind}", f"{faithful} {_pick(phrasings[part], rng)}")
            for kind, phrasings in PHI.items()]


def _hallucinations(row: dict, part: int, rng, faithful: str) -> list[str]:
    source = f"{row['question']} {row['answer']}".lower()
    finding = _pick([f for f in FINDINGS[part] if f not in source], rng)
    organ = _pick([o for o in ORGANS[part] if o not in source], rng)
    procedure = _pick(PROCEDURES[part], rng)
    templates = (["{f} There is also a {x} in the {o}.", "{f} A {p} of the {o} is advised."],
                 ["{f} Note the {x} adjacent to the {o}.", "{f} Status post {p}; {x} noted."])[part]
    return [t.format(f=faithful, x=finding, o=organ, p=procedure) for t in templates]


def build(seed: int = 10) -> list[Case]:
    """Every case of both parts. A record goes to one part only (by its id), so no record's
    faithful answer is seen in both."""
    cases = []
    for row in demo_rows():
        part_index = sum(row["id"].encode()) % 2
        part = PARTS[part_index]
        rng = random.Random(f"{seed}:{row['id']}")
        faithful = _faithful(row, part_index, rng)
        cases += [Case(part, "faithful", row, r) for r in faithful]
        errors = [("negation", r) for r in _negation_errors(row, part_index, rng)]
        errors += [("laterality", r) for r in _laterality_errors(row, part_index, rng)]
        errors += [("number", r) for r in _number_errors(row, part_index, rng)]
        errors += [("modality", r) for r in _modality_errors(row, part_index, rng)]
        if rng.random() < 0.25:  # PHI is checked without the source: a quarter of records suffice
            errors += _phi_errors(row, part_index, rng, faithful[0])
        errors += [("hallucination", r) for r in _hallucinations(row, part_index, rng, faithful[0])]
        cases += [Case(part, kind, row, r) for kind, r in errors]
    return cases
