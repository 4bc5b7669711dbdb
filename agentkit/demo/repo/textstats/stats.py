"""Descriptive statistics without third-party dependencies."""

from collections import Counter


def mean(values):
    """Arithmetic mean; raises ValueError on an empty list."""
    if not values:
        raise ValueError("mean() of an empty list")
    return sum(values) / len(values)


def median(values):
    """The middle value of the sorted list (the mean of the two middle values for even lengths)."""
    if not values:
        raise ValueError("median() of an empty list")
    ordered = sorted(values)
    middle = len(ordered) // 2
    return ordered[middle]


def mode(values):
    """The most common value; ties go to the value seen first."""
    if not values:
        raise ValueError("mode() of an empty list")
    counts = Counter(values)
    best = max(counts.values())
    return next(v for v in values if counts[v] == best)


def spread(values):
    """Largest minus smallest value."""
    if not values:
        raise ValueError("spread() of an empty list")
    return max(values) - min(values)
