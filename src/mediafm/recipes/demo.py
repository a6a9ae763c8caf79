"""The demo recipe: synthesise a small catalog and run the whole pipeline on it, end to end.

    from mediafm.recipes.demo import DemoConfig, run_demo, train_config

    res = run_demo(DemoConfig(out="mediafm-demo", titles=20, train=train_config(max_steps=200)))
    print(res.grid_md)                   # the probes table (also in res.layout.eval / "eval.md")
    res.apps.top, res.apps.breaks        # the held-out title's top clips and ad breaks (DataFrames)

Stages, each a call into the library: synth (`mediafm.synth`) -> ingest (shots and encoders,
`mediafm.ingest`) -> pretrain -> embed (`mediafm.training`) -> eval (`mediafm.evaluation.grid`). Each
finished stage is recorded in OUT/demo.json with the settings it depends on (`stage_settings`); a
re-run reuses it while those are unchanged and no earlier stage ran again (ingest and embed also
resume title by title on their own). Then the applications (`mediafm.apps`): heads for popularity
and ad relevancy are fitted on every title but the last (seconds; always re-run), saved under
OUT/heads/ and applied to that held-out title.

`mediafm demo` and the benchmarks (benchmarks/tasks.py, benchmarks/apps.py) run this recipe.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

from mediafm.encoders.config import EncodeConfig
from mediafm.errors import ConfigError, MediafmError
from mediafm.evaluation.clips import DEFAULT_POOLING
from mediafm.training.pretrain import TrainConfig

if TYPE_CHECKING:
    import pandas as pd

    from mediafm.apps import TrainedHead


def train_config(seed: int = 0, preset: str = TrainConfig.preset, max_steps: int = 0) -> TrainConfig:
    """TrainConfig's defaults with the demo's seed and model size.

    Args:
        seed: training seed (the demo passes its catalog seed).
        preset: model size (mediafm.model.transformer.PRESETS).
        max_steps: optimiser steps; 0 leaves the schedule to pretraining, as `mediafm pretrain`
            would for the catalog.
    """
    # progress stays off here: DemoConfig.progress shows the bar, and a config that differs only
    # in display must not look like another training to caches keyed on it (benchmarks/ablation.py).
    return TrainConfig(progress=False).override(seed=seed, preset=preset, max_steps=max_steps)


@dataclass(frozen=True)
class DemoConfig:
    """What `run_demo` does; `mediafm demo`'s flags take their defaults from here."""

    out: str = "mediafm-demo"  # folder for everything the demo writes
    titles: int = 20  # synthetic titles (~10k frames in all)
    seed: int = 0  # catalog and probe seed
    min_scenes: int = 4  # shorter titles than the benchmark's 5-8 scenes (~30 s each)
    max_scenes: int = 6
    catalog: str = "demo"  # "demo" (min/max_scenes above) or a synth preset (mediafm.synth.story.STORY_PRESETS)
    train: TrainConfig = field(default_factory=train_config)  # pretraining
    n_boot: int = 500  # bootstrap resamples per cell
    pooling: str = DEFAULT_POOLING  # clip read-out of the probes (mediafm.evaluation.clips)
    workers: int = 2  # synth render processes
    apps: bool = True  # fit the two heads and apply them to the held-out title
    break_spacing_s: float = 10.0  # demo titles last about a minute, so breaks closer than in a feature film
    progress: bool = True  # stage lines and progress bars on stderr

    def story(self):
        """The StoryConfig the catalog is rendered with."""
        from mediafm.synth.story import STORY_PRESETS, StoryConfig

        if self.catalog == "demo":
            return StoryConfig(min_scenes=self.min_scenes, max_scenes=self.max_scenes)
        if self.catalog not in STORY_PRESETS:
            raise ConfigError(None, f"unknown catalog preset {self.catalog!r}; choose demo or one of {sorted(STORY_PRESETS)}")
        return STORY_PRESETS[self.catalog]


@dataclass(frozen=True)
class Layout:
    """Where the demo writes, under one root folder."""

    root: Path

    @property
    def catalog(self) -> Path:
        return self.root / "catalog"

    @property
    def videos(self) -> Path:
        return self.catalog / "videos"

    @property
    def labels(self) -> Path:
        return self.catalog / "labels"

    @property
    def store(self) -> Path:
        return self.root / "store"

    @property
    def model(self) -> Path:
        return self.root / "model"

    @property
    def eval(self) -> Path:
        return self.root / "eval"

    @property
    def heads(self) -> Path:
        return self.root / "heads"


