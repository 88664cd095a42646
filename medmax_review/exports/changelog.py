"""What changed between two dataset versions: rows added, removed and edited, keyed by
candidate, by task and source, with the reason each removed row is gone.

Every build writes a row index beside its data (ROWS_FILE): one line per row read, in candidate
id order (the order the build streams), with the row's record, task, source, split, a hash of
what it publishes, and either "in" or why the build left it out. Two versions are compared by
walking their two indexes side by side, so a diff of millions of rows holds one line of each in
memory; only the counters and the first LISTED rows of each kind are kept.
"""

import functools
import hashlib
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

import orjson

from medmax_review.exports import files
from medmax_review.review.models import REJECT, REJECT_REASONS, Candidate, Decision

ROWS_FILE = "rows.tsv"
CHANGELOG = "CHANGELOG.md"
HEADER = "candidate_id\trecord_id\ttask\tsource\tsplit\thash\tstate\n"
IN = "in"
LISTED = 200  # rows listed one by one per kind; the rest only counted
LOOKUP_CHUNK = 1000  # removed rows whose reason is read from the database at a time
KINDS = ("added", "removed", "edited")


def _clean(value) -> str:
    return " ".join(str(value).split())  # no tab or newline can break a line of the index


def row_hash(*, text: str, image: str, task: str, source: str, credential: str) -> str:
    """What a reader of the dataset would see change: the text, the image, task, source.

    The hash of json.dumps([text, image, task, source, credential], ensure_ascii=False), which
    every version's index holds; orjson writes each string's JSON the same way, faster.
    """
    payload = b"".join((b"[", orjson.dumps(text), b", ", orjson.dumps(image),
                        _row_hash_tail(task, source, credential)))
    return hashlib.sha256(payload).hexdigest()[:20]


@functools.lru_cache(maxsize=256)
def _row_hash_tail(task: str, source: str, credential: str) -> bytes:
    # Few distinct values: encoded once each, not once per row.
    return b", " + b", ".join(map(orjson.dumps, (task, source, credential))) + b"]"


class RowIndex:
    """The index a build writes as it streams (published atomically like the data files),
    each row also handed to `diff` when one is given."""

    def __init__(self, folder: Path, *, diff: "IndexDiff | None" = None):
        self.file = files.AtomicFile(folder / ROWS_FILE)
        self.file.write(HEADER)
        self.diff = diff
        self.cleaned: dict[str, str] = {}  # task and source names, few: cleaned once each

    def add(self, *, candidate_id: int, record_id: int, task: str, source: str, split: str,
            digest: str, left_out: list[str] | None = None) -> None:
        state = _clean("; ".join(left_out)) if left_out else IN
        # Ids, split names and hex digests hold no white space: only the names are cleaned.
        cleaned = self.cleaned
        if task not in cleaned:
            cleaned[task] = _clean(task)
        if source not in cleaned:
            cleaned[source] = _clean(source)
        task, source = cleaned[task], cleaned[source]
        self.file.write(f"{candidate_id}\t{record_id}\t{task}\t{source}\t{split}\t{digest}\t{state}\n")
        if self.diff is not None:
            self.diff.add(IndexRow(candidate_id, record_id, task, source, split, digest, state))

    def commit(self) -> files.FileDigest:
        return self.file.commit()

    def abort(self) -> None:
        self.file.abort()


class IndexRow(NamedTuple):  # a tuple: millions are read per diff
    candidate_id: int
    record_id: int
    task: str
    source: str
    split: str
    digest: str
    state: str

    @property
    def published(self) -> bool:
        return self.state == IN

    def listed(self, **extra) -> dict:
        return {"candidate_id": self.candidate_id, "record_id": self.record_id,
                "task": self.task, "source": self.source, **extra}


def index_read(path: Path) -> Iterator[IndexRow]:
    with open(path, encoding="utf-8") as fh:
        next(fh, None)  # the header
        for line in fh:
            cid, rid, task, source, split, digest, state = line.rstrip("\n").split("\t")
            yield IndexRow(int(cid), int(rid), task, source, split, digest, state)


@dataclass
class Changes:
    """The counts and the first rows of each kind of change between two versions."""

    previous: int | None
    current: int
    counts: Counter = field(default_factory=Counter)
    # Changes per (kind, task, source): one update per row, summed by task and by source at the end.
    combos: Counter = field(default_factory=Counter)
    removed_reasons: Counter = field(default_factory=Counter)
    listed: dict = field(default_factory=lambda: {kind: [] for kind in KINDS})

    def note(self, kind: str, row: IndexRow, **extra) -> None:
        self.combos[kind, row.task, row.source] += 1
        listed = self.listed[kind]
        if len(listed) < LISTED:
            listed.append(row.listed(**extra))

    def _by(self, position: int) -> dict:
        out: dict = defaultdict(Counter)
        for combo, n in self.combos.items():
            out[combo[position]][combo[0]] += n
        return {k: dict(sorted(v.items())) for k, v in sorted(out.items())}

    def as_manifest(self) -> dict:
        return {
            "previous_version": self.previous,
            **{kind: sum(n for (k, *_), n in self.combos.items() if k == kind) for kind in KINDS},
            "moved_split": self.counts["moved_split"],
            "unchanged": self.counts["unchanged"],
            "by_task": self._by(1),
            "by_source": self._by(2),
            "removed_reasons": dict(sorted(self.removed_reasons.items())),
            "listed": self.listed,
            "listed_limit": LISTED,
        }


