"""Model sources, the offline defaults, freezing / LoRA parameter counts, saving and loading back."""

from __future__ import annotations

import json
import shutil

import pytest
import torch

from core import models
from core.config import ModelConfig
from core.errors import ModelError

LABELS = ["negative", "neutral", "positive"]


@pytest.fixture
def tiny_classifier(tiny_bert_dir):
    return models.build_model(str(tiny_bert_dir), "classification", label_names=LABELS, seed=0)


def test_minilm_default_loads_offline_with_a_head_sized_to_the_labels(tmp_path):
    bundle = models.build_model("default", "classification", label_names=LABELS)
    cfg = bundle.model.config
    assert bundle.model.classifier.out_features == 3
    assert bundle.model.classifier.in_features == 384  # MiniLM-L6's hidden size: the pretrained encoder
    assert cfg.num_hidden_layers == 6
    assert cfg.id2label == {0: "negative", 1: "neutral", 2: "positive"}
    assert cfg.label2id == {"negative": 0, "neutral": 1, "positive": 2}
    assert bundle.description.startswith("MiniLM-L6")
    trainable, total = models.count_parameters(bundle.model)
    assert trainable == total and 22_000_000 < total < 23_000_000

    models.save_model(bundle, tmp_path / "m")
    saved = json.loads((tmp_path / "m" / "config.json").read_text())
    assert saved["id2label"] == {"0": "negative", "1": "neutral", "2": "positive"}
    assert saved["label2id"] == {"negative": 0, "neutral": 1, "positive": 2}
    assert models.read_meta(tmp_path / "m")["label_names"] == LABELS
    assert (tmp_path / "m" / "model.safetensors").exists()


def test_generation_default_builds_with_a_tokenizer_trained_on_the_data():
    texts = ["the zorblax quivered under the moon"] * 40 + ["a quiet night"] * 40
    bundle = models.build_model("default", "generation", train_texts=texts, max_length=64, seed=0)
    assert type(bundle.model).__name__ == "GPT2LMHeadModel"
    assert bundle.model.config.n_layer == 4 and bundle.model.config.n_embd == 256
    # Trained on this text, the BPE learnt the made-up word as one token; its vocabulary is the data's, small.
    assert bundle.tokenizer.tokenize(" zorblax") == ["Ġzorblax"]
    assert len(bundle.tokenizer) == bundle.model.config.vocab_size < 4096
    assert bundle.tokenizer.pad_token == bundle.tokenizer.eos_token == "<|endoftext|>"
    assert "GPT-2" in bundle.description and "from scratch" in bundle.description
    assert bundle.max_positions >= 64


def test_offline_defaults_are_described_per_task():
    assert models.describe_source("default", "generation") == models.DEFAULT_GENERATOR
    assert models.describe_source("default", "regression") == models.DEFAULT_CLASSIFIER
    assert models.describe_source("my/model", "classification") == "my/model"


@pytest.mark.parametrize("source", ["bert-base-uncased", "someorg/not-a-real-model"])
def test_hub_id_offline_names_the_problem_and_the_offline_defaults(source):
    with pytest.raises(ModelError) as err:
        models.build_model(source, "classification", label_names=["a", "b"])
    msg = str(err.value)
    assert f"'{source}'" in msg and "cannot be reached" in msg
    assert "MiniLM-L6" in msg and "Tiny GPT-2" in msg


def test_local_folder_without_config_is_a_clear_error(tmp_path):
    (tmp_path / "weights.bin").write_bytes(b"\0" * 16)
    with pytest.raises(ModelError, match="no config.json"):
        models.build_model(str(tmp_path), "classification", label_names=["a", "b"])


def test_local_folder_without_tokenizer_is_a_clear_error(tmp_path, tiny_bert_dir):
    folder = tmp_path / "no-tok"
    folder.mkdir()
    for name in ("config.json", "model.safetensors"):
        shutil.copy(tiny_bert_dir / name, folder / name)
    with pytest.raises(ModelError, match="no tokenizer files"):
        models.build_model(str(folder), "classification", label_names=["a", "b"])


def test_missing_folder_and_file_sources(tmp_path):
    with pytest.raises(ModelError, match="does not exist"):
        models.resolve_source(str(tmp_path / "nowhere" / "model"))
    f = tmp_path / "model.bin"
    f.write_bytes(b"x")
    with pytest.raises(ModelError, match="is a file, not a model folder"):
        models.resolve_source(str(f))


def test_run_id_resolves_to_the_runs_model(tmp_path):
    (tmp_path / "run-1" / "model").mkdir(parents=True)
    (tmp_path / "run-2").mkdir()
    path, local = models.resolve_source("run-1", runs_root=tmp_path)
    assert local and path == str((tmp_path / "run-1" / "model").resolve())
    with pytest.raises(ModelError, match="no saved model yet"):
        models.resolve_source("run-2", runs_root=tmp_path)


