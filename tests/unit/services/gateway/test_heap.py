"""Settling the heap: cyclic garbage among frozen objects is reclaimed, the rest frozen."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator

import pytest

from services.gateway import heap


class Node:
    """A container that can refer to itself."""

    me: Node | None = None


@pytest.fixture(autouse=True)
def unfrozen() -> Iterator[None]:
    yield
    gc.unfreeze()


def test_a_frozen_cycle_that_became_garbage_is_reclaimed_by_the_next_settle() -> None:
    node = Node()
    node.me = node  # a cycle: reference counting alone never frees it
    gone = weakref.ref(node)
    heap.settle()  # the cycle is alive: frozen
    del node
    gc.collect()
    assert gone() is not None  # frozen: ordinary collections skip it
    heap.settle()
    assert gone() is None


def test_settling_freezes_what_is_alive_and_reference_counting_still_frees_it() -> None:
    node = Node()
    gone = weakref.ref(node)
    heap.settle()
    assert gc.get_freeze_count() > 0
    del node
    assert gone() is None  # no cycle: freed at once, frozen or not
