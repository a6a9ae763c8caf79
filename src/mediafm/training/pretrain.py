"""Masked-shot-modeling pretraining (one recipe for 1 CPU process, torchrun DDP, and multi-node).

    pretrain(store_root, out_dir, TrainConfig(preset="small"))        # in-process
    torchrun --nproc-per-node 8 -m mediafm.cli.main pretrain STORE --out MODEL_DIR   # DDP

Under torchrun every rank runs this same function: the process group comes from the
environment (NCCL on GPUs, gloo on CPU), each rank reads its slice of every global batch from
the memory-mapped cache, and the loss is normalised by the *global* number of masked shots, so
the gradient equals that of one process on the whole global batch.
"""

from __future__ import annotations

import contextlib
import csv
import logging
import math
import os
import time
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path

import torch
import torch.distributed as dist

from mediafm.devices import autocast, cpu_bf16_native
from mediafm.errors import ConfigError
from mediafm.model.transformer import PRESETS, SIZE_FIELDS, MediaFM, ModelConfig, save_pretrained
from mediafm.prefetch import prefetch
from mediafm.registry import lookup
from mediafm.training import checkpoint as ckpt
from mediafm.training.data import (DeviceCache, MaskSpec, ShotCache, build_cache, iter_batches, split_titles,
                                   train_windows)
from mediafm.training.optim import OptimConfig, build_optimizer, set_lr
from mediafm.encoders.fusion import block_dims

log = logging.getLogger(__name__)


