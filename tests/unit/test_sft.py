"""Supervised fine-tuning: data shapes, the template, response-only labels, truncation, packing, the masked loss,
generation that stops at EOS, evaluation scores (Chinese included) and the CLI's JSON lines."""

from __future__ import annotations

import json
import random
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from core import sft
from core.batching import collate
from core.config import DataConfig, RunConfig
from core.data import check_data, guess_columns, prepare_data, read_table
from core.errors import ConfigError, DataError
from core.models import build_model

WORDS = ["apple", "river", "stone", "cloud", "green", "tiger", "piano", "lemon", "bread", "chair"]


def join_rows(n: int, seed: int = 0) -> list[dict[str, str]]:
    """A task with one right answer per prompt: 'join a b' -> 'a-b'."""
    rng = random.Random(seed)
    rows = []
    for _ in range(n):
        a, b = rng.sample(WORDS, 2)
        rows.append({"prompt": f"join {a} {b}", "response": f"{a}-{b}"})
    return rows


@pytest.fixture(scope="module")
def tok():
    texts = [r["prompt"] for r in join_rows(200)] + [r["response"] for r in join_rows(200)]
    return build_model("default", "generation", train_texts=texts, max_length=64, seed=0).tokenizer


def conv(prompt: str, response: str, system: str | None = None) -> list[dict[str, str]]:
    msgs = [{"role": "system", "content": system}] if system else []
    return msgs + [{"role": "user", "content": prompt}, {"role": "assistant", "content": response}]


def learned(tok, example) -> str:
    return tok.decode([t for t, y in zip(example.input_ids, example.labels) if y != sft.IGNORE])


# ----------------------------------------------------------------------------------------------- template and mask
def test_default_tokenizer_has_the_markers_and_the_template(tok):
    for mark in sft.MARKERS:
        assert len(tok(mark, add_special_tokens=False)["input_ids"]) == 1  # one token each
    assert tok.chat_template == sft.DEFAULT_TEMPLATE
    text = sft.render(tok, conv("join a b", "a-b", system="be brief"))
    assert text == "<|system|>\nbe brief\n<|user|>\njoin a b\n<|assistant|>\na-b<|endoftext|>"
    assert sft.prompt_text(tok, "join a b") == "<|user|>\njoin a b\n<|assistant|>\n"


def test_the_mask_ignores_the_prompt_and_learns_the_answer_and_eos(tok):
    (ex,) = sft.encode_conversations(tok, [conv("join tiger piano", "tiger-piano", system="be brief")], 64)
    assert learned(tok, ex) == "tiger-piano<|endoftext|>"
    assert ex.labels[-1] == tok.eos_token_id == ex.input_ids[-1]
    prompt_ids = tok(sft.prompt_text(tok, "join tiger piano", system="be brief"), add_special_tokens=False)["input_ids"]
    assert ex.input_ids[: len(prompt_ids)] == prompt_ids  # exactly what generation will see
    assert all(y == sft.IGNORE for y in ex.labels[: len(prompt_ids)])
    # with train_on_prompt everything but the first token is learned
    (whole,) = sft.encode_conversations(tok, [conv("join tiger piano", "tiger-piano")], 64, train_on_prompt=True)
    assert whole.labels[0] == sft.IGNORE and whole.labels[1:] == whole.input_ids[1:]


def test_template_round_trip(tok):
    c = conv("join lemon bread", "lemon-bread", system="be brief")
    (ex,) = sft.encode_conversations(tok, [c], 64)
    assert tok.decode(ex.input_ids) == sft.render(tok, c)


