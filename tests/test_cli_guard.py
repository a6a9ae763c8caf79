"""Every subcommand against hostile inputs: missing, empty, binary and wrong-kind files, bad numbers,
hostile names. Each ends with exit status 1 or 2 and one error line naming the problem, never a
traceback and never an internal error."""

from __future__ import annotations

import os

import pytest

from mediafm.cli.main import COMMANDS, main
from mediafm_testing.scenes import clip_labels, scene_store



@pytest.fixture(scope="module")
def files(tmp_path_factory):
    root = tmp_path_factory.mktemp("guard")
    store, truth = scene_store(root / "store", n_titles=4, seed=2)
    labels = clip_labels(truth, root / "labels")
    assert main(["fit", str(store.root), "--labels", str(labels / "popularity.csv"), "--task", "rank",
                 "--out", str(root / "head"), "--folds", "3", "--n-boot", "20"]) == 0
    (root / "empty.bin").write_bytes(b"")
    (root / "binary.bin").write_bytes(os.urandom(3000))
    (root / "latin1.csv").write_bytes(b"title,start,end,label\ncaf\xe9,0,2,1\n")
    (root / "text.json").write_text('{"model": 3}')
    (root / "folder").mkdir()
    (root / "folder" / "card.json").write_text("[1, 2")
    return {"store": str(store.root), "labels": str(labels), "head": str(root / "head"), "missing": str(root / "missing"),
            "empty": str(root / "empty.bin"), "binary": str(root / "binary.bin"), "latin1": str(root / "latin1.csv"),
            "json": str(root / "text.json"), "dir": str(root / "folder"), "out": str(root / "out"),
            "outfile": str(root / "out.csv"), "pop": str(labels / "popularity.csv")}


