"""Candidate browser page time as the number of candidates grows: keyset page 1 against a deep page.

Synthetic candidates (four per source record, scores and priorities spread out) are generated
inside PostgreSQL with generate_series into a bench database, one project per size. For each
size and each browser query (no filter; task filter sorted by priority; score band filter) the
median time of `candidates_browse` is measured on page 1 and on a page 90% of the way through,
reached by its cursor, and for comparison the same deep page read with OFFSET.

    .venv/bin/python bench/bench_browse.py [--sizes 10000 100000 1000000] [--db medmax_bench_browse]

Loaded projects are kept, so a second run only measures. A deep/page-1 ratio near 1 at every
size is the point of keyset pagination; the OFFSET column shows what it avoids.
"""

import argparse
import statistics
import sys
import time
from functools import partial
from pathlib import Path

REPEAT = 7
sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_export import _django, _ensure_database  # noqa: E402  (same bench database setup)

RECORDS_SQL = """
INSERT INTO sources_sourcerecord (project_id, source, external_id, license, credential,
    modality, language, caption, inline_mention, question, answer, report, meta, created_at)
SELECT %(project)s, (ARRAY['vqa_rad','slake','pmc_oa','quilt'])[1 + g %% 4], 'r' || g,
    (ARRAY['CC0-1.0','CC-BY-4.0','CC-BY-NC-4.0'])[1 + g %% 3], 'no', 'CT', 'en',
    'A chest CT.', '', 'Which lung?', 'Right', '', '{}', now()
FROM generate_series(1, %(records)s) AS g
"""

CANDIDATES_SQL = """
INSERT INTO review_candidate (project_id, record_id, template_ref, template_version, sample_index,
    task, instruction, context, response, image_position, provenance, raw_output,
    generation_error, prompt_tokens, completion_tokens, status, scores, priority, version,
    credential, edited, created_at, updated_at)
SELECT r.project_id, r.id, 'vqa/default@v' || (1 + (r.id + s) %% 3), 1, s,
    (ARRAY['vqa','image_captioning','visual_chat','multimodal_generation'])[1 + s],
    'Which lung is opacified?', '', 'The right lung.', 'before_instruction',
    jsonb_build_object('model', (ARRAY['smollm2-135m','gpt-4o'])[1 + (r.id + s) %% 2],
                       'backend', 'template'),
    '', '', 0, 0,
    (ARRAY['pending','pending','pending','approved','rejected','adjudication'])[1 + (r.id * 7 + s) %% 6],
    jsonb_build_object('grounding', jsonb_build_object(
        'value', round((((r.id * 37 + s * 11) %% 100) / 100.0)::numeric, 2),
        'band', (ARRAY['fail','poor','fair','good'])[1 + ((r.id * 37 + s * 11) %% 100) / 25],
        'evidence', '[]'::jsonb)),
    ((r.id * 13 + s * 7) %% 1000) / 1000.0, 1, false, false, now(), now()
FROM sources_sourcerecord r CROSS JOIN generate_series(0, 3) AS s
WHERE r.project_id = %(project)s
"""


def _load(size: int):
    from django.db import connection

    from medmax_review.projects.services import project_get_or_create
    from medmax_review.review.models import Candidate

    project, _ = project_get_or_create(slug=f"bench-{size}", name=f"Browse bench {size}")
    have = Candidate.objects.filter(project=project).count()
    if have >= size:
        return project
    print(f"loading {size} candidates ...", flush=True)
    started = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.execute(RECORDS_SQL, {"project": project.id, "records": size // 4})
        cursor.execute(CANDIDATES_SQL, {"project": project.id})
        cursor.execute("ANALYZE review_candidate")
        cursor.execute("ANALYZE sources_sourcerecord")
    print(f"  loaded in {time.perf_counter() - started:.1f} s", flush=True)
    return project


def _median_ms(fn) -> float:
    fn()  # warm the cache: we compare access paths, not disk reads
    times = []
    for _ in range(REPEAT):
        started = time.perf_counter()
        fn()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def _staff():
    """A reader with credentialed access, so the bench reads every candidate."""
    from types import SimpleNamespace

    return SimpleNamespace(profile=SimpleNamespace(credentialed_access=True))


def _deep_cursor(project, filters, fraction: float) -> tuple[str, int]:
    """The cursor of the row `fraction` of the way through the ordering, and its offset."""
    from django.db.models import F

    from medmax_review.review import browse_selectors as bs

    descending, score = bs.sort_spec(filters.sort)
    qs = bs.candidates_filtered(project=project, filters=filters, user=_staff())
    key = filters.sort.lstrip("-")
    qs = qs.annotate(sort_key=bs._score_value(score) if score else F(key))
    order = ("-sort_key", "-id") if descending else ("sort_key", "id")
    total = qs.count()
    offset = int(total * fraction)
    row = qs.order_by(*order).values_list("sort_key", "id")[offset]
    return bs.cursor_encode(row[0], row[1]), offset + 1


def _offset_page(project, filters, offset: int):
    from django.db.models import F

    from medmax_review.review import browse_selectors as bs

    descending, score = bs.sort_spec(filters.sort)
    qs = bs.candidates_filtered(project=project, filters=filters, user=_staff())
    key = filters.sort.lstrip("-")
    qs = qs.annotate(sort_key=bs._score_value(score) if score else F(key))
    order = ("-sort_key", "-id") if descending else ("sort_key", "id")
    return list(qs.select_related("record").order_by(*order)[offset:offset + bs.PAGE_SIZE])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--db", default="medmax_bench_browse")
    args = parser.parse_args()
    _ensure_database(args.db)
    _django(args.db)
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    from medmax_review.review.browse_selectors import BrowseFilters, candidates_browse

    queries = {
        "all, newest first": BrowseFilters(sort="-id"),
        "task=vqa, priority": BrowseFilters(task="vqa", sort="-priority"),
        "grounding=poor, id": BrowseFilters(score_name="grounding", band="poor", sort="id"),
        "model=gpt-4o, id": BrowseFilters(model="gpt-4o", sort="-id"),
        # No index serves a sort on one score (scores are open-ended JSON): expect this to grow.
        "all, grounding high": BrowseFilters(sort="-score:grounding"),
    }
    header = (f"{'size':>9} {'query':<22} {'page 1 ms':>10} {'deep ms':>9} {'deep/p1':>8}"
              f" {'OFFSET ms':>10} {'OFFSET/deep':>11}")
    print(header)
    for size in args.sizes:
        project = _load(size)
        for label, filters in queries.items():
            cursor, offset = _deep_cursor(project, filters, 0.9)
            first = _median_ms(partial(candidates_browse, project=project, filters=filters, user=_staff()))
            deep = _median_ms(
                partial(candidates_browse, project=project, filters=filters, cursor=cursor, user=_staff())
            )
            off = _median_ms(partial(_offset_page, project, filters, offset))
            print(f"{size:>9} {label:<22} {first:>10.1f} {deep:>9.1f} {deep / first:>8.2f}"
                  f" {off:>10.1f} {off / deep:>11.1f}", flush=True)


if __name__ == "__main__":
    main()