def test_multi_turn_learns_every_assistant_turn_and_no_user_turn(tok):
    c = [
        {"role": "user", "content": "join apple river"},
        {"role": "assistant", "content": "apple-river"},
        {"role": "user", "content": "join stone cloud"},
        {"role": "assistant", "content": "stone-cloud"},
    ]
    (ex,) = sft.encode_conversations(tok, [c], 64)
    assert learned(tok, ex) == "apple-river<|endoftext|>stone-cloud<|endoftext|>"
    assert tok.decode(ex.input_ids) == sft.render(tok, c)
    # a conversation that ends with a user turn is cut after its last answer; one without an answer is unusable
    (cut,) = sft.encode_conversations(tok, [c + [{"role": "user", "content": "thanks"}]], 64)
    assert cut.input_ids == ex.input_ids
    assert sft.encode_conversations(tok, [c[:1]], 64) == [None]


def test_truncation_cuts_the_prompt_and_keeps_the_answer_and_the_marker(tok):
    long_prompt = "join " + " ".join(WORDS * 8)
    (ex,) = sft.encode_conversations(tok, [conv(long_prompt, "tiger-piano")], 24)
    assert len(ex.input_ids) == 24 and ex.prompt_cut and not ex.response_cut
    assert learned(tok, ex) == "tiger-piano<|endoftext|>"
    text = tok.decode(ex.input_ids)
    assert text.startswith("<|user|>\njoin apple river")  # the prompt's start stays...
    assert text.endswith("\n<|assistant|>\ntiger-piano<|endoftext|>")  # ...and the marker before the answer
    # an answer longer than max_length is cut at its end (it loses its EOS) and reported
    (long_answer,) = sft.encode_conversations(tok, [conv("join a b", " ".join(WORDS * 4))], 16)
    assert len(long_answer.input_ids) == 16 and long_answer.response_cut
    assert tok.eos_token_id not in long_answer.input_ids


def test_multi_turn_truncation_drops_the_oldest_turns_first(tok):
    c = []
    for a, b in [("apple", "river"), ("stone", "cloud"), ("green", "tiger"), ("piano", "lemon")]:
        c += conv(f"join {a} {b}", f"{a}-{b}")
    (full,) = sft.encode_conversations(tok, [c], 128)
    (ex,) = sft.encode_conversations(tok, [c], len(full.input_ids) - 10)
    assert ex.input_ids == full.input_ids[10:]
    assert tok.decode(ex.input_ids).endswith("join piano lemon\n<|assistant|>\npiano-lemon<|endoftext|>")


# ----------------------------------------------------------------------------------------------- batches and loss
def tiny_gpt2(tok):
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(0)
    cfg = GPT2Config(vocab_size=len(tok), n_positions=128, n_embd=32, n_layer=2, n_head=2, resid_pdrop=0.0,
                     embd_pdrop=0.0, attn_pdrop=0.0)  # fmt: skip
    return GPT2LMHeadModel(cfg).eval()


def test_padded_batches_carry_the_labels_with_padding_ignored(tok):
    frame = pd.DataFrame(join_rows(6)).rename(columns={"prompt": "text", "response": "text_pair"})
    data = sft.encode_frame(tok, frame, 64)
    batch, labels = collate(data, np.arange(len(data)), tok.pad_token_id, "cpu")
    assert labels.shape == batch["input_ids"].shape
    assert (labels[batch["attention_mask"] == 0] == sft.IGNORE).all()
    assert [tok.decode([t for t in row if t != sft.IGNORE]) for row in labels.tolist()] == [
        r + "<|endoftext|>" for r in frame["text_pair"]
    ]


