"""Pretraining data: the store's fused vectors consolidated once into memory-mapped arrays.

nanoGPT style: `build_cache` streams every title's fused vectors (one title in memory at a time)
into `STORE/cache/msm-<key>/fused.npy` with an `offsets.npy` index; training only reads slices of
the memory map, so resident memory is bounded by the batch, not by the catalog. The cache key
hashes the titles' feature/meta file sizes and mtimes, so a changed store gets a new cache.

Sampling is deterministic given (seed, epoch): every epoch shuffles the training titles, cuts
each into windows of at most `window` shots (overlapping by half a window), and groups them into
global batches; DDP rank r takes the r-th slice of each global batch, and the masked positions of
a window depend only on (seed, epoch, title, window start). So a run on k ranks sees exactly the
same global batches, with the same masks, as a run on one.

On a GPU, a cache that fits in a share of the device's memory is copied there once
(`DeviceCache`): each batch is then a gather of rows on the device from row indices and masks made
on the CPU (a few hundred KB), instead of ~170 MB assembled on the host and copied per step for
`base` at 32 x 512 shots. The batches are the same, bit for bit, as `collate`'s.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from mediafm.errors import StoreError
from mediafm.store.atomic import write_json_atomic
from mediafm.store.catalog import Store

CACHE_FORMAT = 1


@dataclass(frozen=True)
class ShotCache:
    """Memory-mapped view of a store's fused vectors (see module docstring)."""

    root: Path
    title_ids: list[str]
    fused: np.ndarray  # [total_shots, D], memory-mapped: float32, or bfloat16's bits as uint16 (`dtype`)
    offsets: np.ndarray  # int64 [n_titles + 1]: title i is fused[offsets[i]:offsets[i+1]]
    times: np.ndarray  # float32 [total_shots, 2] (start_s, duration_s), memory-mapped
    meta: np.ndarray  # float32 [n_titles, D_text]; zero row = no metadata (D_text may be 0)
    encoders: dict

    @property
    def dtype(self) -> str:
        """Of the fused vectors: float32, or bfloat16 stored as its uint16 bits (see build_cache)."""
        return "bfloat16" if self.fused.dtype == np.uint16 else "float32"

    def read(self, start: int, n: int) -> tuple[np.ndarray, np.ndarray]:
        """(fused [n, D], times [n, 2]) rows start..start+n, read with pread, not through the memmap:
        pages touched through a long-lived memmap stay mapped and count toward the process RSS
        (nanoGPT re-creates its memmap per batch for the same reason); pread leaves them to the
        kernel's page cache, so RSS stays flat over an epoch whatever the catalog size."""
        fused = np.empty((n, self.dim), self.fused.dtype)
        times = np.empty((n, 2), self.times.dtype)
        self.read_into(start, fused, times)
        return fused, times

    def read_into(self, start: int, fused: np.ndarray, times: np.ndarray) -> None:
        """`read`, into the given C-contiguous arrays ([n, D] and [n, 2]: a batch's rows): the
        kernel copies straight into them, with no intermediate buffer to allocate and copy again."""
        _pread_into(self.fused, start, fused)
        _pread_into(self.times, start, times)

    @property
    def dim(self) -> int:
        return int(self.fused.shape[1])

    @property
    def meta_dim(self) -> int:
        return int(self.meta.shape[1])

    def length(self, i: int) -> int:
        return int(self.offsets[i + 1] - self.offsets[i])


def _pread_into(arr: np.memmap, start: int, out: np.ndarray) -> None:
    """Rows start..start + len(out) of the memory-mapped `arr` into `out`, with one preadv."""
    row = arr.shape[1] * arr.itemsize
    fd = os.open(arr.filename, os.O_RDONLY)
    try:
        got = os.preadv(fd, [memoryview(out).cast("B")], arr.offset + start * row)
    finally:
        os.close(fd)
    if got != out.nbytes:
        raise StoreError(arr.filename, f"the training cache is shorter than its index says ({got} of "
                                       f"{out.nbytes} bytes at row {start}); delete the cache folder to rebuild it")


def _cache_key(store: Store, title_ids: list[str]) -> str:
    h = hashlib.sha256(f"v{CACHE_FORMAT}".encode())
    for tid in title_ids:
        for f in (store.table_file("features", tid), store.root / "meta" / f"{tid}.npy"):
            st = f.stat() if f.exists() else None
            h.update(f"{tid}|{f.parent.name}|{st.st_size if st else -1}|{st.st_mtime_ns if st else -1}\n".encode())
    return h.hexdigest()[:16]


