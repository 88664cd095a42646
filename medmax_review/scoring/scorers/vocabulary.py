"""Word lists the claim checks share: organs, findings, procedures, words that assert nothing."""

from medmax_review.scoring.scorers.text import stem


def _stems(text: str) -> frozenset[str]:
    return frozenset(stem(w) for w in text.split())


ANATOMY = _stems("""lung liver kidney heart brain spleen pancreas bladder stomach colon bowel
    duodenum esophagus trachea aorta spine vertebra rib femur humerus tibia skull pelvis
    gallbladder uterus ovary prostate thyroid breast retina cerebellum ventricle diaphragm
    appendix rectum adrenal testis knee shoulder hip elbow wrist ankle sinus mandible orbit""")

# Findings and procedures: named in a response and nowhere in the source, each is a claim
# the source does not support (grounding reports them apart from ordinary unsupported words).
FINDINGS = _stems("""mass tumor tumour lesion nodule cyst abscess effusion pneumothorax
    pneumonia consolidation atelectasis edema oedema hemorrhage haemorrhage haematoma hematoma
    fracture dislocation stenosis aneurysm dissection thrombus embolism infarct infarction
    ischemia calcification metastasis metastases carcinoma cancer lymphoma malignancy
    cardiomegaly hydronephrosis hydrocephalus ascites fibrosis emphysema opacity opacification
    infiltrate granuloma polyp ulcer obstruction perforation herniation hernia neovascularization
    necrosis inflammation enlargement lymphadenopathy stone calculus""")
PROCEDURES = _stems("""biopsy surgery resection excision stent catheter drain intubation
    transplant transplantation chemotherapy radiotherapy ablation pacemaker prosthesis
    anastomosis amputation craniotomy laparotomy""")
# Words a claim carries without asserting anything about the patient: never compared for polarity.
GENERIC = _stems("""evidence sign signs finding findings present seen identified noted visible
    area region side level scan view image picture photo study change changes
    contain contains part body""")
