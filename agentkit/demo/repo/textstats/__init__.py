"""Small descriptive statistics for lists of numbers."""

from textstats.stats import mean, median, mode, spread

__all__ = ["mean", "median", "mode", "spread"]