CACHE_DTYPES = ("float32", "bfloat16")


def build_cache(store_root: str | Path, progress: bool = False, dtype: str = "float32") -> ShotCache:
    """Consolidate (or reuse) the memory-mapped cache of the store's fused vectors.

    dtype "bfloat16" stores each vector rounded to bfloat16 (to nearest even, as torch casts), for
    training that runs its products in bfloat16 anyway: a batch is half the bytes to read and to
    gather, and the input projection has nothing left to cast. The losses read the targets in
    float32 from those values."""
    if dtype not in CACHE_DTYPES:
        raise ValueError(f"cache dtype {dtype!r}: one of {CACHE_DTYPES}")
    store = Store(store_root)
    title_ids = [t for t in store.title_ids() if store.has_features(t)]
    if not title_ids:
        raise StoreError(store.root, "no encoded titles in the store; run `mediafm encode` first")
    encoders = store.check_encoders(title_ids)
    key = _cache_key(store, title_ids)
    root = store.root / "cache" / (f"msm-{key}" if dtype == "float32" else f"msm-{key}-{dtype}")
    if not (root / "index.json").exists():
        _write_cache(store, title_ids, encoders, root, progress, dtype)
    return open_cache(root)


def bfloat16_bits(x: np.ndarray) -> np.ndarray:
    """float32 [n, D] -> uint16 [n, D]: the bits of each value rounded to bfloat16 (torch's cast)."""
    return torch.from_numpy(np.require(x, np.float32, ["C", "W"])).to(torch.bfloat16).view(torch.uint16).numpy()


