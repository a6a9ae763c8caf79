"""`mediafm demo`: synthesise a small catalog and run the whole pipeline end to end.

Stages: synth -> ingest (shots + encoders) -> pretrain -> embed -> eval. Each finished stage is
recorded in OUT/demo.json with its parameters; re-running skips stages whose parameters did not
change (ingest and embed also resume title by title on their own). Then the applications: heads
for popularity and ad relevancy are fitted on every title but one (seconds; always re-run) and
their top clips and ad breaks for the held-out title are printed.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from mediafm.cli.numbers import count
from mediafm.errors import MediafmError


@dataclass(frozen=True)
class DemoConfig:
    out: str = "mediafm-demo"  # folder for everything the demo writes
    titles: int = 20  # synthetic titles: ~10k frames, estimated 6-8 min end to end on 2 idle cores
    seed: int = 0
    min_scenes: int = 4  # shorter titles than the benchmark's 5-8 scenes (~30 s each)
    max_scenes: int = 6
    catalog: str = "demo"  # "demo" (min/max_scenes above) or a synth preset (mediafm.synth.story.STORY_PRESETS)
    preset: str = "small"
    max_steps: int = 0  # pretraining steps; 0 = `mediafm pretrain`'s own schedule for the catalog
    n_boot: int = 500  # bootstrap resamples per cell
    workers: int = 2  # synth render processes


    def pretrain_flags(self) -> list[str]:
        """What the demo adds to `mediafm pretrain STORE --out M`: no schedule flags unless
        `max_steps` is set, so the demo shows what the command gives a user."""
        flags = ["--preset", self.preset, "--seed", str(self.seed)]
        if self.max_steps:
            flags += ["--max-steps", str(self.max_steps), "--min-steps", str(self.max_steps)]
        return flags

    def train_config(self):
        """The TrainConfig the demo's `mediafm pretrain` call runs with, from the same flags."""
        import argparse
        import dataclasses

        from mediafm.cli.pretrain import add_arguments, config_from_args

        p = argparse.ArgumentParser()
        add_arguments(p)
        return dataclasses.replace(config_from_args(p.parse_args(["STORE", "--out", "M", *self.pretrain_flags()])),
                                   progress=False)

    def story(self):
        """The StoryConfig the catalog is rendered with."""
        from mediafm.synth.story import STORY_PRESETS, StoryConfig

        if self.catalog == "demo":
            return StoryConfig(min_scenes=self.min_scenes, max_scenes=self.max_scenes)
        if self.catalog not in STORY_PRESETS:
            raise StageError(None, f"unknown catalog preset {self.catalog!r}; choose demo or one of {sorted(STORY_PRESETS)}")
        return STORY_PRESETS[self.catalog]


@dataclass(frozen=True)
class Layout:
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


_D = DemoConfig()


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", default=_D.out, help=f"output folder (default: ./{_D.out})")
    p.add_argument("--titles", type=count(1), default=_D.titles, help=f"synthetic titles (default: {_D.titles})")
    p.add_argument("--seed", type=int, default=_D.seed)
    p.add_argument("--max-steps", type=count(0), default=_D.max_steps,
                   help="pretraining steps (default: 0 = chosen by `mediafm pretrain` for the catalog)")
    p.add_argument("--preset", default=_D.preset, help=f"model size (default: {_D.preset})")
    p.add_argument("--n-boot", type=count(0), default=_D.n_boot, help=f"bootstrap resamples (default: {_D.n_boot})")


class StageError(MediafmError):
    """A pipeline stage run by the demo failed."""