@dataclass
class DemoApps:
    held: str  # the title id the heads never saw
    heads: dict[str, TrainedHead]  # "popularity", "ad_relevancy" -> head (saved under Layout.heads)
    top: pd.DataFrame  # the held-out title's top clips by the popularity head
    breaks: pd.DataFrame  # its ad breaks by the ad-relevancy head


@dataclass
class DemoResult:
    layout: Layout
    timings: dict[str, float]  # seconds per stage, from the run that produced it, then "apps"
    grid_md: str  # the probes table (Layout.eval / "eval.md")
    apps: DemoApps | None  # None when DemoConfig.apps is off


class StageError(MediafmError):
    """A stage of the demo left too little for the next one."""


Say = Callable[[str], None]


def _say(msg: str) -> None:
    from tqdm import tqdm

    tqdm.write(msg, file=sys.stderr)  # above a running progress bar, not through it


def _quiet(msg: str) -> None:
    pass


def stage_settings(cfg: DemoConfig) -> dict[str, dict]:
    """Per stage, the settings its output depends on, as OUT/demo.json records them."""
    from mediafm.evaluation.probes import ProbeConfig

    media = {k: getattr(cfg, k) for k in ("titles", "seed", "min_scenes", "max_scenes", "catalog")}
    # The whole training config, so a model trained under other defaults (an older release) is
    # not reused; the bar is display only. JSON-shaped (tuples as lists) to compare with the file.
    train = json.loads(json.dumps(asdict(replace(cfg.train, progress=False)), default=str))
    # The encoder settings too: features encoded under other defaults are encoded again.
    ingest = {**media, "encode": json.loads(json.dumps(asdict(EncodeConfig()), default=str))}
    model = {**ingest, "train": train}
    return {"synth": media, "ingest": ingest, "pretrain": model, "embed": model,
            "eval": {**model, "n_boot": cfg.n_boot, "pooling": cfg.pooling,
                     "probe": json.loads(json.dumps(asdict(ProbeConfig()), default=str))}}


def _synth(cfg: DemoConfig, lay: Layout, say: Say) -> None:
    from mediafm.synth.render import RenderConfig, synthesize_catalog

    info = synthesize_catalog(lay.catalog, cfg.titles, cfg.seed, cfg.story(), RenderConfig(), workers=cfg.workers,
                              progress=cfg.progress)
    say(f"  {len(info.titles)} titles rendered into {info.videos}")


def _ingest(cfg: DemoConfig, lay: Layout, say: Say) -> None:
    from mediafm.encoders.encode_store import encode_store
    from mediafm.ingest import ingest
    from mediafm.store.catalog import Store
    from mediafm.synth.story import make_story

    def warn(outcome) -> None:
        for w in outcome.warnings:
            say(f"  warning: {outcome.path}: {w}")

    # The catalog's first `titles` files by name, not the folder: a folder rendered earlier for
    # more titles (same seed) must not pull extra titles in.
    story = cfg.story()
    paths = [lay.videos / f"{make_story(i, cfg.seed, story).title}.mp4" for i in range(cfg.titles)]
    report = ingest(paths, lay.store, show_progress=cfg.progress, on_outcome=warn)
    for line in report.summary().splitlines():
        say("  " + line)
    n = len(Store(lay.store).title_ids())
    if n < 3:
        raise StageError(lay.store, f"ingest finished with {n} titles; see the messages above")
    if report.failed or report.encode_error:
        say(f"  warning: continuing with the {n} titles ingest stored")
    if not report.encode_error:
        # Titles ingested by an earlier run keep the features of their encoder set; bring them to
        # this one (titles already encoded with it are skipped).
        encoded = encode_store(Store(lay.store), EncodeConfig(), progress=cfg.progress)
        if encoded.encoded:
            say(f"  {len(encoded.encoded)} titles encoded again with the current encoders")


def _pretrain(cfg: DemoConfig, lay: Layout, say: Say) -> None:
    from mediafm.training.pretrain import pretrain

    res = pretrain(lay.store, lay.model, replace(cfg.train, progress=cfg.progress))
    say(f"  {res.model_config.name}: {res.steps} steps, {res.epochs} epochs, stopped by {res.stopped}; "
        f"best validation loss {res.best_val_loss:.4f}")


def _embed(cfg: DemoConfig, lay: Layout, say: Say) -> None:
    from mediafm.training.embed import embed_store

    # overwrite: the stage runs only when something before it changed, so no stored vector is kept.
    res = embed_store(lay.store, lay.model, overwrite=True, progress=cfg.progress)
    say(f"  model {res.model_id} (read-out {res.readout}, {res.dim}-d): embedded {res.titles} titles "
        f"({res.shots} shots)")