@dataclass
class TrainConfig:
    preset: str = "small"  # model size: a name in mediafm.model.PRESETS (tiny | small | medium | base)
    # Every other model setting (objective, read-out, window length in shots, distance bias...), with
    # ModelConfig's defaults; its sizes (SIZE_FIELDS) come from `preset` and the store's vectors instead.
    model: ModelConfig = field(default_factory=ModelConfig)
    use_meta: bool = True  # feed the title metadata embedding to [GLOBAL]
    batch_size: int = 0  # GLOBAL batch in windows, split across ranks; 0 = auto (AUTO_BATCH, fewer on small catalogs)
    epochs: int = 0  # 0 = auto: as many as the step budget needs
    max_steps: int = 0  # optimiser steps in total; 0 = auto: auto_epochs epochs within [min_steps, max_auto_steps]
    auto_epochs: int = 100  # auto schedule: passes over the training windows
    min_steps: int = 300  # auto schedule: at least this many steps, however small the catalog
    max_auto_steps: int = 50_000  # auto schedule: at most this many steps, however large the catalog
    steps_this_run: int = 0  # stop this invocation after N steps, checkpointing (time-limited jobs + --resume)
    # Masking (defaults: MaskSpec's, the one source)
    mask_ratio: float = MaskSpec.ratio  # share of real shots that carry the loss
    mask_span: float = MaskSpec.span  # mean length of a run of masked shots (1 = single shots)
    keep_ratio: float = MaskSpec.keep  # share of the selected shots whose real input stays visible
    random_ratio: float = MaskSpec.random  # share of the selected shots shown as another shot of the window
    val_fraction: float = 0.1  # share of titles held out (by title) for validation
    val_every: int = 0  # steps between validations; 0 = auto (VALIDATIONS per run, at least 20 steps apart)
    patience: int = 5  # early stopping: validations without a better validation loss
    optim: OptimConfig = field(default_factory=OptimConfig)
    checkpoint_every: int = 200  # steps between checkpoints (also at every epoch end)
    log_every: int = 10  # steps between metrics.csv rows
    seed: int = 0
    device: str = "auto"  # auto = cuda if available, else cpu
    compile: bool = False  # torch.compile the model (GPU runs)
    # bf16 autocast on CUDA and on CPUs with native bf16 products (float32 elsewhere: emulated bf16
    # is slower); float32 matmuls outside it use TF32 on CUDA. Measured on 2 cores with AVX512-BF16,
    # long-form windows: 1.44 s a step against 2.29 s in float32 (docs/model.md)
    bf16: bool = True
    # CUDA: copy the consolidated features to the GPU once when they take at most a quarter of its
    # free memory, and gather each batch there (no per-step host assembly and copy)
    device_cache: bool = True
    num_threads: int = 0  # torch CPU threads (0 = torch default)
    # Batches assembled ahead in a background thread (0 = inline; -1 = auto: 2 on a GPU, inline on a
    # CPU, where the thread competes with torch's own for the cores: steps 1.86-2.0 s inline
    # against 2.1-2.15 s with it, `small` on 2 cores)
    prefetch: int = -1
    progress: bool = True  # tqdm bar (rank 0 only)

    def validate(self) -> None:
        """ConfigError (a ValueError) for a setting pretraining cannot run with."""
        lookup(PRESETS, self.preset, "preset")
        self.model.validate()
        sized = [f.name for f in fields(ModelConfig)
                 if f.name in SIZE_FIELDS and getattr(self.model, f.name) != f.default]
        if sized:
            raise ConfigError(None, f"model.{', model.'.join(sized)} set: the preset and the store's vectors "
                                    "decide the model's sizes (choose another preset)")
        if not 0 < self.mask_ratio < 1:
            raise ConfigError(None, f"mask_ratio must be in (0, 1), got {self.mask_ratio}")
        if self.batch_size < 0:
            raise ConfigError(None, "batch_size must be >= 1 (0 = auto)")
        if self.checkpoint_every < 1 or self.log_every < 1:
            raise ConfigError(None, "checkpoint_every and log_every must be >= 1")
        if self.mask_span < 1 or not 0 <= self.keep_ratio + self.random_ratio <= 1 or min(self.keep_ratio, self.random_ratio) < 0:
            raise ConfigError(None, "mask_span must be >= 1, and keep_ratio + random_ratio within [0, 1]")

    def override(self, **changes) -> TrainConfig:
        """A copy with `changes`, each naming a field of TrainConfig or one of its model's choices
        (`objective`, `readout`, ...: ModelConfig.choices)."""
        model = {k: changes.pop(k) for k in list(changes) if k in self.model.choices()}
        return replace(self, model=replace(self.model, **model), **changes)

    @property
    def mask(self) -> MaskSpec:
        return MaskSpec(self.mask_ratio, self.mask_span, self.keep_ratio, self.random_ratio)

    def to_dict(self) -> dict:
        """Flat, as model folders have always recorded it ("train" in config.json, "train_config"
        in the card): the model's choices beside the training settings."""
        d = asdict(self)
        del d["model"]
        return {"preset": self.preset, **self.model.choices(), **d}


AUTO_BATCH = 16  # windows per global batch when the catalog has that many
# Validations per run when val_every is auto. The validation loss is noisy (+-0.005 between
# consecutive checks on 20 held-out titles), so patience must span a good share of the run: with
# 20 checks and patience 5, a quarter of the run without a new best. Validating every 20 steps
# stopped a 1,500-step run at step 360, far short of the better weights found later.
VALIDATIONS = 20


@dataclass(frozen=True)
class Schedule:
    """What the training loop runs, resolved from TrainConfig and the catalog (auto values filled)."""

    batch_size: int
    steps_per_epoch: int
    total_steps: int
    val_every: int
    note: str  # one line saying what was chosen and why


