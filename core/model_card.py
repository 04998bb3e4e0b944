"""A model card (README.md with Hugging Face metadata) for every model folder the workbench saves.

The YAML header is what the hub and other tools read (library, pipeline tag, base model, language, metrics);
the body is for a person: what the model does, the data it learnt from (with the data check), the settings,
the scores, the limitations and how to load it. The base model is always named portably (the bundled MiniLM by
its hub name), never by a path into this machine; a LoRA adapter's ``adapter_config.json`` gets the same name,
so the adapter loads on another machine that has that base model.
"""

from __future__ import annotations

import html
import json
from pathlib import Path
from typing import Any

PIPELINE_TAGS = {
    "classification": "text-classification",
    "regression": "text-classification",
    "generation": "text-generation",
}
TASK_WORDS = {
    "classification": "sorts a text into one of {n} categories",
    "regression": "predicts a number for a text",
    "generation": "continues a text in the style of the text it was trained on",
}
SETTINGS_SHOWN = (
    "learning_rate",
    "epochs",
    "max_steps",
    "batch_size",
    "grad_accum",
    "max_length",
    "schedule",
    "warmup_ratio",
    "warmup_steps",
    "weight_decay",
    "optimizer",
    "precision",
    "seed",
)


def esc(value: Any) -> str:
    """Outside text (file names, labels, notes) shown as text, never as markup, in the Markdown body."""
    return html.escape(str(value), quote=False).replace("|", "\\|")


def find_run_dir(folder: Path) -> Path | None:
    """The run folder a model folder belongs to (run/model, run/merged, run/checkpoints/step-N), if any."""
    for parent in (folder.parent, folder.parent.parent):
        if (parent / "config.json").is_file() and (parent / "status.json").is_file():
            return parent
    return None


def base_model_name(meta: dict[str, Any], run_config: dict[str, Any] | None, folder: Path) -> str | None:
    """The base model's portable name, or None when it is only a folder on this machine."""
    from core import models

    source = str(meta.get("source") or (run_config or {}).get("model", {}).get("source") or "")
    task = meta.get("task") or (run_config or {}).get("model", {}).get("task")
    if source == "default":
        # The classifier default is the bundled MiniLM; the generation default is built from scratch.
        return None if task == "generation" else models.portable_model_name(models.minilm_path())
    adapter = folder / "adapter_config.json"
    if adapter.exists():
        base = json.loads(adapter.read_text(encoding="utf-8")).get("base_model_name_or_path") or source
        source = models.portable_model_name(base)
    elif source:
        source = models.portable_model_name(source)
    if not source or Path(source).expanduser().is_absolute() or Path(source).exists() or source.startswith("."):
        return None  # a local folder or another run: no name that means anything elsewhere
    return source


def make_adapter_portable(folder: Path) -> None:
    """Replace the absolute base-model path peft writes into adapter_config.json with its portable name."""
    from core import models

    path = folder / "adapter_config.json"
    if not path.exists():
        return
    config = json.loads(path.read_text(encoding="utf-8"))
    base = config.get("base_model_name_or_path")
    portable = models.portable_model_name(base) if base else base
    if portable != base:
        config["base_model_name_or_path"] = portable
        path.write_text(json.dumps(config, indent=2, sort_keys=True), encoding="utf-8")


def guess_language(texts: list[str]) -> str | None:
    """A rough guess from the characters of the training text: 'zh', 'en' or None (unknown).

    Only a hint for the metadata; a wrong 'en' would mislead more than none, so anything unclear is None."""
    sample = "".join(texts[:500])
    letters = [c for c in sample if c.isalpha()]
    if not letters:
        return None
    cjk = sum("\u4e00" <= c <= "\u9fff" for c in letters) / len(letters)
    ascii_share = sum(c.isascii() for c in letters) / len(letters)
    if cjk > 0.3:
        return "zh"
    if ascii_share > 0.97:
        return "en"
    return None


def _run_facts(run_dir: Path, check: bool = True) -> dict[str, Any]:
    """What the card says about the run: config, labels, data notes, split sizes, class counts, scores."""
    import pandas as pd

    from core.runs import Run

    run = Run(run_dir)
    facts: dict[str, Any] = {"id": run.id, "config": run.config_dict(), "results": run.results()}
    labels_path = run.data_dir / "labels.json"
    meta = json.loads(labels_path.read_text(encoding="utf-8")) if labels_path.exists() else {}
    facts["label_names"] = meta.get("label_names")
    facts["notes"] = meta.get("notes") or []
    splits: dict[str, int] = {}
    for name in ("train", "validation", "test"):
        path = run.data_dir / f"{name}.parquet"
        if path.exists():
            import pyarrow.parquet as pq

            splits[name] = int(pq.ParquetFile(path).metadata.num_rows)
    facts["splits"] = splits
    train = run.data_dir / "train.parquet"
    facts["texts"], facts["findings"], facts["class_counts"] = [], [], {}
    if train.exists():
        frame = pd.read_parquet(train)
        facts["texts"] = frame["text"].astype(str).head(500).tolist()
        if check:
            facts["findings"] = data_findings(frame, facts["config"]["model"]["task"], facts["label_names"])
        if facts["label_names"] and "label" in frame:
            counts = frame["label"].value_counts()
            facts["class_counts"] = {facts["label_names"][int(k)]: int(v) for k, v in counts.items()}
    return facts


