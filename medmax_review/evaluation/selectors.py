"""Evaluation reads: the items of a version's split, the runs, and accuracy across versions."""

import math
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass

from medmax_review.core.medmax import IMAGE_CAPTIONING, VQA
from medmax_review.evaluation.models import EvaluationItem, EvaluationRun
from medmax_review.exports import changelog
from medmax_review.exports.build import dataset_version_folder
from medmax_review.exports.models import DatasetVersion
from medmax_review.projects.models import Project
from medmax_review.review.models import Candidate

EVALUATED_TASKS = (VQA, IMAGE_CAPTIONING)
CHUNK = 500


@dataclass(frozen=True)
class EvalItem:
    candidate_id: int
    task: str
    source: str
    instruction: str
    reference: str
    credential: bool
    image_file: str  # the store's path under MEDIA_ROOT, "" without an image


def split_candidate_ids(*, version: DatasetVersion, split: str) -> Iterator[int]:
    """The published rows of one split that are VQA or captioning, from the version's row
    index (what the version holds, whatever has been edited since), in candidate order."""
    path = dataset_version_folder(version) / changelog.ROWS_FILE
    for row in changelog.index_read(path):
        if row.published and row.split == split and row.task in EVALUATED_TASKS:
            yield row.candidate_id


def version_splits(*, version: DatasetVersion) -> list[str]:
    return sorted((version.manifest or {}).get("counts", {}).get("split", {}))


def split_items(*, version: DatasetVersion, split: str, skip: set[int]) -> Iterator[EvalItem]:
    """The split's items not in `skip`, a chunk of candidates at a time.

    The reference is the candidate's response as it stands now: an approved candidate's text
    changes only by a new review, which a new version would carry.
    """
    chunk: list[int] = []
    for cid in split_candidate_ids(version=version, split=split):
        if cid not in skip:
            chunk.append(cid)
        if len(chunk) >= CHUNK:
            yield from _load(chunk)
            chunk = []
    yield from _load(chunk)


def _load(ids: list[int]) -> list[EvalItem]:
    rows = (
        Candidate.objects.filter(id__in=ids).order_by("id")
        .values_list("id", "task", "record__source", "instruction", "response", "credential",
                     "record__image__file")
    )
    return [EvalItem(cid, task, source, instruction, response, credential, image or "")
            for cid, task, source, instruction, response, credential, image in rows]


def items_scored(*, run: EvaluationRun) -> set[int]:
    return set(EvaluationItem.objects.filter(run=run).values_list("candidate_id", flat=True))


def _accuracy(scores: list[float]) -> dict:
    """Mean score with its standard error (sqrt(p(1-p)/n) for 0/1 scores)."""
    n = len(scores)
    mean = sum(scores) / n
    variance = sum((s - mean) ** 2 for s in scores) / n
    return {"n": n, "accuracy": round(mean, 6), "se": round(math.sqrt(variance / n), 6)}


def run_summary(*, run: EvaluationRun) -> dict:
    """Accuracy with its standard error overall and per task, source and question type."""
    groups: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    overall: list[float] = []
    rows = EvaluationItem.objects.filter(run=run).values_list(
        "task", "source", "question_type", "score").iterator(chunk_size=2000)
    for task, source, qtype, score in rows:
        overall.append(score)
        groups["by_task"][task].append(score)
        groups["by_source"][source].append(score)
        groups["by_question_type"][qtype].append(score)
    out = {"overall": _accuracy(overall) if overall else None}
    for key in ("by_task", "by_source", "by_question_type"):
        out[key] = {name: _accuracy(s) for name, s in sorted(groups[key].items())}
    return out


def runs_for_project(*, project: Project):
    return EvaluationRun.objects.filter(project=project).select_related("version")


def accuracy_by_version(*, project: Project) -> list[dict]:
    """The latest finished run of each (version, split, backend, model), oldest version
    first: what the chart of accuracy by version draws."""
    latest: dict[tuple, EvaluationRun] = {}
    for run in runs_for_project(project=project).filter(status=EvaluationRun.DONE).order_by("id"):
        latest[(run.version.number, run.split, run.backend, run.model)] = run
    rows = []
    for (number, split, _backend, model), run in sorted(latest.items()):
        overall = (run.summary or {}).get("overall")
        if overall:
            rows.append({"version": number, "split": split, "model": model or run.backend,
                         "run": run, **overall})
    return rows