def plan_schedule(cfg: TrainConfig, n_windows: int, n_titles: int, world: int = 1) -> Schedule:
    """Resolve batch size, total steps and validation interval for `n_windows` training windows.

    Auto values scale with the data: a small catalog gets a smaller batch rather than an error, and
    `auto_epochs` passes over its windows, kept within [min_steps, max_auto_steps] steps. Measured
    on the 200-title narrative benchmark (docs/model.md): the best validation loss came after
    ~80-100 epochs (~1,000 steps of 16 windows); 20 epochs (the earlier default) stopped far short.
    """
    auto = []
    batch = cfg.batch_size
    if not batch:
        batch = max(world, min(AUTO_BATCH, n_windows) // world * world)
        auto.append(f"batch {batch}")
    if batch % world:
        raise ConfigError(None, f"batch_size {batch} must be divisible by the {world} ranks")
    spe = n_windows // batch
    if spe == 0:
        raise ConfigError(None, f"batch_size {batch} exceeds the {n_titles} training titles' {n_windows} windows; "
                          "lower --batch-size (or leave it out to let pretraining choose)")
    if cfg.max_steps:
        total = min(cfg.max_steps, cfg.epochs * spe) if cfg.epochs else cfg.max_steps
    elif cfg.epochs:
        total = cfg.epochs * spe
    else:
        total = min(max(cfg.min_steps, cfg.auto_epochs * spe), cfg.max_auto_steps)
        auto.append(f"{total} steps ({cfg.auto_epochs} epochs of {spe} steps, within "
                    f"[{cfg.min_steps}, {cfg.max_auto_steps}])")
    val_every = cfg.val_every or max(20, total // VALIDATIONS)
    if not cfg.val_every:
        auto.append(f"validation every {val_every} steps")
    note = (f"pretrain: {n_titles} training titles, {n_windows} windows of <= {cfg.model.max_shots} shots; "
            + (("auto: " + ", ".join(auto)) if auto else f"batch {batch}, {total} steps"))
    return Schedule(batch, spe, total, val_every, note)


@dataclass
class PretrainResult:
    out_dir: Path
    model_config: ModelConfig
    steps: int
    epochs: int
    best_val_loss: float
    last_train_loss: float
    stopped: str  # "epochs" | "max_steps" | "early_stopping" | "steps_this_run"
    history: list[dict]


# ---------------------------------------------------------------- distributed helpers
def _dist_setup(device: str) -> tuple[int, int, torch.device]:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if world > 1 and not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device.startswith("cuda") else "gloo")
    if device == "cuda":
        local = int(os.environ.get("LOCAL_RANK", "0"))
        torch.cuda.set_device(local)
        device = f"cuda:{local}"
    return rank, world, torch.device(device)


def _all_sum(x: torch.Tensor) -> torch.Tensor:
    if dist.is_available() and dist.is_initialized():
        dist.all_reduce(x)
    return x


def _barrier() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.barrier()


# ---------------------------------------------------------------- steps
def _masked_sum_loss(model, batch, cfg: TrainConfig, device) -> tuple[torch.Tensor, torch.Tensor]:
    """(sum of cosine distances over masked shots, count) of one local batch."""
    b = batch.to(device)
    with autocast(device, cfg.bf16):
        _, loss = model(b.fused, b.meta, b.pad_mask, b.mask_positions, b.times if cfg.model.time_features else None,
                        b.keep_positions, b.targets, predict_all=False)
    n = (b.mask_positions if b.pad_mask is None else b.mask_positions & b.pad_mask).sum().float()
    return loss.float() * n, n


def backward(model, batch, cfg: TrainConfig, world: int, device) -> torch.Tensor:
    """Loss and gradients of this rank's share of a global batch; the gradient (after DDP's
    all-reduce mean) is that of the mean cosine distance over ALL masked shots of the global
    batch, whatever their split over ranks. Returns [global loss sum, global masked count]."""
    loss_sum, n = _masked_sum_loss(model, batch, cfg, device)
    n_global = _all_sum(n.detach().clone())
    # DDP averages gradients over ranks, hence * world: the result is d(global sum / global count)
    (loss_sum * world / n_global.clamp(min=1)).backward()
    return _all_sum(torch.stack([loss_sum.detach(), n]))


def train_step(model, optimizer, batch, cfg: TrainConfig, step: int, total: int, world: int, device) -> torch.Tensor:
    """One optimiser step on this rank's share of a global batch; returns the global mean loss as a
    0-d tensor on the device (reading it waits for the GPU: the caller does so every few steps)."""
    # Named ranges for torch.profiler (benchmarks/pretrain.py --profile); free when no profiler runs.
    record = torch.profiler.record_function
    set_lr(optimizer, step, total, cfg.optim)
    with record("mediafm.forward_backward"):
        stats = backward(model, batch, cfg, world, device)
    with record("mediafm.optimizer"):
        if cfg.optim.grad_clip:
            torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.optim.grad_clip)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
    return stats[0] / stats[1].clamp(min=1)


