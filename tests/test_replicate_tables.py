"""The replicate summary of benchmarks/tasks.py: means, counts and the check over means."""

import sys
from pathlib import Path

import pytest

from mediafm.evaluation.grid import TASKS as TASK_SPECS

sys.path.append(str(Path(__file__).resolve().parents[1] / "benchmarks"))  # after installed packages: no shadowing
import ablation  # noqa: E402
import tasks  # noqa: E402

TASKS = [t.name for t in TASK_SPECS]  # genre, tone, ad_relevancy, popularity, retrieval


def _cells(values):
    return {t: {"value": v, "ci_low": v - 0.03, "ci_high": v + 0.03} for t, v in zip(TASKS, values)}


def _record(seed, iso, ctx):
    return {"row": f"no metadata, training seed {seed}", "readout": "stack+input", "train_s": 1.0, "steps": 10,
            "best_val_loss": 1.0, "cells": {"contextual-isolated": _cells(iso), "contextual": _cells(ctx)}}


FUSED = _cells([0.50, 0.60, 0.60, 0.30, 0.30])


def test_summary_counts_trainings_and_means():
    recs = [_record(1, [0.5, 0.6, 0.6, 0.30, 0.40], [0.8, 0.64, 0.70, 0.32, 0.35]),
            _record(2, [0.5, 0.6, 0.6, 0.30, 0.30], [0.8, 0.62, 0.70, 0.34, 0.39])]
    table, means = ablation.replicate_summary("no metadata", recs, FUSED)
    assert means["contextual"]["tone"]["value"] == pytest.approx(0.63)
    assert means["contextual-isolated"]["retrieval"]["value"] == pytest.approx(0.35)
    diff_row = next(line for line in table.splitlines() if line.startswith("| contextual - isolated"))
    assert "+0.030 (2 of 2)" in diff_row  # tone
    assert "+0.020 (1 of 2)" in diff_row  # retrieval: one training below the clip alone
    above_row = next(line for line in table.splitlines() if line.startswith("| contextual above fused"))
    assert above_row.split("|")[2].strip() == "2 of 2"  # genre above 0.53
    assert above_row.split("|")[3].strip() == "1 of 2"  # tone: 0.64 above 0.63, 0.62 not


def test_check_over_means_flags_a_missed_target():
    ok = [_record(1, [0.5, 0.6, 0.6, 0.30, 0.30], [0.8, 0.66, 0.70, 0.34, 0.35])]
    _, means = ablation.replicate_summary("x", ok, FUSED)
    met, out = tasks.check_expectation({"cells": {"fused": FUSED, **means}}, first="x")
    assert met and out.endswith("all targets met")
    missed = [_record(1, [0.5, 0.6, 0.6, 0.30, 0.36], [0.8, 0.66, 0.70, 0.34, 0.35])]
    _, means = ablation.replicate_summary("x", missed, FUSED)
    met, out = tasks.check_expectation({"cells": {"fused": FUSED, **means}}, first="x")
    assert not met
    assert "[x] retrieval" in out and "target missed" in out and out.endswith("some targets missed (marked)")