def test_packed_rows_do_not_attend_across_examples(tok):
    model = tiny_gpt2(tok)
    frame = pd.DataFrame(join_rows(12, seed=3)).rename(columns={"prompt": "text", "response": "text_pair"})
    alone = sft.encode_frame(tok, frame, 64)
    packed = sft.encode_frame(tok, frame, 64, packing=True)
    assert len(packed) < len(alone) and sum(packed.lengths) == sum(alone.lengths)
    batch, labels = collate(packed, np.array([0]), tok.pad_token_id, "cpu")
    with torch.no_grad():
        logits = model(**batch).logits[0]
        start = 0
        for length in np.diff(np.flatnonzero(np.r_[np.diff(batch["position_ids"][0].numpy()) != 1, True]), prepend=-1):
            ids = batch["input_ids"][0, start : start + length]
            own = model(input_ids=ids[None]).logits[0]
            assert torch.allclose(logits[start : start + length], own, atol=1e-5)  # the same as the example alone
            start += length
    # and the mean loss over response tokens is the same packed or padded
    from core.fastpath import language_model_loss

    def mean_loss(data):
        total = n = 0
        with torch.no_grad():
            for i in range(len(data)):
                b, y = collate(data, np.array([i]), tok.pad_token_id, "cpu")
                count = int((y[:, 1:] != sft.IGNORE).sum())
                total += float(language_model_loss(model, b, y)) * count
                n += count
        return total / n

    assert mean_loss(packed) == pytest.approx(mean_loss(alone), rel=1e-5)


def test_blocked_loss_honours_the_mask_like_the_models_own(tok):
    from core.fastpath import causal_lm_loss

    model = tiny_gpt2(tok).train()
    frame = pd.DataFrame(join_rows(8, seed=5)).rename(columns={"prompt": "text", "response": "text_pair"})
    data = sft.encode_frame(tok, frame, 64)
    batch, labels = collate(data, np.arange(len(data)), tok.pad_token_id, "cpu")
    ours = causal_lm_loss(model(**batch).logits, labels)
    ours.backward()
    ours_grad = model.transformer.wte.weight.grad.clone()
    model.zero_grad()
    stock = model(**batch, labels=labels).loss
    stock.backward()
    assert torch.allclose(ours, stock, rtol=1e-5)
    assert torch.allclose(ours_grad, model.transformer.wte.weight.grad, atol=1e-6)
    everything = causal_lm_loss(model(**batch).logits, batch["input_ids"])
    assert not torch.allclose(ours, everything)  # the mask changes the loss: prompts are not counted


# ----------------------------------------------------------------------------------------------- data shapes
def test_alpaca_columns_are_mapped_and_an_empty_input_keeps_the_instruction(tmp_path):
    path = tmp_path / "alpaca.json"
    rows = [
        {"instruction": "Give the opposite.", "input": "hot", "output": "cold"},
        {"instruction": "Name a colour.", "input": "", "output": "green"},
        {"instruction": "Say nothing.", "input": "x", "output": ""},
    ] * 10
    path.write_text(json.dumps(rows), encoding="utf-8")
    frame = read_table(path).frame
    cols = guess_columns(frame, "generation")
    assert (cols.text, cols.text_pair, cols.instruction) == ("input", "output", "instruction")
    prepared = prepare_data(DataConfig(train_path=str(path), val_fraction=0.0, test_fraction=0.0), "generation")
    assert set(prepared.train["text"]) == {"Give the opposite.\n\nhot", "Name a colour."}
    assert "" not in set(prepared.train["text_pair"])  # the empty response was left out...
    assert any("empty response" in n for n in prepared.notes)  # ...and said so


def test_chat_jsonl_and_sharegpt_are_read_as_conversations(tmp_path):
    chat = tmp_path / "chat.jsonl"
    lines = [
        {"messages": [{"role": "system", "content": "Be kind."}, {"role": "user", "content": "hi"},
                      {"role": "assistant", "content": "hello"}, {"role": "user", "content": "bye"},
                      {"role": "assistant", "content": "goodbye"}]},
        {"conversations": [{"from": "human", "value": "hi"}, {"from": "gpt", "value": "hey"}]},
    ]  # fmt: skip
    chat.write_text("\n".join(json.dumps(x) for x in lines[:1] * 20), encoding="utf-8")
    prepared = prepare_data(DataConfig(train_path=str(chat), val_fraction=0.0, test_fraction=0.0), "generation")
    assert sft.data_shape(prepared.train) == "chat"
    assert sft.conversations(prepared.train)[0][-1] == {"role": "assistant", "content": "goodbye"}
    share = tmp_path / "share.jsonl"
    share.write_text("\n".join(json.dumps(lines[1]) for _ in range(20)), encoding="utf-8")
    prepared = prepare_data(DataConfig(train_path=str(share), val_fraction=0.0, test_fraction=0.0), "generation")
    assert sft.conversations(prepared.train)[0] == [
        {"role": "user", "content": "hi"},
        {"role": "assistant", "content": "hey"},
    ]
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"messages": [{"role": "wizard", "content": "x"}]}), encoding="utf-8")
    with pytest.raises(DataError, match="role 'wizard'"):
        prepare_data(DataConfig(train_path=str(bad), val_fraction=0.0, test_fraction=0.0), "generation")


