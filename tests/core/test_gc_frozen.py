import gc
import weakref

from medmax_review.core.gc_frozen import gc_frozen


class _Node:
    def __init__(self):
        self.me = self  # a cycle: only the collector frees it


def test_gc_frozen_freezes_what_lives_and_still_collects_new_garbage():
    before = _Node()
    with gc_frozen():
        # What was alive is out of reach; garbage made inside is collected as usual
        assert gc.get_freeze_count() > 0
        made = _Node()
        gone = weakref.ref(made)
        del made
        gc.collect()
        assert gone() is None
    # Then everything is back with the collector
    assert gc.get_freeze_count() == 0
    kept = weakref.ref(before)
    del before
    gc.collect()
    assert kept() is None


def test_gc_frozen_thaws_when_the_block_raises():
    try:
        with gc_frozen():
            raise RuntimeError("the job failed")
    except RuntimeError:
        pass
    assert gc.get_freeze_count() == 0
