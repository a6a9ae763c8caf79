"""`mediafm demo` end to end on a tiny catalog (real detector, encoders, pretraining, probes)."""

from __future__ import annotations

import json

import numpy as np

import pytest

from mediafm.cli.main import main
from mediafm.tasks.clips import EMBEDDING_KINDS
from mediafm.tasks.grid import TASKS


@pytest.mark.slow
def test_demo_end_to_end_and_resume(tmp_path, capsys):
    out = tmp_path / "demo"
    argv = ["demo", "--out", str(out), "--titles", "6", "--max-steps", "20", "--n-boot", "50"]
    assert main(argv) == 0
    printed = capsys.readouterr()
    grid = json.loads((out / "eval" / "eval.json").read_text())
    assert grid["rows"] == list(EMBEDDING_KINDS) and not grid["skipped"]
    for kind in EMBEDDING_KINDS:
        assert set(grid["cells"][kind]) == {t.name for t in TASKS}
        for cell in grid["cells"][kind].values():
            # A percentile bootstrap interval need not contain the point estimate (AP is not
            # linear in the titles), so only finiteness and order are checked.
            assert np.isfinite(cell["value"]) and cell["ci_low"] <= cell["ci_high"]
            assert cell["n_titles"] == 6
    assert "mediafm serve" in printed.out and str(out / "store") in printed.out
    # The applications: two heads fitted without the held-out (last) title, its clips and breaks printed.
    held = sorted(p.stem for p in (out / "store" / "titles").glob("*.parquet"))[-1]
    for name in ("popularity", "ad_relevancy"):
        card = json.loads((out / "heads" / name / "card.json").read_text())
        assert card["n_titles"] == 5 and held not in card["titles"] and card["embedding"]["kind"] == "contextual"
    assert f"Top clips of the held-out title {held}" in printed.out and f"Ad breaks in {held}" in printed.out
    assert f"--heads {out / 'heads'}" in printed.out
    # A second run reuses every finished stage.
    assert main(argv) == 0
    err = capsys.readouterr().err
    assert err.count("reused") == 5
    # Other training defaults (a newer release): the model is trained again, the media reused.
    import dataclasses

    from mediafm.cli.demo import DemoConfig

    real = DemoConfig.train_config
    DemoConfig.train_config = lambda self: dataclasses.replace(real(self), patience=real(self).patience + 1)
    try:
        assert main(argv) == 0
    finally:
        DemoConfig.train_config = real
    err = capsys.readouterr().err
    assert err.count("reused") == 2 and "[3/5] pretrain ..." in err


def test_the_demo_trains_with_what_its_pretrain_call_says():
    import dataclasses

    from mediafm.cli.demo import DemoConfig
    from mediafm.training.pretrain import TrainConfig

    default = DemoConfig().train_config()
    assert default == dataclasses.replace(TrainConfig(), preset=DemoConfig.preset, seed=DemoConfig.seed, progress=False)
    capped = DemoConfig(max_steps=7, seed=3).train_config()
    assert (capped.max_steps, capped.min_steps, capped.seed) == (7, 7, 3)