def test_the_data_check_reports_lengths_cut_answers_empty_answers_and_conflicts(tmp_path, tok):
    rows = join_rows(60)
    first = rows[0]["prompt"]
    rows += [
        {"prompt": first, "response": "something else"},  # conflicts with the first row
        {"prompt": "say a lot", "response": " ".join(WORDS * 10)},
        {"prompt": "say nothing", "response": ""},
    ]
    frame = pd.DataFrame(rows)
    cols = guess_columns(frame, "generation")
    report = check_data(frame, cols, "generation", max_length=32, tokenizer=tok)
    by_title = {f.title: f for f in report.findings}
    assert by_title["Empty responses"].level == "warning" and "1 row" in by_title["Empty responses"].detail
    assert by_title["Responses cut"].level == "warning" and by_title["Responses cut"].detail.startswith("1 ")
    assert "Prompts: typically" in by_title["Prompt and response length"].detail
    assert by_title["Conflicting answers"].level == "warning" and first in by_title["Conflicting answers"].detail
    # without a tokenizer the lengths are estimated, and the same answer is still found too long
    estimated = {f.title: f for f in check_data(frame, cols, "generation", max_length=32).findings}
    assert estimated["Responses cut"].level == "warning"


# ----------------------------------------------------------------------------------------------- settings
def test_qlora_is_refused_without_cuda_and_bitsandbytes_with_the_reason():
    from core.models import check_qlora, qlora_unavailable_reason

    reason = qlora_unavailable_reason()
    if reason is None:
        pytest.skip("CUDA and bitsandbytes are present here")
    assert "CUDA" in reason or "bitsandbytes" in reason
    with pytest.raises(Exception, match="QLoRA"):
        check_qlora("some/model")
    with pytest.raises(ConfigError, match="qlora is offered for generation"):
        RunConfig.from_dict({"model": {"method": "qlora", "task": "classification"}})


def test_new_settings_round_trip_and_default_off():
    cfg = RunConfig.from_dict(
        {
            "data": {"instruction_column": "instruction", "system_column": "system"},
            "model": {"task": "generation", "gradient_checkpointing": True},
            "train": {"train_on_prompt": True, "packing": True},
        }
    )
    again = RunConfig.from_dict(json.loads(cfg.to_json()))
    assert again.train.train_on_prompt and again.train.packing and again.model.gradient_checkpointing
    assert not RunConfig().train.train_on_prompt
    with pytest.raises(ConfigError, match="train_on_prompt"):
        RunConfig.from_dict({"train": {"train_on_prompt": "yes"}})


# ----------------------------------------------------------------------------------------------- metrics
def test_chinese_scores_count_characters():
    from core.evaluation import example_scores, text_metrics

    # 今天天气很好 vs 今天天气不错: 1-4 gram matches 4/6, 3/5, 2/4, 1/3, no brevity penalty:
    # BLEU = 100 * (4/6 * 3/5 * 2/4 * 1/3) ** (1/4) = 50.813; the LCS is 今天天气 (4 of 6 each way): ROUGE-L F1 2/3.
    scores = text_metrics(["今天天气很好"], ["今天天气不错"])
    assert scores["bleu"] == pytest.approx(100 * (4 / 6 * 3 / 5 * 2 / 4 * 1 / 3) ** 0.25, abs=1e-3)
    assert scores["rouge_l"] == pytest.approx(2 / 3)
    assert scores["exact_match"] == 0.0
    # mixed Chinese and English: words stay whole, characters count one each (LCS 我 爱 nlp = 3 of 4 and 3 of 5)
    assert text_metrics(["我爱 NLP 啊"], ["我 很 爱 nlp 哦"])["rouge_l"] == pytest.approx(
        2 * (3 / 4 * 3 / 5) / (3 / 4 + 3 / 5)
    )
    rows = example_scores(["今天天气不错", "明天"], ["今天天气不错", "今天"])
    assert rows["exact"] == [True, False] and rows["rouge_l"][1] == pytest.approx(0.5)
    assert rows["bleu"][0] == pytest.approx(100.0)


