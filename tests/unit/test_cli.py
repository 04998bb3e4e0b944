"""python -m core ...: the same engine from a shell. Mostly run in-process (core.cli.main) to skip the import cost."""

from __future__ import annotations

import contextlib
import dataclasses
import io
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from core.cli import SECTIONS, build_parser, main
from core.runs import RunStore
from core.training import StopSignal, train
from tests.conftest import toy_sentiment_rows

ROOT = Path(__file__).resolve().parents[2]


def cli(*argv) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main([str(a) for a in argv])
    return code, out.getvalue(), err.getvalue()


def last_json(text: str) -> dict:
    return json.loads(text.strip().splitlines()[-1])


def write_toy(path: Path, n: int = 240, seed: int = 0) -> Path:
    path.write_text("text,label\n" + "\n".join(f"{t},{y}" for t, y in toy_sentiment_rows(n, seed)) + "\n")
    return path


@pytest.fixture(scope="module")
def ws(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("cli-ws")


@pytest.fixture(scope="module")
def toy(ws) -> Path:
    return write_toy(ws / "toy.csv")


def tiny_train_args(ws, toy, tiny_bert_dir, *extra):
    return ["--workspace", ws, "train", "--data", toy, "--model", tiny_bert_dir, "--max-length", 32,
            "--precision", "fp32", "--batch-size", 8, "--lr", 2e-3, "--warmup-steps", 20, "--log-every", 1, *extra]  # fmt: skip


@pytest.fixture(scope="module")
def trained(ws, toy, tiny_bert_dir) -> dict:
    """A classification run trained through the command line; returns its JSON summary and printed output."""
    # A fixed thread count: with 0 the engine times 1 and 2 threads and keeps the faster, and under other load it
    # may keep the other one, which changes float rounding (the loss then repeats to ~1e-8, not to the bit).
    code, out, err = cli(
        *tiny_train_args(ws, toy, tiny_bert_dir, "--epochs", 5, "--name", "cli run", "--num-threads", 1)
    )
    assert code == 0, err
    return {"summary": last_json(out), "out": out}


def test_check_prints_findings_and_exits_zero(toy):
    code, out, err = cli("check", toy)
    assert code == 0, err
    assert "240 rows" in out and "format csv" in out
    assert "columns used: text=text text_pair=None label=label" in out
    assert "[OK" in out


def test_check_of_a_bad_file_exits_non_zero_with_the_message(tmp_path):
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    code, out, err = cli("check", empty)
    assert code == 2
    assert err.startswith("Error: ") and "empty.csv" in err and "Traceback" not in err
    one_class = tmp_path / "one.csv"
    one_class.write_text("text,label\n" + "\n".join(f"sentence {i},pos" for i in range(20)) + "\n")
    code, out, err = cli("check", one_class)
    assert code != 0 and "one.csv" in (out + err)


def test_train_prints_progress_and_ends_with_a_json_summary(trained, ws):
    summary, out = trained["summary"], trained["out"]
    assert summary["state"] == "finished" and summary["steps"] == 120
    assert summary["test"]["accuracy"] >= 0.8 and "validation" in summary
    assert summary["samples_per_s"] > 0
    lines = out.strip().splitlines()
    assert lines[0].startswith(f"run {summary['run']} -> ")
    assert sum(line.startswith("step ") for line in lines) == 120  # a progress line per logged step
    run = RunStore(ws / "runs").get(summary["run"])
    assert run.state == "finished" and run.config().name == "cli run"
    assert run.config().train.learning_rate == 2e-3 and run.config().train.max_length == 32


def test_main_in_process_restores_the_ctrl_c_handler(ws, toy, tiny_bert_dir):
    before = signal.getsignal(signal.SIGINT)
    code, out, _ = cli(*tiny_train_args(ws, toy, tiny_bert_dir, "--max-steps", 1, "--quiet"))
    assert code == 0 and len(out.strip().splitlines()) == 2  # the run line and the summary, nothing else
    assert signal.getsignal(signal.SIGINT) is before


def test_config_repeats_a_run_exactly(trained, ws):
    store = RunStore(ws / "runs")
    first = store.get(trained["summary"]["run"])
    code, out, err = cli("--workspace", ws, "train", "--config", first.config_path, "--quiet")
    assert code == 0, err
    again = store.get(last_json(out)["run"])
    assert again.id != first.id
    assert again.config_dict() == first.config_dict()
    losses = [[m["loss"] for m in r.metrics() if "loss" in m] for r in (first, again)]
    assert losses[0] == losses[1]
    assert last_json(out)["test"] == trained["summary"]["test"]
    # An option given beside --config overrides that one setting only.
    code, out, _ = cli("--workspace", ws, "train", "--config", first.config_path, "--epochs", 1, "--quiet")
    changed = store.get(last_json(out)["run"])
    assert code == 0 and last_json(out)["steps"] == 24
    assert {k for k, v in changed.config().train.__dict__.items() if v != first.config().train.__dict__[k]} == {
        "epochs"
    }


def test_resume_continues_a_stopped_run(ws, toy, tiny_bert_dir):
    from core.config import RunConfig

    store = RunStore(ws / "runs")
    cfg = RunConfig.from_dict({"data": {"train_path": str(toy)}, "model": {"source": str(tiny_bert_dir)},
                               "train": {"max_steps": 8, "max_length": 32, "precision": "fp32", "log_every": 1}})  # fmt: skip
    run = store.create(cfg)
    stop = StopSignal()
    result = train(cfg, run, stop=stop, hook=lambda e, i: stop.set() if e == "step" and i["step"] == 2 else None)
    assert result.state == "stopped" and result.steps == 3
    code, out, err = cli("--workspace", ws, "train", "--resume", run.id, "--quiet")
    assert code == 0, err
    summary = last_json(out)
    assert summary["run"] == run.id and summary["state"] == "finished" and summary["steps"] == 8
    # A finished run does not resume (repeat it with --config instead).
    code, _, err = cli("--workspace", ws, "train", "--resume", run.id)
    assert code == 2 and "only stopped, failed or interrupted runs resume" in err


def test_bad_option_value_names_the_setting(ws, toy):
    code, out, err = cli("--workspace", ws, "train", "--data", toy, "--lr", -1)
    assert code == 2 and "'learning_rate'" in err and "Traceback" not in err


def test_eval_prints_json_and_writes_predictions(trained, ws, tmp_path):
    run_id = trained["summary"]["run"]
    code, out, err = cli("--workspace", ws, "eval", run_id)
    assert code == 0, err
    report = json.loads(out)
    assert report["run"] == run_id and report["split"] == "test" and report["rows"] == 24
    assert report["accuracy"] == pytest.approx(trained["summary"]["test"]["accuracy"])
    assert "per_class" not in report and len(report["confusion_matrix"]) == 2

    new = write_toy(tmp_path / "new.csv", n=30, seed=4)
    preds = tmp_path / "preds.csv"
    code, out, err = cli("--workspace", ws, "eval", run_id, "--file", new, "--output", preds, "--details")
    assert code == 0, err
    report = json.loads(out)
    assert report["rows"] == 30 and report["accuracy"] >= 0.8 and set(report["per_class"]) == {"negative", "positive"}
    assert len(preds.read_text().strip().splitlines()) == 31  # header + one row per example

    code, _, err = cli("--workspace", ws, "eval", "no-such-run")
    assert code == 2 and "no run named 'no-such-run'" in err


def test_predict_prints_a_label_and_probabilities_per_text(trained, ws, tmp_path):
    run_id = trained["summary"]["run"]
    code, out, err = cli("--workspace", ws, "predict", run_id, "--text", "a wonderful charming film", "dull and bad")
    assert code == 0, err
    rows = [json.loads(line) for line in out.strip().splitlines()]
    assert [r["label"] for r in rows] == ["positive", "negative"]
    for r in rows:
        assert set(r["probabilities"]) == {"negative", "positive"}
        assert sum(r["probabilities"].values()) == pytest.approx(1, abs=1e-3)
    texts = tmp_path / "texts.txt"
    texts.write_text("superb acting\n\nterrible plot\n")
    code, out, _ = cli("--workspace", ws, "predict", run_id, "--file", texts)
    assert code == 0 and [json.loads(line)["label"] for line in out.strip().splitlines()] == ["positive", "negative"]
    code, _, err = cli("--workspace", ws, "predict", run_id)
    assert code == 2 and "--text" in err


def test_generate_continues_a_prompt(ws, toy_corpus):
    code, out, err = cli("--workspace", ws, "train", "--task", "generation", "--data", toy_corpus, "--max-steps", 3,
                         "--max-length", 32, "--precision", "fp32", "--quiet")  # fmt: skip
    assert code == 0, err
    summary = last_json(out)
    assert summary["state"] == "finished" and summary["validation"]["perplexity"] > 1
    run_id = summary["run"]

    def gen(*extra):
        code, out, err = cli("--workspace", ws, "generate", run_id, "--text", "the movie was", "--max-new-tokens", 6,
                             *extra)  # fmt: skip
        assert code == 0, err
        return out

    greedy = gen()
    assert greedy.startswith("the movie was") and len(greedy.strip()) > len("the movie was")
    assert gen() == greedy
    assert gen("--strategy", "sample", "--seed", "5") == gen("--strategy", "sample", "--seed", "5")
    assert gen("--strategy", "beam", "--num-beams", "2").startswith("the movie was")


def test_runs_lists_runs_as_text_and_json(trained, ws):
    code, out, _ = cli("--workspace", ws, "runs", "--json")
    assert code == 0
    rows = json.loads(out)
    ours = next(r for r in rows if r["run"] == trained["summary"]["run"])
    assert ours["state"] == "finished" and ours["task"] == "classification" and ours["name"] == "cli run"
    assert ours["test_accuracy"] == pytest.approx(trained["summary"]["test"]["accuracy"])
    code, out, _ = cli("--workspace", ws, "runs")
    assert code == 0 and trained["summary"]["run"] in out and "finished" in out
    code, out, _ = cli("--workspace", ws / "empty-ws", "runs")
    assert out.strip() == "No runs yet."


def _subparsers():
    parser = build_parser()
    action = next(a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction")
    return parser, action.choices


@pytest.mark.parametrize("command", sorted(_subparsers()[1]))
def test_help_lists_and_explains_every_option(command):
    _, subs = _subparsers()
    out = io.StringIO()
    with contextlib.redirect_stdout(out), pytest.raises(SystemExit) as done:
        main([command, "--help"])
    assert done.value.code == 0
    text = out.getvalue()
    for action in subs[command]._actions:
        for flag in action.option_strings:
            assert flag in text
        if action.dest != "help":
            assert action.help and action.help.strip(), f"{command} {action.option_strings or action.dest}"


def test_train_has_an_option_for_every_config_field():
    _, subs = _subparsers()
    flags = {f for a in subs["train"]._actions for f in a.option_strings}
    for cls in SECTIONS.values():
        for f in dataclasses.fields(cls):
            assert "--" + f.name.replace("_", "-") in flags


def test_train_as_a_subprocess_on_the_default_model(tmp_path):
    """What a user types: the built-in MiniLM, a couple of steps, a JSON summary on the last line."""
    data = write_toy(tmp_path / "toy.csv")
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "WORKBENCH_HOME": str(tmp_path / "ws")}
    proc = subprocess.run(
        [sys.executable, "-m", "core", "train", "--data", str(data), "--max-steps", "2", "--max-length", "32"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    summary = last_json(proc.stdout)
    assert summary["state"] == "finished" and summary["steps"] == 2
    assert 0 <= summary["test"]["accuracy"] <= 1
    run = RunStore(tmp_path / "ws" / "runs").get(summary["run"])
    assert run.config().model.source == "default"
    assert run.config().train.warmup_ratio == 0.06  # the recommended fine-tuning settings were applied
    assert next(m for m in run.metrics() if m.get("event") == "start")["model"].startswith("MiniLM-L6")