def _write_cache(store: Store, title_ids: list[str], encoders: dict, root: Path, progress: bool,
                 dtype: str = "float32") -> None:
    # Pass 1 reads only the shots tables (row counts) so the memmaps can be sized up front.
    lengths = [len(store.shots(t)) for t in title_ids]
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    first = store.features(title_ids[0])
    dim = first.shape[1]
    meta_dim = next((len(m) for t in title_ids if (m := store.meta_embedding(t)) is not None), 0)
    tmp = root.with_name(root.name + f".tmp{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    # Sized .npy files are created through open_memmap, then filled with pwrite: writing through
    # the memmap would keep every dirty page mapped, so RSS would grow to the catalog size.
    bf16 = dtype == "bfloat16"
    fused = _NpyRowWriter(tmp / "fused.npy", (int(offsets[-1]), dim), np.uint16 if bf16 else np.float32)
    times = _NpyRowWriter(tmp / "times.npy", (int(offsets[-1]), 2))
    meta = np.zeros((len(title_ids), meta_dim), np.float32)
    it = enumerate(title_ids)
    if progress:
        from tqdm import tqdm
        it = tqdm(it, total=len(title_ids), desc="consolidating features", unit="title")
    for i, tid in it:
        x = store.features(tid)
        if x.shape != (lengths[i], dim):
            raise StoreError(store.table_file("features", tid), f"fused features have shape {x.shape}, "
                             f"expected ({lengths[i]}, {dim})")
        fused.write(int(offsets[i]), bfloat16_bits(x) if bf16 else x)
        sh = store.shots(tid)
        start = sh["start_s"].to_numpy(np.float32)
        times.write(int(offsets[i]), np.stack([start, sh["end_s"].to_numpy(np.float32) - start], 1))
        m = store.meta_embedding(tid)
        if m is not None and meta_dim:
            meta[i] = m
    fused.close()
    times.close()
    np.save(tmp / "offsets.npy", offsets)
    np.save(tmp / "meta.npy", meta)
    write_json_atomic({"format": CACHE_FORMAT, "title_ids": title_ids, "encoders": encoders, "dtype": dtype},
                      tmp / "index.json")
    try:
        os.replace(tmp, root)  # atomic: readers see no cache or a whole one
    except OSError:  # another rank/process finished first
        shutil.rmtree(tmp, ignore_errors=True)


class _NpyRowWriter:
    """Fill a [rows, cols] .npy file (float32, or uint16 bits) row block by row block without mapping it."""

    def __init__(self, path: Path, shape: tuple[int, int], dtype=np.float32):
        mm = np.lib.format.open_memmap(path, mode="w+", dtype=dtype, shape=shape)
        self.offset, self.row, self.dtype = mm.offset, shape[1] * mm.itemsize, dtype
        del mm
        self.fd = os.open(path, os.O_WRONLY)

    def write(self, start: int, rows: np.ndarray) -> None:
        os.pwrite(self.fd, np.ascontiguousarray(rows, self.dtype).tobytes(), self.offset + start * self.row)

    def close(self) -> None:
        os.fsync(self.fd)
        os.close(self.fd)


def open_cache(root: str | Path) -> ShotCache:
    root = Path(root)
    index = json.loads((root / "index.json").read_text())
    return ShotCache(root=root, title_ids=index["title_ids"], fused=np.load(root / "fused.npy", mmap_mode="r"),
                     offsets=np.load(root / "offsets.npy"), times=np.load(root / "times.npy", mmap_mode="r"),
                     meta=np.load(root / "meta.npy"), encoders=index["encoders"])


def split_titles(title_ids: list[str], val_fraction: float, seed: int) -> tuple[list[int], list[int]]:
    """Indices of train and validation titles: a seeded hash of the id, so adding titles never
    moves an existing title across the split (and no title is in both)."""
    def u(tid: str) -> float:
        return int(hashlib.sha256(f"{seed}:{tid}".encode()).hexdigest()[:12], 16) / 16**12
    val = [i for i, t in enumerate(title_ids) if u(t) < val_fraction]
    if not val and val_fraction > 0 and len(title_ids) > 1:  # tiny catalogs: still hold one title out
        val = [min(range(len(title_ids)), key=lambda i: u(title_ids[i]))]
    vs = set(val)
    return [i for i in range(len(title_ids)) if i not in vs], val


@dataclass(frozen=True)
class Window:
    title: int  # index into ShotCache.title_ids
    start: int  # first shot of the window
    length: int  # shots in the window


def title_windows(title: int, n: int, window: int) -> list[Window]:
    """Windows of <= `window` shots covering a title, overlapping by half a window."""
    if n <= window:
        return [Window(title, 0, n)]
    step = window // 2
    starts = sorted(set(list(range(0, n - window, step)) + [n - window]))
    return [Window(title, s, window) for s in starts]


def epoch_windows(cache: ShotCache, titles: list[int], window: int, seed: int, epoch: int,
                  shuffle: bool = True) -> list[Window]:
    order = np.asarray(titles)
    if shuffle:
        order = np.random.default_rng([seed, epoch]).permutation(order)
    return [w for t in order for w in title_windows(int(t), cache.length(int(t)), window)]


@dataclass(frozen=True)
class MaskSpec:
    """Which shots of a window carry the masked-shot loss, and what the model sees in their place."""

    ratio: float = 0.2  # share of a window's real shots selected (at least one)
    span: float = 1.0  # mean length in shots of a run of selected shots (1 = single shots)
    # Shares of the selected shots that keep their real input (BERT's "unchanged") or show another
    # shot of the window (BERT's "random"); the rest show [MASK]. Both train the outputs at shots
    # whose input is visible, which are the contextual embeddings used at inference.
    keep: float = 0.1
    random: float = 0.0


def _as_spec(ratio: float | MaskSpec) -> MaskSpec:
    return ratio if isinstance(ratio, MaskSpec) else MaskSpec(ratio=float(ratio))


def mask_for(w: Window, ratio: float | MaskSpec, seed: int, epoch: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(selected, kept, swapped) bool [w.length], fixed by the window's identity.

    round(ratio * length) shots (at least 1) are selected and carry the loss. With span > 1 they
    come in runs of geometric length (mean `span`), so a masked shot's nearest neighbours are
    often masked too and the model must use farther context than the shot next door. Kept and
    swapped shares apply to training only: validation (epoch -1) masks every selected shot, so its
    loss stays comparable across settings.
    """
    spec = _as_spec(ratio)
    rng = np.random.default_rng([seed, epoch + 1, w.title, w.start])  # epoch -1 = validation
    n = w.length
    k = min(n, max(1, int(round(spec.ratio * n))))
    m = np.zeros(n, bool)
    if spec.span <= 1:
        chosen = rng.choice(n, size=k, replace=False)
        m[chosen] = True
    else:
        while m.sum() < k:
            run = min(int(rng.geometric(1.0 / spec.span)), k - int(m.sum()))
            start = int(rng.integers(0, n - run + 1))
            m[start:start + run] = True
        chosen = np.flatnonzero(m)
    kept = np.zeros(n, bool)
    swapped = np.zeros(n, bool)
    if epoch >= 0 and (spec.keep or spec.random):
        u = rng.random(len(chosen))
        kept[chosen[u < spec.keep]] = True
        swapped[chosen[(u >= spec.keep) & (u < spec.keep + spec.random)]] = True
    return m, kept, swapped


@dataclass
class Batch:
    fused: torch.Tensor  # [B, N, D]
    meta: torch.Tensor | None  # [B, D_text], zero rows = no metadata
    pad_mask: torch.Tensor  # bool [B, N], True = real shot
    mask_positions: torch.Tensor  # bool [B, N], shots that carry the loss
    times: torch.Tensor  # [B, N, 2]
    keep_positions: torch.Tensor | None = None  # bool [B, N], loss-carrying shots whose input stays visible
    targets: torch.Tensor | None = None  # [B, N, D] true vectors where `fused` had inputs swapped (else None)
    lengths: tuple[int, ...] = ()  # each window's real shots, from the host (reading pad_mask may wait for a GPU)

    @property
    def real(self) -> int:
        """Real shots in the batch."""
        return sum(self.lengths)

    def _map(self, fn) -> Batch:
        mv = lambda t: None if t is None else fn(t)  # noqa: E731
        return Batch(mv(self.fused), mv(self.meta), mv(self.pad_mask), mv(self.mask_positions), mv(self.times),
                     mv(self.keep_positions), mv(self.targets), self.lengths)

    def to(self, device) -> Batch:
        return self._map(lambda t: t.to(device, non_blocking=True))

    def pin_memory(self) -> Batch:
        """The batch in page-locked memory, so that `to(cuda)` runs asynchronously."""
        return self._map(lambda t: t.pin_memory())


def collate(cache: ShotCache, windows: list[Window], ratio: float | MaskSpec, seed: int, epoch: int,
            use_meta: bool = True) -> Batch:
    """Pad windows to the longest in the batch; reads only these windows' rows of the memmap."""
    B, N = len(windows), max(w.length for w in windows)
    fused = np.zeros((B, N, cache.dim), cache.fused.dtype)
    times = np.zeros((B, N, 2), np.float32)
    pad = np.zeros((B, N), bool)
    masked = np.zeros((B, N), bool)
    kept = np.zeros((B, N), bool)
    swaps = []
    for j, w in enumerate(windows):
        a = int(cache.offsets[w.title]) + w.start
        cache.read_into(a, fused[j, :w.length], times[j, :w.length])
        pad[j, :w.length] = True
        masked[j, :w.length], kept[j, :w.length], swapped = mask_for(w, ratio, seed, epoch)
        if swapped.any():
            rng = np.random.default_rng([seed, epoch + 1, w.title, w.start, 1])
            rows = np.flatnonzero(swapped)
            swaps.append((j, rows, rng.integers(0, w.length, len(rows))))
    targets = fused.copy() if swaps else None
    for j, rows, src in swaps:
        fused[j, rows] = targets[j, src]
    meta = torch.from_numpy(cache.meta[[w.title for w in windows]]) if cache.meta_dim and use_meta else None

    def vectors(a: np.ndarray) -> torch.Tensor:
        t = torch.from_numpy(a)
        return t.view(torch.bfloat16) if cache.dtype == "bfloat16" else t

    return Batch(vectors(fused), meta, torch.from_numpy(pad), torch.from_numpy(masked),
                 torch.from_numpy(times), torch.from_numpy(kept), None if targets is None else vectors(targets),
                 tuple(w.length for w in windows))


class DeviceCache:
    """The cache's fused vectors, times and metadata in GPU memory, each with a zero row appended
    (index `len`: what padding positions gather)."""

    def __init__(self, cache: ShotCache, device, chunk_rows: int = 1 << 15):
        from mediafm.devices import PinnedStaging

        if cache.dtype != "float32":
            raise ValueError(f"DeviceCache copies float32 caches; {cache.root} holds {cache.dtype}")
        self.cache, self.device = cache, torch.device(device)
        stage = PinnedStaging(str(self.device))
        n = len(cache.fused)
        self.fused = torch.zeros((n + 1, cache.dim), dtype=torch.float32, device=self.device)
        self.times = torch.zeros((n + 1, 2), dtype=torch.float32, device=self.device)
        for a in range(0, n, chunk_rows):  # bounded host memory: pread + pinned copy per chunk
            fused, times = cache.read(a, min(chunk_rows, n - a))
            self.fused[a:a + len(fused)] = stage(fused)
            self.times[a:a + len(times)] = stage(times)
        self.meta = torch.from_numpy(cache.meta).to(self.device)
        self.stage = PinnedStaging(str(self.device))

    @staticmethod
    def fits(cache: ShotCache, device, share: float = 0.25) -> bool:
        """Whether the cache takes at most `share` of the device's free memory."""
        free, _ = torch.cuda.mem_get_info(torch.device(device))
        return (cache.fused.nbytes + cache.times.nbytes) <= share * free

    def batch(self, windows: list[Window], ratio: float | MaskSpec, seed: int, epoch: int,
              use_meta: bool = True) -> Batch:
        """`collate`'s batch, gathered on the device. pad_mask is None when no window is padded."""
        cache = self.cache
        B, N = len(windows), max(w.length for w in windows)
        pad_row = len(cache.fused)
        # Rows of the device arrays per position: inputs (after swaps), targets; masks as 0/1.
        index = np.zeros((5, B, N), np.int64)
        index[:2] = pad_row
        swapped_any = False
        for j, w in enumerate(windows):
            a = int(cache.offsets[w.title]) + w.start
            rows = a + np.arange(w.length)
            index[0, j, :w.length] = index[1, j, :w.length] = rows
            index[2, j, :w.length] = 1
            masked, kept, swapped = mask_for(w, ratio, seed, epoch)
            index[3, j, :w.length], index[4, j, :w.length] = masked, kept
            if swapped.any():  # the same draws as collate's
                rng = np.random.default_rng([seed, epoch + 1, w.title, w.start, 1])
                pos = np.flatnonzero(swapped)
                index[0, j, pos] = a + rng.integers(0, w.length, len(pos))
                swapped_any = True
        padded = any(w.length < N for w in windows)
        dev = self.stage(index)
        src, tgt, pad, masked, kept = dev.unbind(0)
        meta = self.meta[[w.title for w in windows]] if cache.meta_dim and use_meta else None
        return Batch(self.fused[src], meta, pad.bool() if padded else None, masked.bool(), self.times[tgt],
                     kept.bool(), self.fused[tgt] if swapped_any else None, tuple(w.length for w in windows))


def global_batches(windows: list[Window], global_batch: int, drop_last: bool) -> list[list[Window]]:
    n = len(windows) // global_batch * global_batch if drop_last else len(windows)
    return [windows[i:i + global_batch] for i in range(0, n, global_batch)]


def rank_slice(batch: list[Window], rank: int, world: int) -> list[Window]:
    """This rank's contiguous share of a global batch (sizes differ by at most one)."""
    bounds = np.linspace(0, len(batch), world + 1).round().astype(int)
    return batch[bounds[rank]:bounds[rank + 1]]


def iter_batches(cache: ShotCache, titles: list[int], window: int, global_batch: int, seed: int, epoch: int,
                 ratio: float | MaskSpec, rank: int = 0, world: int = 1, shuffle: bool = True, drop_last: bool = True,
                 skip: int = 0, use_meta: bool = True, device_cache: DeviceCache | None = None,
                 pin: bool = False) -> Iterator[Batch]:
    """This rank's batches for one epoch, skipping the first `skip` global batches (resume).

    With `device_cache`, batches are gathered on its device; else assembled on the host (in
    page-locked memory with `pin`, for asynchronous copies to a GPU).
    """
    wins = epoch_windows(cache, titles, window, seed, epoch, shuffle)
    for gb in global_batches(wins, global_batch, drop_last)[skip:]:
        mine = rank_slice(gb, rank, world)
        if not mine:
            continue
        if device_cache is not None:
            yield device_cache.batch(mine, ratio, seed, epoch, use_meta)
        else:
            batch = collate(cache, mine, ratio, seed, epoch, use_meta)
            yield batch.pin_memory() if pin else batch


def train_windows(cache: ShotCache, titles: list[int], window: int) -> int:
    """Windows in one epoch over `titles`."""
    return sum(len(title_windows(t, cache.length(t), window)) for t in titles)


def steps_per_epoch(cache: ShotCache, titles: list[int], window: int, global_batch: int) -> int:
    return train_windows(cache, titles, window) // global_batch