def removal_reasons(candidate_ids: list[int]) -> dict[int, str]:
    """Why approved rows are no longer exported, as the database says now: the candidate's
    status (with its reject reasons), deleted, or still approved (the export's filters)."""
    labels = dict(REJECT_REASONS)
    found = dict(Candidate.objects.filter(id__in=candidate_ids).values_list("id", "status"))
    reasons: dict[int, set] = defaultdict(set)
    for cid, reason in Decision.objects.filter(
        candidate_id__in=[c for c, s in found.items() if s == "rejected"], action=REJECT,
        undone_by__isnull=True,
    ).values_list("candidate_id", "reason"):
        reasons[cid].add(labels.get(reason, reason) or "no reason given")
    out = {}
    for cid in candidate_ids:
        status = found.get(cid)
        if status is None:
            out[cid] = "candidate deleted"
        elif status == "approved":
            out[cid] = "left out by this version's filters"
        elif reasons.get(cid):
            out[cid] = f"now {status}: {', '.join(sorted(reasons[cid]))}"
        else:
            out[cid] = f"now {status}"
    return out


class IndexDiff:
    """The changes from the version indexed at `old` (None: there is none) to rows given one
    by one in candidate id order: a build diffs its rows as it writes them, without reading
    its own index back; index_diff gives it a written index."""

    def __init__(self, *, old: Path | None, previous: int | None, current: int):
        self.changes = Changes(previous=previous, current=current)
        self.old = index_read(old) if old is not None else iter(())
        self.next_old = next(self.old, None)
        self.waiting: list[IndexRow] = []  # removed rows whose reason the database gives

    def add(self, row: IndexRow) -> None:
        a = self.next_old
        if a is None:  # past the old index's end, or none: added, or not there at all
            if row.state == IN:
                self.changes.note("added", row)
            return
        while a is not None and a.candidate_id < row.candidate_id:
            self._pair(a, None)
            a = next(self.old, None)
        if a is not None and a.candidate_id == row.candidate_id:
            self._pair(a, row)
            a = next(self.old, None)
        else:
            self._pair(None, row)
        self.next_old = a

    def finish(self) -> Changes:
        while self.next_old is not None:
            self._pair(self.next_old, None)
            self.next_old = next(self.old, None)
        self._resolve()
        return self.changes

    def _pair(self, a: IndexRow | None, b: IndexRow | None) -> None:
        changes = self.changes
        was, now = a is not None and a.published, b is not None and b.published
        if now and not was:
            changes.note("added", b)
        elif was and not now:
            if b is not None:  # read by this build and left out: the build says why
                changes.removed_reasons[b.state] += 1
                changes.note("removed", a, reason=b.state)
            else:
                self.waiting.append(a)
                if len(self.waiting) >= LOOKUP_CHUNK:
                    self._resolve()
        elif was and now:
            if a.digest != b.digest:
                changes.note("edited", b)
            else:
                changes.counts["unchanged"] += 1
            if a.split != b.split:
                changes.counts["moved_split"] += 1

    def _resolve(self) -> None:
        reasons = removal_reasons([r.candidate_id for r in self.waiting])
        for r in self.waiting:
            self.changes.removed_reasons[reasons[r.candidate_id]] += 1
            self.changes.note("removed", r, reason=reasons[r.candidate_id])
        self.waiting.clear()


def index_diff(*, old: Path | None, new: Path, previous: int | None, current: int) -> Changes:
    """The changes from the version indexed at `old` (None: there is none) to `new`."""
    diff = IndexDiff(old=old, previous=previous, current=current)
    for row in index_read(new):
        diff.add(row)
    return diff.finish()


def _cell(text: str) -> str:
    return text.replace("|", "\\|")  # a source named "a|b" stays in its table cell


def changelog_markdown(*, project: str, summary: dict, current: int) -> str:
    """CHANGELOG.md from a manifest's changelog (the same text export_diff prints)."""
    previous = summary["previous_version"]
    lines = [f"# Changes in {project} v{current}", ""]
    if previous is None:
        lines += ["The first version: every row is new.", ""]
    else:
        lines += [f"Since v{previous}.", ""]
    lines += [
        f"- added: {summary['added']}", f"- removed: {summary['removed']}",
        f"- edited: {summary['edited']}", f"- unchanged: {summary['unchanged']}",
        f"- moved to another split: {summary['moved_split']}", "",
    ]
    for title, key in (("By task", "by_task"), ("By source", "by_source")):
        if summary[key]:
            lines += [f"## {title}", "", "| | added | removed | edited |", "| --- | --- | --- | --- |"]
            lines += [f"| {_cell(name)} | {c.get('added', 0)} | {c.get('removed', 0)} | "
                      f"{c.get('edited', 0)} |" for name, c in summary[key].items()]
            lines.append("")
    if summary["removed_reasons"]:
        lines += ["## Why rows were removed", ""]
        lines += [f"- {reason}: {n}" for reason, n in summary["removed_reasons"].items()]
        lines.append("")
    for kind in KINDS:
        rows = summary["listed"][kind]
        if rows:
            more = summary[kind] - len(rows)
            lines += [f"## {kind.capitalize()} rows" + (f" (first {len(rows)})" if more else ""), ""]
            lines += [
                f"- candidate {r['candidate_id']} (record {r['record_id']}, {r['task']}, "
                f"{r['source']})" + (f": {r['reason']}" if r.get("reason") else "")
                for r in rows
            ]
            lines.append("")
    return "\n".join(lines)