def _say(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def _call(argv: list[str]) -> int:
    from mediafm.cli.main import main

    shown = argv if len(argv) < 12 else argv[:3] + [f"... ({len(argv) - 5} more)"] + argv[-2:]
    _say("  $ mediafm " + " ".join(shown))
    return main(argv)


def run_demo(cfg: DemoConfig, eval_kinds: tuple[str, ...] | None = None) -> dict:
    """Run (or reuse) every stage; returns {"layout": Layout, "timings": {...}, "grid_md": str}."""
    from mediafm.store.catalog import Store
    from mediafm.synth.render import RenderConfig, synthesize_catalog
    from mediafm.synth.story import make_story
    from mediafm.tasks.clips import EMBEDDING_KINDS
    from mediafm.tasks.grid import run_grid, write_reports
    from mediafm.tasks.probes import ProbeConfig

    lay = Layout(Path(cfg.out))
    lay.root.mkdir(parents=True, exist_ok=True)
    state_file = lay.root / "demo.json"
    state = json.loads(state_file.read_text()) if state_file.exists() else {"stages": {}}
    params = asdict(cfg)
    # The training config as resolved (the pretrain command's defaults included): a model trained
    # under other defaults is not reused.
    params["train"] = json.loads(json.dumps(asdict(cfg.train_config()), default=str))
    keys = {  # the parameters each stage depends on (a change re-runs it and every later stage)
        "synth": ("titles", "seed", "min_scenes", "max_scenes", "catalog"),
        "ingest": ("titles", "seed", "min_scenes", "max_scenes", "catalog"),
        "pretrain": ("titles", "seed", "min_scenes", "max_scenes", "catalog", "preset", "max_steps", "train"),
        "embed": ("titles", "seed", "min_scenes", "max_scenes", "catalog", "preset", "max_steps", "train"),
        "eval": tuple(params),
    }
    invalid = False
    stages = list(keys)

    def stage(i: int, name: str, fn) -> None:
        nonlocal invalid
        sig = {k: params[k] for k in keys[name]}
        if not invalid and state["stages"].get(name, {}).get("params") == sig:
            _say(f"[{i}/{len(stages)}] {name}: done before ({state['stages'][name]['seconds']:.0f} s), reused")
            return
        invalid = True  # every later stage runs again
        _say(f"[{i}/{len(stages)}] {name} ...")
        t0 = time.time()
        fn()
        state["stages"][name] = {"params": sig, "seconds": round(time.time() - t0, 1)}
        state_file.write_text(json.dumps(state, indent=1))
        _say(f"[{i}/{len(stages)}] {name}: {time.time() - t0:.0f} s")

    def synth() -> None:
        story = cfg.story()
        info = synthesize_catalog(lay.catalog, cfg.titles, cfg.seed, story, RenderConfig(), workers=cfg.workers)
        _say(f"  {len(info.titles)} titles rendered into {info.videos}")

    def ingest() -> None:
        # The catalog's first `titles` files by name, not the folder: a folder rendered earlier for
        # more titles (same seed) must not pull extra titles in.
        story = cfg.story()
        paths = [str(lay.videos / f"{make_story(i, cfg.seed, story).title}.mp4") for i in range(cfg.titles)]
        rc = _call(["ingest", *paths, "--out", str(lay.store)])
        n = len(Store(lay.store).title_ids())
        if n < 3:
            raise StageError(lay.store, f"ingest finished with {n} titles (exit {rc}); see the messages above")
        if rc != 0:
            _say(f"  warning: ingest exited {rc}; continuing with the {n} titles it stored")

    def pretrain() -> None:
        rc = _call(["pretrain", str(lay.store), "--out", str(lay.model), *cfg.pretrain_flags()])
        if rc != 0:
            raise StageError(lay.model, f"pretraining failed (exit {rc})")

    def embed() -> None:
        rc = _call(["embed", str(lay.store), "--model", str(lay.model), "--overwrite"])
        if rc != 0:
            raise StageError(lay.store, f"embedding failed (exit {rc})")

    def evaluate() -> None:
        grid = run_grid(lay.store, lay.labels, lay.model, eval_kinds or EMBEDDING_KINDS,
                        config=ProbeConfig(n_boot=cfg.n_boot, seed=cfg.seed))
        write_reports(grid, lay.eval)

    for i, (name, fn) in enumerate(zip(stages, (synth, ingest, pretrain, embed, evaluate)), start=1):
        stage(i, name, fn)
    return {"layout": lay, "timings": {k: v["seconds"] for k, v in state["stages"].items()},
            "grid_md": (lay.eval / "eval.md").read_text()}


# Demo titles last about a minute, so breaks are spaced closer than in a feature film.
DEMO_BREAK_SPACING_S = 10.0


def run_apps(lay: Layout, cfg: DemoConfig) -> dict:
    """Fit the popularity and ad-relevancy heads (contextual embeddings) on every title but the
    last, save them under OUT/heads/, and apply them to the held-out title."""
    from mediafm.apps import BreakConfig, ad_breaks, fit, save_head, top_clips
    from mediafm.store.catalog import Store
    from mediafm.tasks.labels import read_labels, write_labels
    from mediafm.tasks.probes import ProbeConfig

    held = Store(lay.store).title_ids()[-1]
    heads = {}
    for name, task in (("popularity", "rank"), ("ad_relevancy", "binary")):
        rows = [r for r in read_labels(lay.labels / f"{name}.csv") if r.clip.title != held]
        train = lay.heads / f"{name}.train.csv"
        write_labels(train, [(r.clip.title, r.clip.start, r.clip.end, r.label) for r in rows])
        res = fit(lay.store, train, task, "contextual", lay.model, config=ProbeConfig(n_boot=cfg.n_boot, seed=cfg.seed))
        save_head(res.head, lay.heads / name)
        heads[name] = res.head
    top = top_clips(lay.store, lay.heads / "popularity", [held], k=3)
    breaks = ad_breaks(lay.store, lay.heads / "ad_relevancy", [held], BreakConfig(min_spacing_s=DEMO_BREAK_SPACING_S))
    return {"held": held, "heads": heads, "top": top, "breaks": breaks}


def run(args: argparse.Namespace) -> int:
    from mediafm.cli.synth import check_folder

    check_folder(args.out)
    cfg = DemoConfig(out=args.out, titles=args.titles, seed=args.seed, max_steps=args.max_steps,
                     preset=args.preset, n_boot=args.n_boot)
    t0 = time.time()
    res = run_demo(cfg)
    lay: Layout = res["layout"]
    first = sorted(p.stem for p in lay.videos.glob("*.mp4"))[0]
    print("\nLinear probes on frozen embeddings (synthetic narrative catalog; see docs/narrative-benchmark.md):\n")
    print(res["grid_md"])
    _say("[apps] fitting the popularity and ad-relevancy heads ...")
    t_apps = time.time()
    apps = run_apps(lay, cfg)
    timings = {**res["timings"], "apps": round(time.time() - t_apps, 1)}
    _say(f"[apps]: {timings['apps']:.0f} s")
    held = apps["held"]
    from mediafm.apps.tables import preview

    for name, head in apps["heads"].items():
        c = head.card
        print(f"head {name}: {c.task} on contextual embeddings, {c.n_clips} clips of {c.n_titles} titles "
              f"(not {held}); grouped CV {c.metric} {c.value:.3f} [{c.ci_low:.3f}, {c.ci_high:.3f}]")
    print(f"\nTop clips of the held-out title {held} (popularity head):")
    print(preview(apps["top"][["rank", "start", "end", "score"]]))
    print(f"\nAd breaks in {held} (ad-relevancy head, at least {DEMO_BREAK_SPACING_S:g} s apart, none inside a subtitle):")
    print(preview(apps["breaks"][["time_s", "shot", "score"]]))
    print(f"\nStage times (s): {timings}; this run: {time.time() - t0:.0f} s\n")
    print(f"Outputs in {lay.root}/:")
    print(f"  {lay.videos}/   synthetic titles (.mp4 + .srt + .json); {lay.labels}/ task labels (CSV)")
    print(f"  {lay.store}/    the catalog store: shots, features, contextual embeddings")
    print(f"  {lay.model}/    the pretrained model")
    print(f"  {lay.eval}/eval.md and eval.json   the table above")
    print(f"  {lay.heads}/   the two heads (card.json + weights)")
    print("\nExplore:")
    print(f"  mediafm serve {lay.store} --heads {lay.heads} --break-spacing {DEMO_BREAK_SPACING_S:g}")
    print(f"      # web explorer: open {held}, head popularity: scores along the timeline, the top clips")
    print("      # (press play), red ad-break dots (head ad_relevancy), grey scene boundaries")
    print(f"  mediafm clips {lay.store} --rank {lay.heads}/popularity --titles {held} --out top.csv")
    print(f"  mediafm adbreaks {lay.store} --head {lay.heads}/ad_relevancy --min-spacing 10 --out breaks.csv")
    print(f"  mediafm scenes {lay.store} --out scenes.csv")
    print(f"  mediafm search {lay.store} --text \"danger\"")
    print(f"  mediafm search {lay.store} --shot {first}:3 --embedding contextual")
    print(f"  mediafm probe {lay.store} --labels {lay.labels}/tone.csv --task multilabel --embedding contextual")
    return 0
