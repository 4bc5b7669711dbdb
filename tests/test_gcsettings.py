"""The collector settings ``agentkit batch`` runs with, and that they are put back."""

from __future__ import annotations

import gc

import pytest

from agentkit.gcsettings import MANY_RUNS_GEN0, fewer_gc_passes


def test_fewer_gc_passes_raises_gen0_and_restores_the_thresholds() -> None:
    before = gc.get_threshold()
    with fewer_gc_passes():
        inside = gc.get_threshold()
        assert inside[0] == max(MANY_RUNS_GEN0, before[0]) and inside[1:] == before[1:]
    assert gc.get_threshold() == before


def test_thresholds_come_back_after_an_error_and_a_higher_setting_is_kept() -> None:
    before = gc.get_threshold()
    try:
        gc.set_threshold(MANY_RUNS_GEN0 * 2, *before[1:])
        with pytest.raises(RuntimeError), fewer_gc_passes():
            assert gc.get_threshold()[0] == MANY_RUNS_GEN0 * 2  # never lowered
            raise RuntimeError("boom")
        assert gc.get_threshold()[0] == MANY_RUNS_GEN0 * 2
    finally:
        gc.set_threshold(*before)