def _evaluate(cfg: DemoConfig, lay: Layout, say: Say) -> None:
    from mediafm.evaluation.clips import EMBEDDING_KINDS
    from mediafm.evaluation.grid import run_grid, write_reports
    from mediafm.evaluation.probes import ProbeConfig

    grid = run_grid(lay.store, lay.labels, lay.model, EMBEDDING_KINDS, pooling=cfg.pooling,
                    config=ProbeConfig(n_boot=cfg.n_boot, seed=cfg.seed), progress=cfg.progress)
    write_reports(grid, lay.eval)


# In order; a stage that runs again runs every later one again too.
STAGES: dict[str, Callable[[DemoConfig, Layout, Say], None]] = {
    "synth": _synth, "ingest": _ingest, "pretrain": _pretrain, "embed": _embed, "eval": _evaluate}


def run_apps(cfg: DemoConfig, lay: Layout) -> DemoApps:
    """Fit the popularity and ad-relevancy heads (contextual embeddings) on every title but the
    last, save them under OUT/heads/, and apply them to the held-out title."""
    from mediafm.apps import BreakConfig, ad_breaks, fit, save_head, top_clips
    from mediafm.store.catalog import Store
    from mediafm.evaluation.labels import read_labels, write_labels
    from mediafm.evaluation.probes import ProbeConfig

    held = Store(lay.store).title_ids()[-1]
    heads = {}
    # An ad break sits at the cut after its clip: that head reads the clip's edges too (edge_readout;
    # what it gives on each catalog: docs/narrative-benchmark.md, "Clip read-out").
    for name, task, pooling in (("popularity", "rank", "mean"), ("ad_relevancy", "binary", "mean+edges")):
        rows = [r for r in read_labels(lay.labels / f"{name}.csv") if r.clip.title != held]
        train = lay.heads / f"{name}.train.csv"
        write_labels(train, [(r.clip.title, r.clip.start, r.clip.end, r.label) for r in rows])
        res = fit(lay.store, train, task, "contextual", lay.model, pooling,
                  config=ProbeConfig(n_boot=cfg.n_boot, seed=cfg.seed))
        save_head(res.head, lay.heads / name)
        heads[name] = res.head
    top = top_clips(lay.store, lay.heads / "popularity", [held], k=3)
    breaks = ad_breaks(lay.store, lay.heads / "ad_relevancy", [held], BreakConfig(min_spacing_s=cfg.break_spacing_s))
    return DemoApps(held, heads, top, breaks)


def run_demo(cfg: DemoConfig) -> DemoResult:
    """Run the demo's stages, reusing those finished before, then its applications.

    Args:
        cfg: catalog, training, probe and display settings.

    Returns:
        DemoResult: where everything was written, the stage times, the probes table and, unless
        `cfg.apps` is off, the heads and their predictions for the held-out title.

    Raises:
        ConfigError: an unknown catalog preset or a training setting pretraining cannot run
            with, before any stage runs.
        StageError: ingest stored fewer than 3 titles.
        MediafmError: from the stage that failed; the stages before it stay recorded.
    """
    from mediafm.store.atomic import write_json_atomic

    cfg.story()
    cfg.train.validate()
    say = _say if cfg.progress else _quiet
    lay = Layout(Path(cfg.out))
    lay.root.mkdir(parents=True, exist_ok=True)
    state_file = lay.root / "demo.json"
    state = json.loads(state_file.read_text()) if state_file.exists() else {"stages": {}}
    settings = stage_settings(cfg)
    again = False
    for i, (name, stage) in enumerate(STAGES.items(), start=1):
        tag = f"[{i}/{len(STAGES)}] {name}"
        before = state["stages"].get(name, {})
        if not again and before.get("params") == settings[name]:
            say(f"{tag}: done before ({before['seconds']:.0f} s), reused")
            continue
        again = True
        say(f"{tag} ...")
        t0 = time.time()
        stage(cfg, lay, say)
        state["stages"][name] = {"params": settings[name], "seconds": round(time.time() - t0, 1)}
        write_json_atomic(state, state_file)
        say(f"{tag}: {time.time() - t0:.0f} s")
    timings = {name: state["stages"][name]["seconds"] for name in STAGES}
    apps = None
    if cfg.apps:
        say("[apps] fitting the popularity and ad-relevancy heads ...")
        t0 = time.time()
        apps = run_apps(cfg, lay)
        timings["apps"] = round(time.time() - t0, 1)
        say(f"[apps]: {timings['apps']:.0f} s")
    return DemoResult(lay, timings, (lay.eval / "eval.md").read_text(), apps)
