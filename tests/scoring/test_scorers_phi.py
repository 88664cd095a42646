"""The PHI scorer: names, dates, record numbers, phones, e-mail, addresses, ages over 89."""

import pytest

from medmax_review.scoring.scorers.phi import score_phi

from .conftest import item_for


@pytest.mark.parametrize(("text", "rule", "hit", "redaction"), [
    ("Mr. John Smith has a right pleural effusion.", "name", "Mr. John Smith", "[NAME]"),
    ("CT of patient Jane Doe shows a mass.", "name", "Jane Doe", "[NAME]"),
    ("Scan performed on 03/14/2019 shows a mass.", "date", "03/14/2019", "[DATE]"),
    ("Scan from March 14, 2019 shows a mass.", "date", "March 14, 2019", "[DATE]"),
    ("MRN: 00123456, chest radiograph.", "mrn", "MRN: 00123456", "[MRN]"),
    ("Call 555-201-3344 for the report.", "phone", "555-201-3344", "[PHONE]"),
    ("Send to radiology@example.org today.", "email", "radiology@example.org", "[EMAIL]"),
    ("Lives at 42 Elm Street with family.", "address", "42 Elm Street", "[ADDRESS]"),
    ("A 93-year-old woman with a hip fracture.", "age_over_89", "93-year-old", "[AGE 90+]"),
])
def test_phi_finds_each_kind_with_redaction(demo_rows, text, rule, hit, redaction):
    item = item_for(demo_rows["vqarad-1582"], response=text)
    result = score_phi(item)
    assert result.band == "fail"
    (ev,) = [e for e in result.evidence if e["rule"] == rule]
    assert text[slice(*ev["spans"][0])] == hit
    assert ev["suggestion"] == redaction and ev["field"] == "response"


def test_phi_in_instruction_names_the_field(demo_rows):
    item = item_for(demo_rows["vqarad-1582"], response="Right",
                    instruction="Dr. Brown asks: which lung has diffuse opacification?")
    (ev,) = score_phi(item).evidence
    assert ev["field"] == "instruction" and ev["spans"] == [[0, 9]]


def test_phi_clean_on_every_faithful_demo_answer(demo_rows):
    # Real VQA questions and answers carry no PHI; none may be flagged.
    flagged = [
        (row_id, score_phi(item_for(row, response=row["answer"])).evidence)
        for row_id, row in demo_rows.items() if "answer" in row
    ]
    assert [f for f in flagged if f[1]] == []


def test_phi_young_age_is_not_flagged(demo_rows):
    result = score_phi(item_for(demo_rows["vqarad-1582"], response="A 45-year-old man, right lung."))
    assert result.value == 1.0


@pytest.mark.parametrize(("text", "rule", "hit", "redaction"), [
    ("Accession number: RAD-2019-88412, chest radiograph.", "accession", "Accession number: RAD-2019-88412", "[ACCESSION]"),
    ("Billed to account #00992211 after the CT.", "account", "account #00992211", "[ACCOUNT]"),
    ("SSN 123-45-6789 on the requisition.", "national_id", "SSN 123-45-6789", "[NATIONAL ID]"),
    ("A ninety-two-year-old man with a right lung mass.", "age_over_89", "ninety-two-year-old", "[AGE 90+]"),
    ("The patient, aged 97, has a hip fracture.", "age_over_89", "aged 97", "[AGE 90+]"),
    ("Seen by Dr. Anna Kowalski for the humerus.", "name", "Dr. Anna Kowalski", "[NAME]"),
    ("Questions to radiology on ext. 4521.", "phone", "ext. 4521", "[PHONE]"),
    ("Reachable on +44 20 7946 0958 after the scan.", "phone", "+44 20 7946 0958", "[PHONE]"),
    ("Images at https://pacs.example.org/study/77 for review.", "url", "https://pacs.example.org/study/77", "[URL]"),
    ("Uploaded from 10.0.0.12 overnight.", "ip_address", "10.0.0.12", "[IP]"),
    ("Lives in Boston, MA 02115 with family.", "zip_code", "02115", "[ZIP]"),
    ("Transferred from St. Mary's Hospital with a mass.", "hospital", "St. Mary's Hospital", "[HOSPITAL]"),
    ("Imaged at Massachusetts General Hospital last week.", "hospital", "Massachusetts General Hospital", "[HOSPITAL]"),
])
def test_phi_finds_more_kinds_with_redaction(demo_rows, text, rule, hit, redaction):
    result = score_phi(item_for(demo_rows["vqarad-1582"], response=text))
    (ev,) = [e for e in result.evidence if e["rule"] == rule]
    assert text[slice(*ev["spans"][0])] == hit and ev["suggestion"] == redaction


@pytest.mark.parametrize("text", [
    "Findings are consistent with Parkinson's disease.",
    "Dr. Parkinson described the tremor that bears his name.",
    "A Colles fracture of the distal radius.",
    "The aneurysm arises from the circle of Willis.",
    "Wilson disease with copper deposition in the liver.",
    "A 3.5 cm mass and a 12 mm nodule in a 45-year-old man.",
    "The mass measures 5mm on the axial CT.",
])
def test_phi_eponyms_and_measurements_are_not_flagged(demo_rows, text):
    assert score_phi(item_for(demo_rows["vqarad-1582"], response=text)).evidence == []
