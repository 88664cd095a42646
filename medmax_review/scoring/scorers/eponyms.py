"""Eponyms: surnames that name a disease, sign, fracture or structure, not a person present."""

import re

# Surnames (first word of hyphenated eponyms too) used in radiology and pathology prose.
EPONYMS = frozenset("""addison alzheimer arnold baker bankart barrett batson bell bennett
    bochdalek boerhaave bonnet bourneville brown budd burkitt chance charcot chiari colles conn crohn
    creutzfeldt cushing dandy down douglas ewing fallot fleischner galeazzi gerota ghon glisson
    graves guillain hampton hashimoto hill hirschsprung hodgkin hoffa huntington hurthle jefferson
    jones kaposi kawasaki kerley kienbock klatskin korsakoff krukenberg kupffer langerhans legg
    lisfranc luschka magendie maisonneuve mallory marfan meckel meniere monro monteggia morgagni
    morison osgood paget pancoast parkinson perthes peyronie pott purkinje raynaud reed reiter
    riedel rolando salter schatzki schwann segond sjogren smith still sylvius takayasu tillaux
    treitz virchow vater waldenstrom westermark wharton whipple willis wilms wilson wernicke
    zenker""".split())

# Eponyms that are also common surnames: after a title ("Dr. Brown") they are a person unless a
# disease word follows.
COMMON_SURNAMES = frozenset("""arnold baker bell bennett brown chance conn douglas down graves
    hampton hill jones monro morison pott reed smith still vater willis wilson""".split())

# What follows an eponym used as a name of a thing: "Parkinson's disease", "Colles fracture".
_THING_AFTER = re.compile(
    r"^(?:'s?|’s?)?\s*(?:disease|syndrome|sign|fracture|lesion|tumou?r|sarcoma|lymphoma|"
    r"malformation|anomaly|cyst|node|nodule|line|lines|ring|triad|diverticulum|esophagus|"
    r"oesophagus|hernia|ulcer|palsy|phenomenon|classification|type|pouch|space|foramen|"
    r"foramina|ligament|duct|ampulla|capsule|cells?|plaques?|tangles|encephalopathy|"
    r"contracture|thyroiditis|arteritis|aneurysm|effusion|hump|fat|point|criteria|score|"
    r"procedure|operation)\b",
    re.IGNORECASE,
)
_TITLE = re.compile(r"^(?:Mr|Mrs|Ms|Miss|Dr|Prof|Professor|Sister|Nurse)\.?\s+")
_THING_BEFORE = re.compile(r"\b(?:of|circle of|pouch of|space of|foramen of|ampulla of)\s+$",
                           re.IGNORECASE)


def is_eponym_use(text: str, start: int, end: int) -> bool:
    """Whether the name at text[start:end] is an eponym: a title then an eponym ("Dr. Parkinson",
    read as the disease's name), or an eponym before "disease", "'s sign", ... or after "of"."""
    name = _TITLE.sub("", text[start:end])
    surnames = [w.lower().strip("'’s") for w in re.split(r"[\s-]+", name) if w]
    if not surnames or not all(w in EPONYMS for w in surnames[-1:]):
        return False
    if _TITLE.match(text[start:end]) and len(surnames) == 1 and surnames[0] not in COMMON_SURNAMES:
        return True
    return bool(_THING_AFTER.match(text[end:]) or _THING_BEFORE.search(text[:start]))