def test_freezing_embeddings_and_layers_counts(tiny_classifier):
    model = tiny_classifier.model
    _, total = models.count_parameters(model)
    embeddings = sum(p.numel() for p in model.bert.embeddings.parameters())
    layer0 = sum(p.numel() for p in model.bert.encoder.layer[0].parameters())
    models.prepare_for_method(
        tiny_classifier, ModelConfig(source="x", method="freeze", freeze_embeddings=True, freeze_layers=1)
    )
    trainable, total_after = models.count_parameters(model)
    assert total_after == total
    assert trainable == total - embeddings - layer0
    assert not model.bert.encoder.layer[0].attention.self.query.weight.requires_grad
    assert model.bert.encoder.layer[1].attention.self.query.weight.requires_grad
    assert model.classifier.weight.requires_grad


def test_freezing_more_layers_than_exist_is_refused(tiny_classifier):
    with pytest.raises(ModelError, match="Cannot freeze 5 layers: the model has 2"):
        models.freeze(tiny_classifier.model, embeddings=False, layers=5)


def test_lora_trains_only_adapters_and_head(tiny_classifier):
    bundle = models.prepare_for_method(tiny_classifier, ModelConfig(source="x", method="lora", lora_r=8))
    trainable, total = models.count_parameters(bundle.model)
    hidden, layers, r = 64, 2, 8
    adapters = layers * 2 * (r * hidden + hidden * r)  # query and value: A (r x in) + B (out x r)
    head = hidden * 3 + 3
    pooler = hidden * hidden + hidden  # a trained copy of the pooler under the head (peft's modules_to_save)
    assert trainable == adapters + head + pooler == 8451
    assert total > 2_000_000


def test_lora_with_an_unknown_target_lists_the_choices(tiny_classifier):
    with pytest.raises(ModelError, match="not in this model") as err:
        models.prepare_for_method(tiny_classifier, ModelConfig(source="x", method="lora", lora_targets=["q_proj"]))
    assert "query" in str(err.value) and "value" in str(err.value)


def test_dropout_override_reaches_modules_and_config(tiny_classifier):
    models.prepare_for_method(tiny_classifier, ModelConfig(source="x", dropout=0.3))
    model = tiny_classifier.model
    ps = {m.p for m in model.modules() if isinstance(m, torch.nn.Dropout)}
    assert ps == {0.3}
    assert model.config.hidden_dropout_prob == 0.3 and model.config.attention_probs_dropout_prob == 0.3


def _logits(bundle, text="the film was wonderful"):
    enc = bundle.tokenizer([text], return_tensors="pt")
    bundle.model.eval()
    with torch.no_grad():
        return bundle.model(**enc).logits


def test_full_model_saves_and_loads_back_identically(tiny_classifier, tmp_path):
    models.save_model(tiny_classifier, tmp_path / "m", {"step": 3})
    back = models.load_for_inference(tmp_path / "m")
    assert back.task == "classification" and back.label_names == LABELS
    assert models.read_meta(tmp_path / "m")["step"] == 3
    assert torch.allclose(_logits(back), _logits(tiny_classifier), atol=1e-6)


def test_lora_adapter_saves_and_loads_back_identically(tiny_classifier, tmp_path):
    bundle = models.prepare_for_method(tiny_classifier, ModelConfig(source="x", method="lora"))
    with torch.no_grad():  # move the adapters off their zero init so the round trip means something
        for name, p in bundle.model.named_parameters():
            if "lora_B" in name:
                p.add_(0.05)
    models.save_model(bundle, tmp_path / "a")
    assert (tmp_path / "a" / "adapter_config.json").exists()
    assert models.read_meta(tmp_path / "a")["adapter"] is True
    back = models.load_for_inference(tmp_path / "a", merge=True)
    assert torch.allclose(_logits(back), _logits(bundle), atol=1e-5)
    merged = models.merge_adapter(tmp_path / "a", tmp_path / "merged")
    plain = models.load_for_inference(merged)
    assert not (merged / "adapter_config.json").exists()
    assert torch.allclose(_logits(plain), _logits(bundle), atol=1e-5)


def test_guessing_the_task_of_a_foreign_folder(tmp_path):
    for archs, problem, task in (
        (["GPT2LMHeadModel"], None, "generation"),
        (["BertForSequenceClassification"], "regression", "regression"),
        (["BertForSequenceClassification"], None, "classification"),
    ):
        (tmp_path / "config.json").write_text(json.dumps({"architectures": archs, "problem_type": problem}))
        assert models._guess_task(tmp_path) == task