def _cases() -> list[tuple[str, list[str]]]:
    c: list[tuple[str, list[str]]] = []
    files = ("{missing}", "{empty}", "{binary}", "{dir}", "{json}")
    for f in files:
        c += [("shots", [f]), ("ingest", [f, "--out", "{binary}"]), ("encode", [f]), ("embed", [f, "--model", "{head}"]),
              ("embed", ["{store}", "--model", f]), ("pretrain", [f, "--out", "{out}"]),
              ("probe", ["{store}", "--labels", f, "--task", "rank"]), ("probe", [f, "--labels", "{pop}", "--task", "rank"]),
              ("eval", ["{store}", "--labels-dir", f, "--out", "{out}"]),
              ("fit", ["{store}", "--labels", f, "--task", "rank", "--out", "{out}"]),
              ("fit", [f, "--labels", "{pop}", "--task", "rank", "--out", "{out}"]),
              ("predict", ["{store}", "--head", f, "--out", "{outfile}"]),
              ("predict", ["{store}", "--head", "{head}", "--clips", f, "--out", "{outfile}"]),
              ("predict", [f, "--head", "{head}", "--out", "{outfile}"]),
              ("tag", ["{store}", "--head", f, "--out", "{outfile}"]),
              ("clips", ["{store}", "--rank", f, "--out", "{outfile}"]),
              ("adbreaks", ["{store}", "--head", f, "--out", "{outfile}"]),
              ("scenes", [f, "--out", "{outfile}"]), ("scenes", ["{store}", "--head", f, "--out", "{outfile}"]),
              ("scenes", ["{store}", "--model", f, "--out", "{outfile}"]),
              ("index", [f]), ("search", [f, "--text", "rain"]),
              ("search", ["{store}", "--text", "rain", "--clip-weights", f]), ("serve", [f]),
              ("serve", ["{store}", "--heads", f]), ("synth", [f + "/x/y"] if f not in ("{missing}", "{dir}") else ["{binary}"])]
    c += [("probe", ["{store}", "--labels", "{latin1}", "--task", "rank"]),
          ("fit", ["{store}", "--labels", "{latin1}", "--task", "rank", "--out", "{out}"]),
          ("predict", ["{store}", "--head", "{head}", "--clips", "{latin1}", "--out", "{outfile}"]),
          ("fit", ["{store}", "--labels", "{labels}/tone.csv", "--task", "rank", "--out", "{out}"]),  # labels of another kind
          ("predict", ["{store}", "--head", "{head}", "--out", "{binary}"]),  # an output of an unknown kind
          ("predict", ["{store}", "--head", "{head}", "--out", "{dir}"]),
          ("embed", ["{store}", "--model", "{store}"]), ("predict", ["{head}", "--head", "{head}", "--out", "{outfile}"])]
    count, positive, nonneg = ("-1", "0", "nan", "abc", "1e999", "2.5"), ("-1", "0", "nan", "inf", "abc"), ("-1", "nan", "inf", "abc")
    fraction, real = ("-0.1", "1.5", "nan", "abc"), ("nan", "abc")
    for option, values in (
            (["shots", "{binary}", "--threshold"], fraction),
            (["ingest", "{missing}", "--out", "{out}", "--frames-per-shot"], count),
            (["ingest", "{missing}", "--out", "{out}", "--audio-window"], positive),
            (["ingest", "{missing}", "--out", "{out}", "--workers"], count),
            (["encode", "{store}", "--batch-shots"], count),
            (["pretrain", "{store}", "--out", "{out}", "--max-steps"], nonneg),
            (["pretrain", "{store}", "--out", "{out}", "--batch-size"], nonneg),
            (["pretrain", "{store}", "--out", "{out}", "--lr"], positive),
            (["pretrain", "{store}", "--out", "{out}", "--val-fraction"], fraction),
            (["pretrain", "{store}", "--out", "{out}", "--max-shots"], count),
            (["pretrain", "{store}", "--out", "{out}", "--checkpoint-every"], count),
            (["synth", "{out}", "--titles"], count), (["synth", "{out}", "--width"], count),
            (["demo", "--out", "{out}", "--titles"], count), (["demo", "--out", "{out}", "--max-steps"], nonneg),
            (["probe", "{store}", "--labels", "{pop}", "--task", "rank", "--folds"], (*count, "1")),
            (["probe", "{store}", "--labels", "{pop}", "--task", "rank", "--n-boot"], nonneg),
            (["fit", "{store}", "--labels", "{pop}", "--task", "rank", "--out", "{out}", "--folds"], (*count, "1")),
            (["fit", "{store}", "--labels", "{labels}/scenes.csv", "--task", "scenes", "--out", "{out}", "--window"], count),
            (["predict", "{store}", "--head", "{head}", "--out", "{outfile}", "--min-s"], nonneg),
            (["predict", "{store}", "--head", "{head}", "--out", "{outfile}", "--max-overlap"], fraction),
            (["tag", "{store}", "--head", "{head}", "--out", "{outfile}", "--threshold"], real),
            (["clips", "{store}", "--rank", "{head}", "--out", "{outfile}", "-k"], count),
            (["adbreaks", "{store}", "--head", "{head}", "--out", "{outfile}", "--min-spacing"], nonneg),
            (["adbreaks", "{store}", "--head", "{head}", "--out", "{outfile}", "--max-breaks"], ("-1", "nan", "abc", "2.5")),
            (["adbreaks", "{store}", "--head", "{head}", "--out", "{outfile}", "--clip-s"], positive),
            (["scenes", "{store}", "--out", "{outfile}", "--window"], count),
            (["scenes", "{store}", "--out", "{outfile}", "--threshold"], real),
            (["index", "{store}", "--exact-max"], ("-1", "nan", "abc")),
            (["index", "{store}", "--target-recall"], ("0", *fraction)),
            (["search", "{store}", "--text", "rain", "--k"], count),
            (["serve", "{store}", "--port"], ("-1", "70000", "nan", "abc")),
            (["serve", "{store}", "--cache-mb"], ("-1", "nan", "abc")),
            (["serve", "{store}", "--break-spacing"], ("-1", "nan", "inf", "abc"))):
        c += [(option[0], [*option[1:], v]) for v in values]
    for name in ("../../etc/passwd", "-rf", "a\nb", "title01:x", ".hidden", "x" * 400):
        c += [("predict", ["{store}", "--head", "{head}", "--titles", name, "--out", "{outfile}"]),
              ("embed", ["{store}", "--model", "{head}", "--title", name]),
              ("encode", ["{store}", "--titles", name]),
              ("search", ["{store}", "--shot", name]), ("search", ["{store}", "--clip", name]),
              ("scenes", ["{store}", "--titles", name, "--out", "{outfile}"])]
    c += [("search", ["{store}", "--shot", "title01:999"]), ("search", ["{store}", "--clip", "title01:9-3"]),
          ("search", ["{store}", "--clip", "title01:nan-inf"]), ("search", ["{store}", "--text", ""]),
          ("clips", ["{store}", "--rank", "{head}", "--out", "{outfile}", "--class", "nope"]),
          ("encode", ["{store}", "--video", "no-such-encoder"]), ("serve", ["{store}", "--model", "no-such-model"]),
          ("serve", ["{store}", "--workspace", "{binary}"]), ("serve", ["{store}", "--workspace", "{empty}/tags"]),
          ("pretrain", ["{store}", "--out", "{out}", "--preset", "huge"]), ("shots", ["{binary}", "--detector", "nope"])]
    return c


CASES = _cases()


def test_every_subcommand_is_guarded():
    assert {cmd for cmd, _ in CASES} == set(COMMANDS) - {"encoders"}  # `encoders` takes no input


@pytest.mark.parametrize("command, argv", CASES, ids=[f"{c}-{i}" for i, (c, _) in enumerate(CASES)])
def test_hostile_input_is_one_error_line(files, capsys, monkeypatch, tmp_path, command, argv):
    import uvicorn

    import mediafm.synth.render

    def accepted(*args, **kwargs):  # an input taken as valid would start a server or a render: stop here
        raise RuntimeError("the input was accepted")

    monkeypatch.setattr(uvicorn, "run", accepted)
    monkeypatch.setattr(mediafm.synth.render, "synthesize_catalog", accepted)
    monkeypatch.chdir(tmp_path)
    argv = [a.format(**files) for a in argv]
    capsys.readouterr()
    try:
        rc = main([command, *argv])
    except SystemExit as exc:  # argparse's usage errors
        rc = exc.code
    err = capsys.readouterr().err
    lines = [line for line in err.replace("\r", "\n").splitlines() if line.strip()]
    errors = [line for line in lines if ": error: " in line]
    assert rc in (1, 2), (rc, err[-2000:])
    assert "Traceback" not in err and "internal error" not in err, err[-2000:]
    assert len(errors) == 1 and errors[0] == lines[-1], err[-2000:]
    assert errors[0].startswith("mediafm"), errors[0]