@torch.no_grad()
def validation_loss(model, cache: ShotCache, titles: list[int], cfg: TrainConfig, rank: int, world: int, device,
             batch_size: int | None = None, device_cache: DeviceCache | None = None) -> float:
    """Validation MSM loss over all windows of `titles` with fixed masks (epoch -1 = fixed seed)."""
    if not titles:
        return float("nan")
    model.eval()
    tot = torch.zeros(2, device=device)
    for batch in iter_batches(cache, titles, cfg.model.max_shots, batch_size or cfg.batch_size or AUTO_BATCH,
                              cfg.seed, -1, cfg.mask, rank, world, shuffle=False, drop_last=False,
                              use_meta=cfg.use_meta, device_cache=device_cache):
        s, n = _masked_sum_loss(model, batch, cfg, device)
        tot += torch.stack([s, n])
    model.train()
    tot = _all_sum(tot)
    return float(tot[0] / tot[1].clamp(min=1))


# ---------------------------------------------------------------- the recipe
def cache_dtype(cfg: TrainConfig, device: torch.device) -> str:
    """The training cache's dtype: bfloat16 where the step runs under CPU bf16 autocast, whose first
    product casts the inputs to bfloat16 anyway; a long-form batch is then half the bytes to read
    and gather (docs/model.md measures it). float32 elsewhere: in float32 training, and on GPUs,
    whose batches are gathered on the device from a float32 copy of the cache (DeviceCache)."""
    return "bfloat16" if device.type == "cpu" and cfg.bf16 and cpu_bf16_native() else "float32"


def modality_dims(encoders: dict, dim: int) -> tuple[int, ...]:
    """The fused vector's block sizes in MODALITIES order (then the film descriptors' block, where the
    store has it), from a store's encoder record; ConfigError when they are not known or do not make
    up `dim` (modality dropout needs them)."""
    dims = block_dims(encoders)
    if sum(dims) != dim:
        raise ConfigError(None, f"modality_dropout needs the fused vector's modality sizes; the store's encoders "
                                f"give {dims or 'none'} for {dim}-d vectors")
    return dims


def build_model(cfg: TrainConfig, dim: int, meta_dim: int, encoders: dict | None = None) -> MediaFM:
    choices = cfg.model.choices()
    if choices["modality_dropout"]:
        choices["modality_dims"] = modality_dims(encoders or {}, dim)
    mcfg = lookup(PRESETS, cfg.preset, "preset")(dim, meta_dim if cfg.use_meta else 0, **choices)
    torch.manual_seed(cfg.seed)  # same initial weights on every rank and every rerun
    return MediaFM(mcfg)