def data_findings(frame, task: str, label_names: list[str] | None) -> list[dict[str, str]]:
    """The data check of a run's training split, as (level, title, detail) rows."""
    from core.data import ColumnChoice, check_data

    frame = frame.copy()
    if label_names and "label" in frame:
        frame["label"] = [label_names[int(i)] for i in frame["label"]]
    columns = ColumnChoice("text", "text_pair" if "text_pair" in frame else None, "label" if "label" in frame else None)
    try:
        report = check_data(frame, columns, task)
    except Exception:  # noqa: BLE001 - the card is written without the check rather than not at all
        return []
    return [{"level": f.level, "title": f.title, "detail": f.detail} for f in report.findings]


def _scores(results: dict[str, Any]) -> dict[str, dict[str, float]]:
    out: dict[str, dict[str, float]] = {}
    for split in ("validation", "test"):
        values = results.get(split)
        if isinstance(values, dict):
            out[split] = {k: float(v) for k, v in values.items() if isinstance(v, int | float) and k != "per_class"}
    return out


def build_card(folder: Path, origin: Path | None = None):
    """The ModelCard for the model saved in ``folder`` (``origin``: the folder it was merged from)."""
    from huggingface_hub import EvalResult, ModelCard, ModelCardData

    from core import models

    meta = models.read_meta(folder)
    run_dir = find_run_dir(origin or folder) or (find_run_dir(folder) if origin else None)
    # A checkpoint's card skips the data check: it is rewritten every few steps and the check reads every row.
    facts = _run_facts(run_dir, check=folder.parent.name != "checkpoints") if run_dir else {}
    config = facts.get("config") or {}
    task = meta.get("task") or config.get("model", {}).get("task") or "classification"
    adapter = (folder / "adapter_config.json").exists()
    base = base_model_name(meta, config, folder)
    labels = meta.get("label_names") or facts.get("label_names") or []
    scores = _scores(facts.get("results") or {})
    name = config.get("name") or facts.get("id") or folder.name
    eval_results = [
        EvalResult(
            task_type=PIPELINE_TAGS[task],
            dataset_type="user-data",
            dataset_name=Path(config.get("data", {}).get("train_path") or "the data").name,
            dataset_split=split,
            metric_type=metric,
            metric_value=round(value, 4),
        )
        for split, values in scores.items()
        for metric, value in values.items()
        if metric in ("accuracy", "f1", "loss", "perplexity", "mse", "mae", "r2", "pearson", "bleu", "rouge_l")
    ]
    data = ModelCardData(
        model_name=str(name),
        library_name="peft" if adapter else "transformers",
        pipeline_tag=PIPELINE_TAGS[task],
        base_model=base,
        language=guess_language(facts.get("texts") or []),
        metrics=sorted({r.metric_type for r in eval_results} - {"loss"}) or None,
        tags=["fine-tuning-workbench", task, *(["lora"] if adapter else [])],
        eval_results=eval_results or None,
    )
    body = _body(folder, meta, facts, task, labels, base, adapter, scores)
    return ModelCard(f"---\n{data.to_yaml()}\n---\n{body}")


