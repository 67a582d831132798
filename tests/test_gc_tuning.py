"""The bot process's garbage-collector settings (bot.runtime.gc_tuning; docs/performance.md)."""
from __future__ import annotations

import gc

import pytest

from bot.runtime import gc_tuning
from config.settings import Settings


@pytest.fixture
def restored_gc():
    before = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*before)


def test_tune_freezes_what_start_up_made_and_sets_the_thresholds(restored_gc):
    made_at_start_up = [object() for _ in range(10)]
    gc_tuning.tune((12_345, 6, 7))

    assert gc.get_threshold() == (12_345, 6, 7)
    assert gc.get_freeze_count() > 0
    # Frozen: still tracked, but in no generation the collector scans.
    assert gc.is_tracked(made_at_start_up)
    assert not any(o is made_at_start_up for o in gc.get_objects())
    made_later: list[object] = []
    assert any(o is made_later for o in gc.get_objects())


def test_a_block_runs_under_other_thresholds_and_gets_them_back(restored_gc):
    gc.set_threshold(700, 10, 10)
    with gc_tuning.thresholds((50_000, 20, 10)):
        assert gc.get_threshold() == (50_000, 20, 10)
    assert gc.get_threshold() == (700, 10, 10)
    with pytest.raises(RuntimeError), gc_tuning.thresholds((1, 2, 3)):
        raise RuntimeError
    assert gc.get_threshold() == (700, 10, 10)


def test_the_setting_reads_json_and_refuses_negative_values(monkeypatch):
    assert Settings(_env_file=None).gc_thresholds == gc_tuning.DEFAULT_THRESHOLDS
    monkeypatch.setenv("GC_THRESHOLDS", "[700,10,10]")
    assert Settings(_env_file=None).gc_thresholds == gc_tuning.CPYTHON_DEFAULT
    monkeypatch.setenv("GC_THRESHOLDS", "[-1,10,10]")
    with pytest.raises(ValueError, match="cannot be negative"):
        Settings(_env_file=None)