def test_exact_match_ignores_surrounding_and_repeated_whitespace():
    from core.evaluation import text_metrics

    assert text_metrics([" tiger-piano \n", "a  b"], ["tiger-piano", "a b c"])["exact_match"] == 0.5


# ----------------------------------------------------------------------------------------------- the whole path
@pytest.fixture(scope="module")
def trained_run(tmp_path_factory):
    """The default model trained briefly on 'join a b' -> 'a-b' (about 80 steps of 16 rows)."""
    from core.runs import RunStore
    from core.training import train

    folder = tmp_path_factory.mktemp("sft-run")
    path = folder / "join.csv"
    pd.DataFrame(join_rows(400)).to_csv(path, index=False)
    cfg = RunConfig.from_dict(
        {
            "data": {"train_path": str(path), "val_fraction": 0.1, "test_fraction": 0.1},
            "model": {"source": "default", "task": "generation"},
            "train": {"epochs": 4, "batch_size": 16, "learning_rate": 2e-3, "max_length": 32, "log_every": 5,
                      "seed": 0, "precision": "fp32", "num_threads": 1, "warmup_ratio": 0.05},
        }
    )  # fmt: skip
    store = RunStore(folder / "runs")
    run = store.create(cfg)
    result = train(cfg, run)
    assert result.state == "finished", result.message
    return store, run


@pytest.mark.slow
def test_a_trained_run_answers_only_the_answer_and_stops_at_eos(trained_run):
    from core.generation import GenerationSettings, generate_with_stops, stream
    from core.models import load_for_inference

    _, run = trained_run
    bundle = load_for_inference(run.model_dir)
    assert bundle.sft.shape == "pairs" and not bundle.sft.train_on_prompt
    prompts = [f"join {a} {b}" for a, b in [("tiger", "piano"), ("lemon", "stone"), ("cloud", "bread")]]
    out = generate_with_stops(bundle, prompts, GenerationSettings(max_new_tokens=30))
    for prompt, (text, stopped) in zip(prompts, out):
        assert stopped and re.fullmatch(r"[a-z]+-[a-z]+", text), (prompt, text)  # only an answer, ended by EOS
    assert sum(text == "-".join(p.split()[1:]) for p, (text, _) in zip(prompts, out)) >= 2
    assert "".join(stream(bundle, prompts[0], GenerationSettings(max_new_tokens=30))) == out[0][0]


@pytest.mark.slow
def test_evaluation_generates_for_the_test_prompts_and_scores_them(trained_run):
    from core.evaluation import evaluate_run

    _, run = trained_run
    seen = []
    report = evaluate_run(run, max_generations=20, progress=lambda done, total: seen.append((done, total)))
    assert seen[-1] == (20, 20) and [d for d, _ in seen] == sorted(d for d, _ in seen)
    m = report.metrics
    assert m["generated"] == 20 and m["exact_match"] >= 0.8 and m["stopped"] == 1.0
    assert m["perplexity"] < 2.0  # on the response tokens only: the answers are certain once learnt
    assert list(report.predictions.columns[:3]) == ["prompt", "reference", "generation"]
    row = report.predictions.iloc[0]
    assert row["prompt"].startswith("join ") and row["exact"] == (row["generation"] == row["reference"])


