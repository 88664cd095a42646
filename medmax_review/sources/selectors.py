from collections.abc import Collection

from django.db import connection
from django.db.models import Q, QuerySet

from medmax_review.core.pg_arrays import array_param
from medmax_review.core.pg_settings import setting_for_statements
from medmax_review.projects.access import may_read_credentialed
from medmax_review.projects.models import Project
from medmax_review.sources.models import ImageAsset, ImportRun, SourceRecord
from medmax_review.sources.readers.dicom import PRESETS


def import_runs_for_project(*, project: Project, limit: int = 50) -> QuerySet[ImportRun]:
    return (
        ImportRun.objects.filter(project=project)
        .select_related("launched_by")
        .defer("errors")  # the list counts its rejected rows; the problems stay on the run page
        .order_by("-created_at")[:limit]
    )


def image_assets_with_preset(*, sha256: str) -> QuerySet[ImageAsset]:
    """DICOM images that list sha256 among their window presets (see readers.dicom.PRESETS)."""
    # Key lookups rather than JSON containment: they work on every database Django supports.
    query = Q()
    for name in PRESETS:
        query |= Q(**{f"dicom__presets__{name}__sha256": sha256})
    return ImageAsset.objects.filter(query)


def image_asset_for_user(*, user, sha256: str) -> ImageAsset | None:
    """The image if one of the user's projects holds a record with it that they may see.

    A credentialed record's image needs credentialed access; the same bytes in an open record
    of a project the user belongs to are visible to them. A window preset belongs to no record:
    it is visible to exactly those who may see an image it was rendered from.
    """
    shas = [sha256]
    credentials = _credentials_seen(user=user, shas=shas)
    if not credentials:
        shas = list(image_assets_with_preset(sha256=sha256).values_list("sha256", flat=True))
        credentials = _credentials_seen(user=user, shas=shas) if shas else set()
    if not credentials:
        return None
    if "no" not in credentials and not may_read_credentialed(user, credentialed=True):
        return None
    return ImageAsset.objects.filter(sha256=sha256).first()


def _credentials_seen(*, user, shas: list[str]) -> set[str]:
    return set(
        SourceRecord.objects.filter(
            image__sha256__in=shas, project__memberships__user=user
        ).values_list("credential", flat=True).distinct()
    )


# Each next distinct (source, licence) pair is one probe of record_filter_idx: the filter
# choices cost the same in a project of a thousand records or of millions.
_PAIRS_SQL = """
WITH RECURSIVE pairs AS (
    (SELECT source, license FROM sources_sourcerecord WHERE project_id = %(p)s
     ORDER BY source, license LIMIT 1)
    UNION ALL
    SELECT next.source, next.license FROM pairs, LATERAL (
        SELECT source, license FROM sources_sourcerecord
        WHERE project_id = %(p)s AND (source, license) > (pairs.source, pairs.license)
        ORDER BY source, license LIMIT 1
    ) AS next
)
SELECT source, license FROM pairs
"""


def record_source_licences(*, project: Project) -> list[tuple[str, str]]:
    """The project's distinct (source, licence) pairs, sorted."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(_PAIRS_SQL, {"p": project.pk})
            return cursor.fetchall()
    return list(SourceRecord.objects.filter(project=project).values_list("source", "license")
                .distinct().order_by("source", "license"))


# One descent of record_unique_external_id per key, whatever the planner believes: while an
# import grows a project by millions of rows its statistics lag behind (they may say the
# project holds a dozen records), and then it would rather read every record of the source
# through record_filter_idx and filter or sort them, once per batch. The first record at or
# after each key in the unique index's order is read, and kept when it is that key; with
# sorting turned off for this one query, only that index can give the order.
_KEYS_SQL = """
SELECT k.source, k.external_id, r.id, r.credential
FROM unnest({sources}, {external_ids}) AS k(source, external_id)
CROSS JOIN LATERAL (
    SELECT id, credential, source, external_id FROM sources_sourcerecord
    WHERE project_id = %s AND (source, external_id) >= (k.source, k.external_id)
    ORDER BY source, external_id
    LIMIT 1
) AS r
WHERE r.source = k.source AND r.external_id = k.external_id
"""


def records_by_key(
    *, project_id: int, keys: Collection[tuple[str, str]],
) -> dict[tuple[str, str], tuple[int, str]]:
    """{(source, external_id): (id, credential)} of the project's records among these keys."""
    keys = list(keys)
    if not keys:
        return {}
    if connection.vendor == "postgresql":
        sources, source_param = array_param([s for s, _ in keys], "text")
        external_ids, external_param = array_param([e for _, e in keys], "text")
        with setting_for_statements("enable_sort", "off"), connection.cursor() as cursor:
            cursor.execute(_KEYS_SQL.format(sources=sources, external_ids=external_ids),
                           [source_param, external_param, project_id])
            found = cursor.fetchall()
        return {(source, external_id): (pk, credential)
                for source, external_id, pk, credential in found}
    wanted = set(keys)
    found = SourceRecord.objects.filter(
        project_id=project_id, source__in_array={s for s, _ in keys},
        external_id__in_array={e for _, e in keys},
    ).values_list("source", "external_id", "id", "credential")
    return {(s, e): (pk, c) for s, e, pk, c in found if (s, e) in wanted}