def pretrain(store_root: str | Path, out_dir: str | Path, config: TrainConfig | None = None,
             resume: bool = False) -> PretrainResult:
    """Pretrain a MediaFM on the store's fused vectors by masked shot modeling.

    Args:
        store_root: a store with encoded titles (features/).
        out_dir: model directory (weights, config, card, metrics, checkpoint/).
        config: training settings.
        resume: continue from out_dir/checkpoint exactly where it stopped.

    Returns:
        PretrainResult with steps, best validation loss and the per-epoch history.
    """
    config = config if config is not None else TrainConfig()
    cfg = config
    cfg.validate()
    out_dir = Path(out_dir)
    rank, world, device = _dist_setup(cfg.device)
    if cfg.num_threads:
        torch.set_num_threads(cfg.num_threads)
    dtype = cache_dtype(cfg, device)
    if rank == 0:
        cache = build_cache(store_root, progress=cfg.progress, dtype=dtype)
    _barrier()
    if rank != 0:
        cache = build_cache(store_root, dtype=dtype)
    train_titles, val_titles = split_titles(cache.title_ids, cfg.val_fraction, cfg.seed)
    if not train_titles:
        raise ConfigError(store_root, "no training titles after the validation split")
    try:
        plan = plan_schedule(cfg, train_windows(cache, train_titles, cfg.model.max_shots), len(train_titles), world)
    except ConfigError as exc:
        raise ConfigError(store_root, exc.problem) from None
    if rank == 0:
        log.info(plan.note)
    spe, total, batch_size = plan.steps_per_epoch, plan.total_steps, plan.batch_size

    model = build_model(cfg, cache.dim, cache.meta_dim, cache.encoders).to(device)
    dcache = None
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True  # float32 products outside autocast (the losses)
        if cfg.device_cache and DeviceCache.fits(cache, device):
            dcache = DeviceCache(cache, device)
    optimizer = build_optimizer(model, cfg.optim)
    state = ckpt.TrainState()
    if resume and ckpt.has_checkpoint(out_dir):
        state = ckpt.load_checkpoint(out_dir, model, optimizer)
    elif resume:
        log.warning("no checkpoint in %s; starting from scratch", out_dir)
    run_model = model
    if world > 1:
        run_model = torch.nn.parallel.DistributedDataParallel(
            model, device_ids=[device.index] if device.type == "cuda" else None)
    if cfg.compile:
        run_model = torch.compile(run_model)

    metrics = _Metrics(out_dir / "metrics.csv", state.step, enabled=rank == 0 and not state.done)
    bar = None
    if rank == 0 and cfg.progress:
        from tqdm import tqdm
        bar = tqdm(total=total, initial=state.step, desc="pretrain", unit="step", dynamic_ncols=True)
    shots_per_batch = 0
    t0, last_loss, stopped = time.perf_counter(), float("nan"), "epochs"
    steps_run = 0
    run_model.train()
    try:
        while not state.done:
            batches = iter_batches(cache, train_titles, cfg.model.max_shots, batch_size, cfg.seed, state.epoch,
                                   cfg.mask, rank, world, skip=state.batch_in_epoch, use_meta=cfg.use_meta,
                                   device_cache=dcache, pin=device.type == "cuda" and dcache is None)
            loss_t = None
            for batch in prefetch(batches, cfg.prefetch if cfg.prefetch >= 0 else 2 * (device.type == "cuda")):
                loss_t = train_step(run_model, optimizer, batch, cfg, state.step, total, world, device)
                state.step += 1
                state.batch_in_epoch += 1
                steps_run += 1
                shots_per_batch += batch.real * world  # approx. global shots
                if bar is not None:
                    bar.update(1)
                if state.step % cfg.log_every == 0:
                    last_loss = float(loss_t)  # waits for the GPU: once per log_every steps, not every step
                    if bar is not None:
                        bar.set_postfix(loss=f"{last_loss:.4f}", epoch=state.epoch)
                    dt = time.perf_counter() - t0
                    metrics.write(step=state.step, epoch=state.epoch, train_loss=last_loss,
                                  lr=optimizer.param_groups[-1]["lr"], shots_per_s=shots_per_batch / max(dt, 1e-9))
                    t0, shots_per_batch = time.perf_counter(), 0
                if state.step >= total or state.step % plan.val_every == 0:
                    break
                if cfg.steps_this_run and steps_run >= cfg.steps_this_run:
                    break
                if state.step % cfg.checkpoint_every == 0 and rank == 0:
                    ckpt.save_checkpoint(out_dir, model, optimizer, state, cfg.to_dict())
            if loss_t is not None:
                last_loss = float(loss_t)
            if state.batch_in_epoch >= spe:  # the epoch's batches are used up
                state.epoch, state.batch_in_epoch = state.epoch + 1, 0
            validate = state.step >= total or state.step % plan.val_every == 0
            interrupted = bool(cfg.steps_this_run and steps_run >= cfg.steps_this_run)
            if interrupted and not validate:
                stopped = "steps_this_run"
                break
            if validate:
                val = validation_loss(model, cache, val_titles, cfg, rank, world, device, batch_size, dcache)
                state.history.append({"epoch": state.epoch, "step": state.step, "val_loss": val, "train_loss": last_loss})
                metrics.write(step=state.step, epoch=state.epoch, train_loss=last_loss, val_loss=val)
                improved = not math.isnan(val) and val < state.best_val
                if improved or math.isnan(val):
                    state.best_val, state.best_step, state.bad_epochs = val, state.step, 0
                    if rank == 0:
                        save_pretrained(model, out_dir, extra={"train": cfg.to_dict()})
                else:
                    state.bad_epochs += 1
                if state.step >= total:
                    state.done, stopped = True, "max_steps" if cfg.max_steps and total == cfg.max_steps else "epochs"
                elif state.bad_epochs >= cfg.patience:
                    state.done, stopped = True, "early_stopping"
                if rank == 0:
                    ckpt.save_checkpoint(out_dir, model, optimizer, state, cfg.to_dict())
            if interrupted and not state.done:
                stopped = "steps_this_run"
                break
        if rank == 0:
            if stopped == "steps_this_run":
                ckpt.save_checkpoint(out_dir, model, optimizer, state, cfg.to_dict())
            else:
                ckpt.write_model_card(out_dir, _card(cfg, model, cache, train_titles, val_titles, state, plan))
    finally:
        if bar is not None:
            bar.close()
        metrics.close()
    _barrier()
    return PretrainResult(out_dir, model.config, state.step, state.epoch, state.best_val, last_loss, stopped,
                          state.history)