@pytest.mark.slow
def test_cli_generate_prints_one_json_line_per_prompt(trained_run, tmp_path, capsys):
    from core.cli import main

    store, run = trained_run
    prompts = tmp_path / "prompts.txt"
    prompts.write_text("join tiger piano\njoin bread chair\n", encoding="utf-8")
    code = main(["--workspace", str(Path(store.root).parent), "generate", run.id, "--file", str(prompts)])
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert code == 0
    assert [x["prompt"] for x in lines] == ["join tiger piano", "join bread chair"]
    assert all(set(x) == {"prompt", "response"} and re.fullmatch(r"[a-z]+-[a-z]+", x["response"]) for x in lines)


# ----------------------------------------------------------------------------------------------- samples
SAMPLES = Path(__file__).resolve().parents[2] / "data" / "samples"


def test_generation_samples_are_regenerated_identically_and_read_as_their_shapes(tmp_path):
    import subprocess
    import sys

    subprocess.run([sys.executable, str(SAMPLES / "make_samples.py"), str(tmp_path)], check=True, timeout=300)
    for name in ("headlines.csv", "chat.jsonl"):
        assert (tmp_path / name).read_bytes() == (SAMPLES / name).read_bytes(), name
    headlines = prepare_data(DataConfig(train_path=str(SAMPLES / "headlines.csv")), "generation")
    assert sft.data_shape(headlines.train) == "pairs" and len(headlines.train) == 240
    assert not headlines.train["text"].duplicated().any()
    chat = prepare_data(DataConfig(train_path=str(SAMPLES / "chat.jsonl")), "generation")
    assert sft.data_shape(chat.train) == "chat"
    roles = [[m["role"] for m in c] for c in sft.conversations(chat.train)]
    assert all(r == ["system", "user", "assistant", "user", "assistant"] for r in roles)


def test_gradient_checkpointing_gives_the_same_gradients(tok):
    from core.config import ModelConfig
    from core.fastpath import language_model_loss
    from core.models import ModelBundle, prepare_for_method

    frame = pd.DataFrame(join_rows(8, seed=7)).rename(columns={"prompt": "text", "response": "text_pair"})
    data = sft.encode_frame(tok, frame, 64)
    batch, labels = collate(data, np.arange(len(data)), tok.pad_token_id, "cpu")
    grads = []
    for on in (False, True):
        model = tiny_gpt2(tok).train()
        bundle = ModelBundle(model, tok, "generation", None, "x", "x", 128)
        prepare_for_method(bundle, ModelConfig(task="generation", gradient_checkpointing=on))
        assert bundle.model.is_activation_checkpointing == on
        language_model_loss(bundle.model, batch, labels).backward()
        grads.append(bundle.model.transformer.h[0].mlp.c_fc.weight.grad.clone())
    assert torch.allclose(grads[0], grads[1], atol=1e-6)


def test_the_estimate_knows_a_causal_lms_memory_with_checkpointing_and_sft_data(tmp_path, workspace):
    import dataclasses

    from core.estimate import estimate_run

    path = tmp_path / "join.csv"
    pd.DataFrame(join_rows(64)).to_csv(path, index=False)
    cfg = RunConfig.from_dict(
        {
            "data": {"train_path": str(path), "val_fraction": 0.0, "test_fraction": 0.0},
            "model": {"source": "default", "task": "generation"},
            "train": {"batch_size": 8, "max_length": 64, "precision": "fp32", "num_threads": 1},
        }
    )
    plain = estimate_run(cfg, timed_steps=1)
    assert plain.train_examples == 64 and plain.steps_per_epoch == 8  # examples, not packed blocks of text
    assert plain.memory_gb > plain.total_params * 16 / 2**30  # weights, gradients and two AdamW moments
    checkpointed = estimate_run(
        dataclasses.replace(cfg, model=dataclasses.replace(cfg.model, gradient_checkpointing=True)), timed_steps=1
    )
    assert checkpointed.memory_gb < plain.memory_gb
