"""Browser tests of the review screen; the browser and tab fixtures live in tests/conftest.py."""

from tests.review.review_fixtures import image, make_candidates, two_reviews  # noqa: F401