def _card(cfg: TrainConfig, model: MediaFM, cache: ShotCache, train: list[int], val: list[int],
          state: ckpt.TrainState, plan: Schedule) -> dict:
    from mediafm import __version__
    mc = model.config
    return {"name": mc.name, "preset": cfg.preset, "config": mc.to_dict(),
            "embedding": {"readout": mc.readout, "dim": mc.embed_dim, "objective": mc.objective,
                          "metadata": bool(mc.meta_dim)},
            "schedule": {"batch_size": plan.batch_size, "total_steps": plan.total_steps,
                         "val_every": plan.val_every, "note": plan.note},
            "parameters": model.num_params(), "encoders": cache.encoders,
            "data": {"train_titles": len(train), "val_titles": len(val),
                     "train_shots": int(sum(cache.length(t) for t in train)),
                     "val_shots": int(sum(cache.length(t) for t in val))},
            "steps": state.step, "epochs": state.epoch, "optimizer": cfg.optim.optimizer,
            "best_val_loss": state.best_val, "best_step": state.best_step, "history": state.history,
            "train_config": cfg.to_dict(), "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "mediafm_version": __version__}


class _Metrics:
    """metrics.csv (and TensorBoard when installed). On resume, rows after the checkpoint are dropped,
    so the log of a resumed run equals that of an uninterrupted one."""

    FIELDS = ["step", "epoch", "train_loss", "val_loss", "lr", "shots_per_s", "time"]

    def __init__(self, path: Path, resume_step: int, enabled: bool):
        self.enabled, self.fh, self.tb = enabled, None, None
        if not enabled:
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        rows = []
        if resume_step and path.exists():
            with open(path, newline="") as fh:
                rows = [r for r in csv.DictReader(fh) if int(r["step"]) <= resume_step]
        self.fh = open(path, "w", newline="")
        self.writer = csv.DictWriter(self.fh, fieldnames=self.FIELDS)
        self.writer.writeheader()
        self.writer.writerows(rows)
        with contextlib.suppress(ImportError):
            from torch.utils.tensorboard import SummaryWriter
            self.tb = SummaryWriter(str(path.parent / "tensorboard"))

    def write(self, **row) -> None:
        if not self.enabled:
            return
        row["time"] = time.time()
        self.writer.writerow(row)
        self.fh.flush()
        if self.tb is not None:
            for k in ("train_loss", "val_loss", "lr", "shots_per_s"):
                if k in row:
                    self.tb.add_scalar(k, row[k], row["step"])

    def close(self) -> None:
        if self.fh is not None:
            self.fh.close()
        if self.tb is not None:
            self.tb.close()
