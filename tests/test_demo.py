"""`mediafm demo` end to end on a tiny catalog (real detector, encoders, pretraining, probes), and
the recipe's stage reuse with stand-in stages."""

from __future__ import annotations

import argparse
import dataclasses
import json

import numpy as np

import pytest

from mediafm.cli.main import main
from mediafm.recipes import demo
from mediafm.recipes.demo import DemoConfig, run_demo
from mediafm.evaluation.clips import EMBEDDING_KINDS
from mediafm.evaluation.grid import TASKS
from mediafm.training.pretrain import TrainConfig


def _cli_config(argv: list[str]) -> DemoConfig:
    from mediafm.cli.demo import add_arguments, config_from_args

    p = argparse.ArgumentParser()
    add_arguments(p)
    return config_from_args(p.parse_args(argv))


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
        assert card["embedding"]["pooling"] == {"popularity": "mean", "ad_relevancy": "mean+edges"}[name]
    assert f"Top clips of the held-out title {held}" in printed.out and f"Ad breaks in {held}" in printed.out
    assert f"--heads {out / 'heads'}" in printed.out
    # A second run reuses every finished stage.
    assert main(argv) == 0
    err = capsys.readouterr().err
    assert err.count("reused") == 5
    # Other training defaults (a newer release): the model is trained again, the media reused.
    cfg = _cli_config(argv[1:])
    run_demo(dataclasses.replace(cfg, train=cfg.train.override(patience=cfg.train.patience + 1), apps=False))
    err = capsys.readouterr().err
    assert err.count("reused") == 2 and "[3/5] pretrain ..." in err


def test_the_demo_command_runs_the_recipe_with_its_defaults():
    assert _cli_config([]) == DemoConfig()
    # Pretraining's own schedule for the catalog, as `mediafm pretrain` gives a user.
    assert DemoConfig().train == dataclasses.replace(TrainConfig(), progress=False)
    capped = _cli_config(["--max-steps", "7", "--seed", "3", "--preset", "tiny"])
    assert (capped.seed, capped.train.seed, capped.train.max_steps, capped.train.preset) == (3, 3, 7, "tiny")


def test_stages_run_again_from_the_first_whose_settings_changed(tmp_path, monkeypatch, capsys):
    ran = []

    def stand_in(name):
        def stage(cfg, lay, say):
            ran.append(name)
            if name == failing:
                raise RuntimeError(name)
            if name == "eval":
                lay.eval.mkdir(parents=True, exist_ok=True)
                (lay.eval / "eval.md").write_text("| table |")
        return stage

    for name in demo.STAGES:
        monkeypatch.setitem(demo.STAGES, name, stand_in(name))

    def run(cfg: DemoConfig) -> list[str]:
        ran.clear()
        res = run_demo(cfg)
        assert list(res.timings) == list(demo.STAGES) and res.grid_md == "| table |" and res.apps is None
        return list(ran)

    failing = None
    cfg = DemoConfig(out=str(tmp_path / "demo"), apps=False)
    assert run(cfg) == list(demo.STAGES)
    assert run(cfg) == [] and capsys.readouterr().err.count("reused") == 5
    assert run(dataclasses.replace(cfg, n_boot=10)) == ["eval"]
    longer = dataclasses.replace(cfg, train=cfg.train.override(patience=cfg.train.patience + 1))
    assert run(longer) == ["pretrain", "embed", "eval"]
    # Display and render settings do not change what a stage writes.
    assert run(dataclasses.replace(longer, progress=False, workers=1,
                                   train=dataclasses.replace(longer.train, progress=True))) == []
    # New encoder defaults (an upgrade) encode the store again, and so train and probe again.
    from mediafm.encoders.config import EncodeConfig

    monkeypatch.setattr(demo, "EncodeConfig", lambda: EncodeConfig(descriptors=False))
    assert run(longer) == ["ingest", "pretrain", "embed", "eval"]
    monkeypatch.setattr(demo, "EncodeConfig", EncodeConfig)
    assert run(longer) == ["ingest", "pretrain", "embed", "eval"] and run(longer) == []
    # A failed stage is not recorded; the next run starts there.
    failing = "embed"
    with pytest.raises(RuntimeError):
        run(dataclasses.replace(cfg, titles=3))
    failing = None
    assert run(dataclasses.replace(cfg, titles=3)) == ["embed", "eval"]


def test_the_library_never_imports_the_cli():
    import ast
    from pathlib import Path

    import mediafm

    root = Path(mediafm.__file__).parent
    found = []
    for f in root.rglob("*.py"):
        if f.relative_to(root).parts[0] in ("cli", "__main__.py"):  # the command line's own modules
            continue
        for node in ast.walk(ast.parse(f.read_text(encoding="utf-8"))):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            found += [f"{f.relative_to(root)}: {n}" for n in names if (n + ".").startswith("mediafm.cli.")]
    assert not found
