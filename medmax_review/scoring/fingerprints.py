"""Fingerprint bookkeeping: image hashes with their bands, candidate MinHash signatures with
their LSH bands, stored once and looked up by indexed equality (never all pairs)."""

import hashlib
from collections import defaultdict

from django.db import transaction

from medmax_review.core.bulk_write import rows_insert
from medmax_review.review.models import Candidate
from medmax_review.scoring.models import (
    CandidateBand,
    CandidateSignature,
    ImageFingerprint,
    ImageHashBand,
)
from medmax_review.scoring.scorers import image as image_scorer
from medmax_review.scoring.scorers import near_duplicate
from medmax_review.sources import image_files


def text_sha1(candidate: Candidate) -> str:
    text = "\x00".join((candidate.instruction, candidate.context, candidate.response))
    return hashlib.sha1(text.encode()).hexdigest()


def signed64(value: int) -> int:
    return value - (1 << 64) if value >= (1 << 63) else value


def image_fingerprints_ensure(*, assets: list) -> dict[int, ImageFingerprint]:
    """{image id: fingerprint}, computing (once) those not stored yet."""
    by_id = {a.id: a for a in assets}
    known = {f.image_id: f for f in ImageFingerprint.objects.filter(image_id__in=by_id)}
    fresh = []
    for image_id, asset in by_id.items():
        if image_id in known:
            continue
        try:
            with image_files.open_file(asset.file) as fh:
                facts = image_scorer.image_inspect(fh)
        except OSError as exc:  # missing, or the storage could not be read
            facts = image_scorer.ImageFacts(decodable=False, error=f"{type(exc).__name__}: {exc}")
        fresh.append(ImageFingerprint(
            image_id=image_id, decodable=facts.decodable, error=facts.error[:300],
            width=facts.width, height=facts.height, stddev=facts.stddev,
            dhash=signed64(facts.dhash),
        ))
    if fresh:
        with transaction.atomic():
            ImageFingerprint.objects.bulk_create(fresh, ignore_conflicts=True)
            stored = ImageFingerprint.objects.filter(
                image_id__in=[f.image_id for f in fresh]
            ).exclude(bands__isnull=False)
            ImageHashBand.objects.bulk_create([
                ImageHashBand(fingerprint=f, key=i * 256 + band)
                for f in stored if f.decodable
                for i, band in enumerate(image_scorer.hash_bands(f.dhash_unsigned))
            ])
        known = {f.image_id: f for f in ImageFingerprint.objects.filter(image_id__in=by_id)}
    return known


def near_images(fingerprints: list[ImageFingerprint]) -> dict[int, list[tuple[int, int]]]:
    """{image id: [(other image id, distance)]} through equal hash bands, never all pairs."""
    keys_of = {
        f.image_id: {i * 256 + b for i, b in enumerate(image_scorer.hash_bands(f.dhash_unsigned))}
        for f in fingerprints if f.decodable
    }
    all_keys = set().union(*keys_of.values()) if keys_of else set()
    if not all_keys:
        return {}
    sharing = defaultdict(set)
    for key, image_id, dhash in ImageHashBand.objects.filter(key__in=all_keys).values_list(
        "key", "fingerprint__image_id", "fingerprint__dhash"
    ):
        sharing[key].add((image_id, dhash & ((1 << 64) - 1)))
    result = {}
    for f in fingerprints:
        others = set().union(*(sharing[k] for k in keys_of.get(f.image_id, ())))
        result[f.image_id] = sorted(
            (other_id, d) for other_id, other_hash in others
            if other_id != f.image_id
            and (d := image_scorer.hamming(f.dhash_unsigned, other_hash))
            <= image_scorer.NEAR_DUPLICATE_DISTANCE
        )
    return result


def candidate_signatures_ensure(*, candidates: list[Candidate]) -> dict[int, list[int]]:
    """{candidate id: MinHash}, (re)computing only those whose text changed."""
    stored = {s.candidate_id: s for s in CandidateSignature.objects.filter(candidate__in=candidates)}
    stale = []
    result = {}
    for c in candidates:
        sha1 = text_sha1(c)
        s = stored.get(c.id)
        if s is not None and s.text_sha1 == sha1:
            result[c.id] = s.minhash
            continue
        text = "\n".join((c.instruction, c.context, c.response))
        result[c.id] = near_duplicate.minhash(text)
        stale.append((c, sha1, result[c.id], bool(near_duplicate.shingles(text))))
    if stale:
        with transaction.atomic():
            CandidateSignature.objects.filter(candidate_id__in=[c.id for c, *_ in stale]).delete()
            # COPY on PostgreSQL: a batch's bands are tens of thousands of rows.
            signature_ids = rows_insert(model=CandidateSignature, rows=[
                {"candidate_id": c.id, "project_id": c.project_id, "text_sha1": sha1, "minhash": mh}
                for c, sha1, mh, _ in stale
            ])
            rows_insert(model=CandidateBand, rows=[
                {"signature_id": s, "project_id": c.project_id, "candidate_id_copy": c.id, "key": key}
                for s, (c, _, mh, has_text) in zip(signature_ids, stale, strict=True) if has_text
                for key in near_duplicate.lsh_bands(mh, scope=c.record.image_id or 0)
            ])
    return result


def _bands_sharing(*, project_id: int, keys: set[int], below: int) -> list[tuple[int, int]]:
    """(key, candidate id) of the project's bands with one of these keys, of candidates before
    `below` (a batch has thousands of keys: one array parameter, not a placeholder each)."""
    return list(CandidateBand.objects.filter(
        project_id=project_id, candidate_id_copy__lt=below, key__in_array=list(keys),
    ).values_list("key", "candidate_id_copy"))


def earlier_near_duplicates(*, candidates: list[Candidate]) -> dict[int, list[tuple[int, float]]]:
    """{candidate id: [(earlier candidate id, estimated Jaccard)]} at or above SIMILAR, found
    through shared LSH bands of the same project and image."""
    signatures = candidate_signatures_ensure(candidates=candidates)
    keys_of = {
        c.id: near_duplicate.lsh_bands(signatures[c.id], scope=c.record.image_id or 0)
        for c in candidates
    }
    by_project = defaultdict(list)
    for c in candidates:
        by_project[c.project_id].append(c)
    matches: dict[int, list[tuple[int, float]]] = defaultdict(list)
    for project_id, members in by_project.items():
        all_keys = {k for c in members for k in keys_of[c.id]}
        sharing = defaultdict(set)
        for key, other in _bands_sharing(
            project_id=project_id, keys=all_keys, below=max(c.id for c in members)
        ):
            sharing[key].add(other)
        pairs = {
            (c.id, other) for c in members for k in keys_of[c.id] for other in sharing[k]
            if other < c.id
        }
        other_ids = {o for _, o in pairs}
        other_sigs = dict(CandidateSignature.objects.filter(
            candidate_id__in=other_ids).values_list("candidate_id", "minhash"))
        for cid, other in sorted(pairs):
            sim = near_duplicate.similarity(signatures[cid], other_sigs[other])
            if sim >= near_duplicate.SIMILAR:
                matches[cid].append((other, sim))
    return matches
