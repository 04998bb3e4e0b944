"""Any causal LM: a tiny randomly initialised model of each family (GPT-2, Llama, Qwen2, Mistral, Phi, Gemma), saved
like a hub model with a tokenizer trained here and given a chat template, goes the whole way: full fine-tuning
that learns to answer and stop, LoRA with targets found from module names, and a merge that changes nothing."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pandas as pd
import pytest
import torch

from core import sft
from core.config import RunConfig

pytestmark = pytest.mark.slow

CHATML = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
FAMILIES = ("gpt2", "llama", "qwen2", "mistral", "phi", "gemma")


def family_config(name: str, vocab: int, ids: dict):
    import transformers

    small = {"vocab_size": vocab, "hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2,
             "num_attention_heads": 4, "max_position_embeddings": 128, **ids}  # fmt: skip
    if name == "gpt2":
        return transformers.GPT2Config(vocab_size=vocab, n_positions=128, n_embd=32, n_layer=2, n_head=2, **ids)
    if name == "phi":
        return transformers.PhiConfig(**small)
    cls = {"llama": "LlamaConfig", "qwen2": "Qwen2Config", "mistral": "MistralConfig", "gemma": "GemmaConfig"}[name]
    extra = {"num_key_value_heads": 2, "head_dim": 8}  # grouped-query attention, as these families use
    return getattr(transformers, cls)(**small, **extra)


@pytest.fixture(scope="module")
def corpus() -> list[str]:
    rng = random.Random(0)
    words = ["the", "a", "river", "stone", "cloud", "green", "tiger", "piano", "lemon", "bread", "chair", "what", "is",
             "number", "question", "ok"]  # fmt: skip
    return [" ".join(rng.choices(words, k=8)) for _ in range(300)]


def make_model(folder: Path, family: str, corpus: list[str]) -> Path:
    """Config + random weights + a byte-level BPE trained here; every family but GPT-2 gets a ChatML template
    (so its end of turn, <|im_end|>, is not EOS); GPT-2 gets none (so the default template is used)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import AutoModelForCausalLM, PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    specials = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
    trainer = trainers.BpeTrainer(vocab_size=300, special_tokens=specials, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())  # fmt: skip
    tok.train_from_iterator(corpus, trainer=trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<|endoftext|>", pad_token="<|endoftext|>",
                                   additional_special_tokens=specials[1:])  # fmt: skip
    if family != "gpt2":
        fast.chat_template = CHATML
    eos = fast.eos_token_id
    torch.manual_seed(0)
    cfg = family_config(family, len(fast), {"bos_token_id": eos, "eos_token_id": eos, "pad_token_id": eos})
    model = AutoModelForCausalLM.from_config(cfg)
    folder.mkdir(parents=True)
    model.save_pretrained(folder)
    fast.save_pretrained(folder)
    return folder


def qa_file(folder: Path) -> Path:
    """Questions whose answer is always 'ok': enough for a tiny model to learn to answer and stop in ~40 steps."""
    rows = [{"prompt": f"question number {i}", "response": "ok"} for i in range(120)]
    path = folder / "qa.csv"
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


def run_config(data: Path, source: Path, method: str, steps: int) -> RunConfig:
    return RunConfig.from_dict(
        {
            "data": {"train_path": str(data), "val_fraction": 0.1, "test_fraction": 0.1},
            "model": {"source": str(source), "task": "generation", "method": method, "lora_r": 4, "lora_alpha": 8},
            "train": {"max_steps": steps, "batch_size": 8, "learning_rate": 5e-3, "max_length": 48, "log_every": 10,
                      "seed": 0, "precision": "fp32", "num_threads": 1},
        }
    )  # fmt: skip


@pytest.mark.parametrize("family", FAMILIES)
def test_family_trains_answers_stops_and_merges(family, tmp_path, corpus):
    from core.generation import GenerationSettings, generate_with_stops
    from core.models import load_for_inference, merge_adapter
    from core.runs import RunStore
    from core.training import train

    source = make_model(tmp_path / "model", family, corpus)
    data = qa_file(tmp_path)
    store = RunStore(tmp_path / "runs")

    # full fine-tuning: the answer is learnt with its stop token, and only the answer comes back
    cfg = run_config(data, source, "full", 40)
    run = store.create(cfg)
    result = train(cfg, run)
    assert result.state == "finished", result.message
    bundle = load_for_inference(run.model_dir)
    assert bundle.sft.shape == "pairs"
    stops = sft.stop_token_ids(bundle.tokenizer)
    if family == "gpt2":
        assert bundle.tokenizer.chat_template == sft.DEFAULT_TEMPLATE  # given the default, and saved with the model
        assert stops == [bundle.tokenizer.eos_token_id]
    else:
        assert bundle.tokenizer.chat_template == CHATML  # the model's own template is used
        assert stops == [bundle.tokenizer.eos_token_id, bundle.tokenizer.convert_tokens_to_ids("<|im_end|>")]
    (answer,) = generate_with_stops(bundle, ["question number 500"], GenerationSettings(max_new_tokens=20))
    assert answer == ("ok", True)

    # LoRA: targets found from the module names; merging gives the adapted model's outputs exactly
    cfg = run_config(data, source, "lora", 3)
    run = store.create(cfg)
    assert train(cfg, run).state == "finished"
    targets = json.loads((run.model_dir / "adapter_config.json").read_text())["target_modules"]
    assert targets and all(t in {"c_attn", "q_proj", "v_proj"} for t in targets)
    adapted = load_for_inference(run.model_dir)
    merged = load_for_inference(merge_adapter(run.model_dir, tmp_path / "merged"))
    from transformers import AutoModelForCausalLM

    base = AutoModelForCausalLM.from_pretrained(source).eval()
    ids = adapted.tokenizer(sft.prompt_text(adapted.tokenizer, "question number 3"), return_tensors="pt",
                            add_special_tokens=False)["input_ids"]  # fmt: skip
    with torch.no_grad():
        a, m, b = (x.model(input_ids=ids).logits for x in (adapted, merged, type("B", (), {"model": base})))
    assert torch.allclose(a, m, atol=1e-5)
    assert not torch.allclose(a, b, atol=1e-4)  # the adapter did change the model