def _body(folder, meta, facts, task, labels, base, adapter, scores) -> str:
    config = facts.get("config") or {}
    mc, tc, dc = config.get("model", {}), config.get("train", {}), config.get("data", {})
    lines = [f"# {esc(config.get('name') or facts.get('id') or folder.name)}", ""]
    what = TASK_WORDS[task].format(n=len(labels) or "several")
    lines.append(f"This model {what}.")
    if task == "classification" and labels:
        lines.append(f"Its categories are: {', '.join(esc(x) for x in labels)}.")
    origin = (
        f"`{esc(base)}`"
        if base
        else "a tiny GPT-2 trained from scratch on the data below"
        if mc.get("source") == "default"
        else "a model folder on the machine where it was trained"
    )
    method = mc.get("method", "full")
    how = {"lora": "LoRA adapters (only small extra matrices were trained)", "full": "full fine-tuning"}
    lines.append(f"It was made from {origin} with {how.get(method, esc(method))}, using the Fine-Tuning Workbench.")
    if adapter:
        lines.append("This folder holds the adapter only: loading it also needs the base model named above.")
    lines += ["", "## Data", ""]
    splits = facts.get("splits") or {}
    if splits:
        file = Path(dc.get("train_path") or "the data file").name
        parts = ", ".join(f"{n:,} for {name}" for name, n in splits.items())
        lines.append(f"Trained on `{esc(file)}`: {parts}.")
    counts = facts.get("class_counts") or {}
    if counts:
        lines.append("Training rows per category: " + ", ".join(f"{esc(k)}: {v:,}" for k, v in counts.items()) + ".")
    for note in facts.get("notes") or []:
        lines.append(f"- {esc(note)}")
    findings = facts.get("findings") or []
    if findings:
        lines += ["", "Data check of the training split:", ""]
        lines += [f"- **{esc(f['level'])}** {esc(f['title'])}: {esc(f['detail'])}" for f in findings]
    if not splits:
        lines.append("The training data is not recorded beside this model.")
    if tc:
        lines += ["", "## Settings", "", "| setting | value |", "|---|---|"]
        lines.append(f"| task | {esc(task)} |")
        lines.append(f"| method | {esc(method)} |")
        if method == "lora":
            lines.append(f"| LoRA rank / alpha | {mc.get('lora_r')} / {mc.get('lora_alpha')} |")
        lines += [f"| {k} | {esc(tc[k])} |" for k in SETTINGS_SHOWN if k in tc]
    lines += ["", "## Scores", ""]
    if scores:
        metrics = sorted({m for v in scores.values() for m in v})
        lines += ["| metric | " + " | ".join(scores) + " |", "|---" * (len(scores) + 1) + "|"]
        for m in metrics:
            lines.append(f"| {m} | " + " | ".join(_fmt(v.get(m)) for v in scores.values()) + " |")
        lines.append("")
        lines.append("Scores are on rows held out from training (validation and test splits of the same file).")
    else:
        lines.append("No scores were recorded yet (the card is rewritten when the run finishes scoring).")
    lines += ["", "## Limitations", ""]
    lines.append(
        "The model knows only what its training rows show. Texts unlike them (another topic, language or "
        "style), or longer than the max length of "
        f"{tc.get('max_length', '?')} tokens (the rest is cut off), may get wrong answers with high confidence."
    )
    if task == "generation":
        lines.append("Generated text can be fluent and wrong; check it before use.")
    if splits and sum(splits.values()) < 1000:
        lines.append("It was trained on few rows: the scores above vary a lot with the split.")
    lines += ["", "## How to use it", "", "```python"]
    if adapter:
        auto = "AutoPeftModelForCausalLM" if task == "generation" else "AutoPeftModelForSequenceClassification"
        lines += [
            f"from peft import {auto}",
            "from transformers import AutoTokenizer, pipeline",
            "",
            f'model = {auto}.from_pretrained("path/to/this/folder"{_label_kwargs(task, labels)}).merge_and_unload()',
            'tokenizer = AutoTokenizer.from_pretrained("path/to/this/folder")',
            f'pipe = pipeline("{PIPELINE_TAGS[task]}", model=model, tokenizer=tokenizer)',
        ]
    else:
        lines += [
            "from transformers import pipeline",
            "",
            f'pipe = pipeline("{PIPELINE_TAGS[task]}", model="path/to/this/folder")',
        ]
    example = "Once upon a time" if task == "generation" else "A text to classify"
    extra = ", function_to_apply='none'" if task == "regression" else ""
    lines += [f'print(pipe("{example}"{extra}))', "```", ""]
    return "\n".join(lines)


def _label_kwargs(task: str, labels: list[str]) -> str:
    """The head the base model needs so the adapter's saved classifier fits (the hub config has no labels)."""
    if task == "regression":
        return ", num_labels=1"
    if task != "classification" or not labels:
        return ""
    return f", num_labels={len(labels)}, id2label={json.dumps(dict(enumerate(labels)), ensure_ascii=False)}"


def _fmt(value: float | None) -> str:
    return "" if value is None else f"{value:.4f}"


def write_model_card(folder: Path, origin: Path | None = None) -> Path:
    """Write README.md (and make an adapter's base model name portable) in a saved model folder."""
    folder = Path(folder)
    make_adapter_portable(folder)
    try:
        text = str(build_card(folder, origin))
    except Exception as err:  # noqa: BLE001 - a card must never cost the user the model it describes
        text = f"---\nlibrary_name: transformers\n---\n# {folder.name}\n\nThe model card could not be written: {esc(err)}\n"
    path = folder / "README.md"
    path.write_text(text, encoding="utf-8")
    return path
