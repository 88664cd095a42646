# The review workspace fixtures (images from the demo data, candidates with their slots).
from tests.review.review_fixtures import image, make_candidates, two_reviews  # noqa: F401
