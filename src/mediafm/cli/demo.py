"""`mediafm demo`: synthesise a small catalog and run the whole pipeline end to end.

The pipeline is the recipe `mediafm.recipes.demo.run_demo`; this command turns its flags into a
DemoConfig (defaults from there) and prints the results with the commands to explore them.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import replace

from mediafm.cli.numbers import count
from mediafm.model.transformer import PRESETS
from mediafm.recipes.demo import DemoConfig, DemoResult, run_demo, train_config

_D = DemoConfig()


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", default=_D.out, help=f"output folder (default: ./{_D.out})")
    p.add_argument("--titles", type=count(1), default=_D.titles, help=f"synthetic titles (default: {_D.titles})")
    p.add_argument("--seed", type=int, default=_D.seed, help=f"catalog, training and probe seed (default: {_D.seed})")
    p.add_argument("--max-steps", type=count(0), default=_D.train.max_steps,
                   help="pretraining steps (default: 0 = chosen by `mediafm pretrain` for the catalog)")
    p.add_argument("--preset", default=_D.train.preset, choices=sorted(PRESETS),
                   help=f"model size (default: {_D.train.preset})")
    p.add_argument("--n-boot", type=count(0), default=_D.n_boot, help=f"bootstrap resamples (default: {_D.n_boot})")


def config_from_args(a: argparse.Namespace) -> DemoConfig:
    return replace(_D, out=a.out, titles=a.titles, seed=a.seed, n_boot=a.n_boot,
                   train=train_config(a.seed, a.preset, a.max_steps))


def run(args: argparse.Namespace) -> int:
    from mediafm.cli.synth import check_folder

    check_folder(args.out)
    cfg = config_from_args(args)
    t0 = time.time()
    res = run_demo(cfg)
    show(res, cfg, time.time() - t0)
    return 0


def show(res: DemoResult, cfg: DemoConfig, seconds: float) -> None:
    """The probes table, the heads and their predictions, the outputs and what to run next."""
    from mediafm.apps.tables import preview

    lay, apps = res.layout, res.apps
    held, spacing = apps.held, f"{cfg.break_spacing_s:g}"
    first = sorted(p.stem for p in lay.videos.glob("*.mp4"))[0]
    print("\nLinear probes on frozen embeddings (synthetic narrative catalog; see docs/narrative-benchmark.md):\n")
    print(res.grid_md)
    for name, head in apps.heads.items():
        c = head.card
        print(f"head {name}: {c.task} on contextual embeddings, {c.n_clips} clips of {c.n_titles} titles "
              f"(not {held}); grouped CV {c.metric} {c.value:.3f} [{c.ci_low:.3f}, {c.ci_high:.3f}]")
    print(f"\nTop clips of the held-out title {held} (popularity head):")
    print(preview(apps.top[["rank", "start", "end", "score"]]))
    print(f"\nAd breaks in {held} (ad-relevancy head, at least {spacing} s apart, none inside a subtitle):")
    print(preview(apps.breaks[["time_s", "shot", "score"]]))
    print(f"\nStage times (s): {res.timings}; this run: {seconds:.0f} s\n")
    print(f"Outputs in {lay.root}/:")
    print(f"  {lay.videos}/   synthetic titles (.mp4 + .srt + .json); {lay.labels}/ task labels (CSV)")
    print(f"  {lay.store}/    the catalog store: shots, features, contextual embeddings")
    print(f"  {lay.model}/    the pretrained model")
    print(f"  {lay.eval}/eval.md and eval.json   the table above")
    print(f"  {lay.heads}/   the two heads (card.json + weights)")
    print("\nExplore:")
    print(f"  mediafm serve {lay.store} --heads {lay.heads} --break-spacing {spacing}")
    print(f"      # web explorer: open {held}, head popularity: scores along the timeline, the top clips")
    print("      # (press play), red ad-break dots (head ad_relevancy), grey scene boundaries")
    print(f"  mediafm clips {lay.store} --rank {lay.heads}/popularity --titles {held} --out top.csv")
    print(f"  mediafm adbreaks {lay.store} --head {lay.heads}/ad_relevancy --min-spacing {spacing} --out breaks.csv")
    print(f"  mediafm scenes {lay.store} --out scenes.csv")
    print(f"  mediafm search {lay.store} --text \"danger\"")
    print(f"  mediafm search {lay.store} --shot {first}:3 --embedding contextual")
    print(f"  mediafm probe {lay.store} --labels {lay.labels}/tone.csv --task multilabel --embedding contextual")
