"""The ids a stream delivered most recently: what an overlap re-read must not deliver again."""

from __future__ import annotations

from collections.abc import Iterable

__all__ = ["RecentIds"]


class RecentIds:
    """The ids delivered most recently (at least ``capacity`` of them), and those not yet committed.

    Two generations of sets: ids go into ``current``; when it holds ``capacity`` it becomes
    ``previous`` and a new ``current`` starts, dropping the old ``previous`` whole. So the newest
    ``capacity`` ids are always known, at most about twice that are held, and nothing is ever
    trimmed one id at a time. A page whose ids are all new is taken with set operations in C.
    """

    __slots__ = ("capacity", "current", "fresh", "previous")

    def __init__(self, ids: Iterable[str] = (), capacity: int = 10_000) -> None:
        self.capacity = capacity
        newest = list(ids)[-capacity:]  # the store's ids, oldest first
        self.previous: set[str] = set(newest)
        self.current: set[str] = set()
        self.fresh: list[str] = []  # delivered since the last commit, in order

    def __contains__(self, item: str) -> bool:
        return item in self.current or item in self.previous

    def __len__(self) -> int:
        return len(self.current) + len(self.previous)

    def add(self, item: str) -> None:
        self.current.add(item)
        self._rotate_when_full()

    def all_new(self, ids: list[str]) -> bool:
        """True when no id of a page was seen before and none repeats (set operations in C)."""
        page = set(ids)
        return len(page) == len(ids) and self.current.isdisjoint(page) and self.previous.isdisjoint(page)

    def add_page(self, ids: list[str]) -> bool:
        """Take every id of a page if none was seen before and none repeats; else take none, return False."""
        if not self.all_new(ids):
            return False
        self.extend(ids)
        return True

    def extend(self, ids: Iterable[str]) -> None:
        """Take ids known to be new (one rotation check for all of them)."""
        self.current.update(ids)
        self._rotate_when_full()

    def _rotate_when_full(self) -> None:
        if len(self.current) >= self.capacity:
            self.previous, self.current = self.current, set()

    def take_fresh(self) -> list[str]:
        """The ids delivered since the last call (they go with the next commit)."""
        fresh, self.fresh = self.fresh, []
        return fresh
