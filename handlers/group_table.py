"""The processing stage's groups as they fill: record counts and exact metric statistics per group.

A group (a window start and the dimension values as decoded: numerically equal numbers already share
a key, ``1 == Decimal("1.0")`` with equal hashes; booleans are ``groups.Bool``) gets a small integer id
the first time it is seen, so a record's key tuple is hashed once, and its count and metric values are
kept under an ``int``. Metric values wait, gathered per group, until ``flush`` takes each group's in
four C calls (``len``, ``sum``, ``min``, ``max``): with a few values a group that beats a Python step
per value, and with one it costs about the same. The caller flushes once ``pending_values`` reaches its
bound, so memory grows with the number of groups only.

Sums are exact: ``flush`` runs inside ``exact.exact_context()``, where a sum that would round raises.
A block's column of decimals of one scale k arrives as integers (``handlers.scaled``): its values are
gathered and summed apart from the others, under their scale, and become ``Decimal``s once per group in
``groups``, which merges the scales and what canonical dimension texts make equal (``dimensions_text``).
"""

from __future__ import annotations

from collections import Counter, defaultdict, deque
from collections.abc import Iterable
from typing import Any

from handlers.exact import exact_context
from handlers.groups import Bool, GroupKey, GroupStats, Starts, Stats, dimensions_text
from handlers.scaled import to_decimals


class _Ids(dict[tuple[Any, ...], int]):
    """Group key → id, numbering a new key as it is looked up; ``keys[id]`` is the key."""

    def __init__(self) -> None:
        super().__init__()
        self.keys: list[tuple[Any, ...]] = []

    def __missing__(self, key: tuple[Any, ...]) -> int:
        number = self[key] = len(self.keys)
        self.keys.append(key)
        return number


class _HeadIds(dict[tuple[Any, ...], int]):
    """A key with its timestamp's head (``Starts``) in place of its window start → its group id: the
    block path then looks a record up once, without finding its window first. A head's window is
    found once per key; a window holds at most 24 heads (a day of hours), so this grows with the
    groups too."""

    def __init__(self, ids: _Ids, starts: Starts) -> None:
        super().__init__()
        self.ids, self.starts = ids, starts

    def __missing__(self, key: tuple[Any, ...]) -> int:
        group = (self.starts[key[0]], *key[1:])  # ValueError: Feb 30
        ids = self.ids
        number = ids.get(group)
        if number is None:  # as ids[group] would, one Python call fewer for each new group
            number = ids[group] = len(ids.keys)
            ids.keys.append(group)
        self[key] = number
        return number


class GroupTable:
    """Counts and metric statistics per group, for ``metrics`` metrics (by index); ``starts`` gives
    the window of a timestamp's head."""

    def __init__(self, metrics: int, starts: Starts) -> None:
        self._ids = _Ids()
        self._heads = _HeadIds(self._ids, starts)
        self._records: Counter[int] = Counter()
        # Per metric, per scale (0: the values themselves; k: scaled integers, n standing for n / 10**k,
        # handlers.scaled), per group: [count, sum, min, max], and the values waiting for a flush.
        self._stats: list[dict[int, dict[int, list[Any]]]] = [{} for _ in range(metrics)]
        self._pending: list[dict[int, defaultdict[int, list[Any]]]] = [
            {0: defaultdict(list)} for _ in range(metrics)
        ]
        self.pending_values = 0

    def add_record(self, key: tuple[Any, ...], values: Iterable[tuple[int, Any]]) -> None:
        """One record of group ``key``, with its (metric index, exact value) pairs."""
        group = self._ids[key]
        self._records[group] += 1
        for index, value in values:
            self._pending[index][0][group].append(value)
            self.pending_values += 1

    def ids(self, keys: list[tuple[Any, ...]], heads: bool = False) -> list[int]:
        """Each key's group id; counts one record for each. With ``heads`` the keys start with their
        timestamp's head, and a head whose date does not exist is a ValueError, raised before anything
        is counted."""
        ids = list(map((self._heads if heads else self._ids).__getitem__, keys))
        self._records.update(ids)
        return ids

    def add_values(self, index: int, ids: Iterable[int], values: list[Any], scale: int = 0) -> None:
        """Metric ``index``'s values, one for each id, in the same order; with ``scale`` k, integers
        standing for their value divided by ``10**k``."""
        pending = self._pending[index]
        waiting = pending.get(scale)
        if waiting is None:
            waiting = pending[scale] = defaultdict(list)
        deque(map(list.append, map(waiting.__getitem__, ids), values), maxlen=0)
        self.pending_values += len(values)

    def flush(self) -> None:
        """Take every waiting value into its group's statistics."""
        with exact_context():
            for scales, pendings in zip(self._stats, self._pending, strict=True):
                for scale, pending in pendings.items():
                    self._take(scales.setdefault(scale, {}), pending)
        self.pending_values = 0

    @staticmethod
    def _take(stats: dict[int, list[Any]], pending: defaultdict[int, list[Any]]) -> None:
        get = stats.get
        for group, values in pending.items():
            count, total, low, high = len(values), sum(values), min(values), max(values)
            current = get(group)
            if current is None:
                stats[group] = [count, total, low, high]
                continue
            current[0] += count
            current[1] += total
            if low < current[2]:
                current[2] = low
            if high > current[3]:
                current[3] = high
        pending.clear()

    def groups(self, dimensions: tuple[str, ...], metrics: tuple[str, ...]) -> dict[GroupKey, GroupStats]:
        """The groups so far, by window start and canonical dimensions text."""
        self.flush()
        groups: dict[GroupKey, GroupStats] = {}
        texts: dict[tuple[Any, ...], str] = {}
        named = list(zip(metrics, map(_merged_scales, self._stats), strict=True))
        keys = self._ids.keys
        for group, records in self._records.items():
            key = keys[group]
            values = key[1:]
            text = texts.get(values)
            if text is None:
                text = texts[values] = dimensions_text(
                    dimensions, [value.value if type(value) is Bool else value for value in values]
                )
            found = GroupStats(records, {name: stats[group] for name, stats in named if group in stats})
            at = (key[0], text)
            groups[at] = groups[at].merge(found) if at in groups else found
        return groups


def _merged_scales(scales: dict[int, dict[int, list[Any]]]) -> dict[int, Stats]:
    """One metric's statistics per group, its scales' merged: a scaled integer's ``Decimal`` is made
    once per group and statistic, here, rather than once per value."""
    merged = {group: Stats(*stats) for group, stats in scales.get(0, {}).items()}
    for scale, stats in scales.items():
        if scale == 0 or not stats:
            continue
        counts, sums, lows, highs = zip(*stats.values(), strict=True)
        found = map(
            Stats, counts, to_decimals(sums, scale), to_decimals(lows, scale), to_decimals(highs, scale)
        )
        if not merged:
            merged = dict(zip(stats, found, strict=True))
            continue
        for group, more in zip(stats, found, strict=True):
            merged[group] = merged[group].merge(more) if group in merged else more
    return merged
