"""Write one readable train.py that reproduces a run without the workbench (torch, transformers, peft, pandas).

The script repeats the engine's steps in the same order, so its first losses match the run's: the same rows
(read, cleaned and split exactly as the engine does; the split is scikit-learn's ``train_test_split`` draw for
draw, rewritten with NumPy), the same tokenization, the same length-grouped batches, the same seeded head, the
same optimizer groups, schedule and clipping. What it leaves out are the engine's speed-ups, which compute the
same thing: its CPU dropout draws other (equally distributed) masks, so losses agree step for step only with
dropout off, and agree in distribution otherwise.

Offered for classification and regression runs (full, freeze and LoRA); generation, prefix/prompt tuning,
distillation and augmentation are refused with a message saying so.
"""

from __future__ import annotations

import json
from pathlib import Path
from string import Template

from core.errors import WorkbenchError

TEMPLATE = Template(
    '''"""Fine-tune $what: a standalone copy of Fine-Tuning Workbench run $run_id.

Needs only torch, transformers, pandas$peft_note (numpy comes with them). Run it with
    python $script_name                 # the whole run
    python $script_name --max-steps 5   # a few steps, to check it works
It reads DATA_FILE, cuts the same train / validation / test split as the run, trains with the same settings and
seed, prints the loss of every step, scores the validation and test rows and saves the model in OUTPUT_DIR.
Edit the constants below to point it at your own copy of the data or of the base model.
"""

import argparse
import math

import numpy as np
import pandas as pd
import torch
from transformers import AutoModelForSequenceClassification, AutoTokenizer, get_scheduler

DATA_FILE = $data_file
FILE_FORMAT = $file_format  # csv, tsv, json, jsonl or parquet
CSV_SEPARATOR = $separator
CSV_HAS_HEADER = $has_header
CSV_COLUMN_NAMES = $column_names  # used when the file has no header row
TEXT_COLUMN = $text_column
PAIR_COLUMN = $pair_column  # second text of a sentence pair, or None
LABEL_COLUMN = $label_column
TASK = $task  # classification or regression
# The base model: a Hugging Face id (downloaded once) or a local folder.
BASE_MODEL = $base_model
OUTPUT_DIR = $output_dir

VAL_FRACTION = $val_fraction
TEST_FRACTION = $test_fraction
STRATIFY = $stratify
SPLIT_SEED = $split_seed

SETTINGS = $settings
LORA = $lora  # None: every weight trains
FREEZE = $freeze  # embeddings and/or the first layers kept fixed


# ------------------------------------------------------------------------------------------ data
def label_key(value):
    """A label's class name: 1, 1.0 and "1" are all '1'; empty cells are missing."""
    text = str(value).strip()
    try:
        number = float(text)
    except ValueError:
        return text or None
    if math.isnan(number):
        return None
    return str(int(number)) if number.is_integer() else str(number)


def read_rows():
    """The data file as a frame with the columns text (, text_pair), label; rows without text or label left out."""
    if FILE_FORMAT in ("csv", "tsv"):
        header = 0 if CSV_HAS_HEADER else None
        frame = pd.read_csv(DATA_FILE, sep=CSV_SEPARATOR, header=header, dtype=str, keep_default_na=False)
        if not CSV_HAS_HEADER:
            frame.columns = CSV_COLUMN_NAMES
        frame.columns = [str(c).strip() for c in frame.columns]
    elif FILE_FORMAT == "parquet":
        frame = pd.read_parquet(DATA_FILE)
    else:
        frame = pd.read_json(DATA_FILE, lines=FILE_FORMAT == "jsonl", dtype=False)

    def as_text(column):
        return column.map(lambda v: "" if v is None or (isinstance(v, float) and math.isnan(v)) else str(v)).str.strip()

    rows = pd.DataFrame({"text": as_text(frame[TEXT_COLUMN])})
    keep = rows["text"] != ""
    if PAIR_COLUMN:
        rows["text_pair"] = as_text(frame[PAIR_COLUMN])
        keep &= rows["text_pair"] != ""
    if TASK == "classification":
        rows["label"] = frame[LABEL_COLUMN].map(lambda v: None if v is None else label_key(v))
    else:
        rows["label"] = pd.to_numeric(frame[LABEL_COLUMN], errors="coerce").astype("float64")
    keep &= rows["label"].notna()
    return rows[keep].reset_index(drop=True)


def spread_draws(counts, draws, rng):
    """How many of ``draws`` rows each class gets, in proportion to ``counts``: the floors first, then one more
    for the classes with the largest remainders (ties broken at random)."""
    exact = counts / counts.sum() * draws
    given = np.floor(exact)
    missing = int(draws - given.sum())
    left = exact - given
    for value in np.sort(np.unique(left))[::-1]:
        if missing <= 0:
            break
        tied = np.flatnonzero(left == value)
        chosen = rng.choice(tied, size=min(len(tied), missing), replace=False)
        given[chosen] += 1
        missing -= len(chosen)
    return given.astype(int)


def cut(frame, size, strata, seed):
    """Hold out ``size`` rows at random, keeping class shares when ``strata`` is given.

    The same draws as scikit-learn's train_test_split(test_size=size, random_state=seed, shuffle=True,
    stratify=strata), so the rows match the workbench run's exactly."""
    if size == 0:
        return frame, frame.iloc[0:0]
    rng = np.random.RandomState(seed)
    n = len(frame)
    if strata is None:
        order = rng.permutation(n)
        return frame.iloc[order[size:]], frame.iloc[order[:size]]
    classes, class_of_row, counts = np.unique(np.asarray(strata), return_inverse=True, return_counts=True)
    rows_by_class = np.split(np.argsort(class_of_row, kind="stable"), np.cumsum(counts)[:-1])
    keep_per_class = spread_draws(counts, n - size, rng)
    hold_per_class = spread_draws(counts - keep_per_class, size, rng)
    kept, held = [], []
    for rows, k, h in zip(rows_by_class, keep_per_class, hold_per_class):
        shuffled = rows.take(rng.permutation(len(rows)), mode="clip")
        kept.extend(shuffled[:k])
        held.extend(shuffled[k : k + h])
    return frame.iloc[rng.permutation(kept)], frame.iloc[rng.permutation(held)]


def split(rows):
    """Train, validation and test frames, as the workbench cut them."""
    n = len(rows)
    n_test = math.ceil(n * TEST_FRACTION) if TEST_FRACTION else 0
    n_val = math.ceil(n * VAL_FRACTION) if VAL_FRACTION else 0
    strata = rows["label"] if STRATIFY and TASK == "classification" else None
    rest, test = cut(rows, n_test, strata, SPLIT_SEED)
    train, validation = cut(rest, n_val, None if strata is None else strata.loc[rest.index], SPLIT_SEED)
    return [part.reset_index(drop=True) for part in (train, validation, test)]


# ------------------------------------------------------------------------------------------ batches
def encode(tokenizer, frame, label_names):
    """Token ids (unpadded) and labels of one split."""
    pairs = frame["text_pair"].tolist() if "text_pair" in frame else None
    if len(frame) == 0:
        return {"input_ids": [], "token_type_ids": None, "labels": np.zeros(0)}
    out = tokenizer(
        frame["text"].tolist(), pairs, truncation=True, max_length=SETTINGS["max_length"], return_attention_mask=False
    )
    if TASK == "classification":
        ids = {name: i for i, name in enumerate(label_names)}
        labels = frame["label"].map(ids).to_numpy(dtype=np.int64)
    else:
        labels = frame["label"].to_numpy(dtype=np.float32)
    types = out.get("token_type_ids") if pairs is not None else None
    return {"input_ids": out["input_ids"], "token_type_ids": types, "labels": labels}


def grouped_batches(lengths, batch_size, seed):
    """Shuffle, sort by length within groups of 50 batches (little padding), then shuffle the batches."""
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(lengths))
    group = batch_size * 50
    batches = []
    for start in range(0, len(order), group):
        chunk = order[start : start + group]
        chunk = chunk[np.argsort(-lengths[chunk], kind="stable")]
        batches.extend(chunk[i : i + batch_size] for i in range(0, len(chunk), batch_size))
    return [batches[i] for i in rng.permutation(len(batches))]


def collate(data, index, pad_id, multiple):
    """Pad the chosen rows to the longest of them (rounded up to ``multiple`` within max_length)."""
    rows = [data["input_ids"][i] for i in index]
    width = max(len(r) for r in rows)
    if multiple > 1:
        width = max(width, min(-(-width // multiple) * multiple, SETTINGS["max_length"]))
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    batch = {"input_ids": ids, "attention_mask": mask}
    if data["token_type_ids"] is not None:
        batch["token_type_ids"] = torch.zeros((len(rows), width), dtype=torch.long)
    for j, (row, i) in enumerate(zip(rows, index)):
        ids[j, : len(row)] = torch.as_tensor(row)
        mask[j, : len(row)] = 1
        if data["token_type_ids"] is not None:
            batch["token_type_ids"][j, : len(row)] = torch.as_tensor(data["token_type_ids"][i])
    return batch, torch.as_tensor(data["labels"][index])


# ------------------------------------------------------------------------------------------ model
def build_model(label_names, train_labels):
    torch.manual_seed(SETTINGS["seed"])
    tokenizer = AutoTokenizer.from_pretrained(BASE_MODEL)
    if TASK == "classification":
        head = {
            "num_labels": len(label_names),
            "id2label": dict(enumerate(label_names)),
            "label2id": {name: i for i, name in enumerate(label_names)},
            "problem_type": "single_label_classification",
        }
    else:
        head = {"num_labels": 1, "problem_type": "regression"}
    model = AutoModelForSequenceClassification.from_pretrained(BASE_MODEL, ignore_mismatched_sizes=True, **head)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token or tokenizer.unk_token
    if getattr(model.config, "pad_token_id", None) is None:
        model.config.pad_token_id = tokenizer.pad_token_id
    if SETTINGS["dropout"] is not None:  # the run overrode every dropout
        for module in model.modules():
            if isinstance(module, torch.nn.Dropout):
                module.p = SETTINGS["dropout"]
    if LORA:
        from peft import LoraConfig, TaskType, get_peft_model

        model = get_peft_model(model, LoraConfig(task_type=TaskType.SEQ_CLS, **LORA))
    elif FREEZE["embeddings"] or FREEZE["layers"]:
        freeze(model)
    if TASK == "regression":
        # Start the head at the targets' mean and spread, as the workbench does.
        heads = [m for m in model.modules() if isinstance(m, torch.nn.Linear) and m.out_features == 1]
        with torch.no_grad():
            heads[-1].weight.mul_(float(train_labels.std()) or 1.0)
            if heads[-1].bias is not None:
                heads[-1].bias.fill_(float(train_labels.mean()))
    return model, tokenizer


def freeze(model):
    if FREEZE["embeddings"]:
        base = getattr(model, model.base_model_prefix, model)
        for p in [*model.get_input_embeddings().parameters(), *getattr(base, "embeddings", model).parameters()]:
            p.requires_grad_(False)
    if FREEZE["layers"]:
        wanted = model.config.num_hidden_layers
        blocks = next(m for m in model.modules() if isinstance(m, torch.nn.ModuleList) and len(m) == wanted)
        for block in list(blocks)[: FREEZE["layers"]]:
            for p in block.parameters():
                p.requires_grad_(False)


def optimizer_for(model):
    """AdamW-style groups: no weight decay on biases and norms; optional layer-wise learning-rate decay."""
    import re

    s = SETTINGS
    layers = getattr(model.config, "num_hidden_layers", 0) or 0
    groups = {}
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        scale = 1.0
        if s["layerwise_lr_decay"] < 1.0 and layers:
            found = re.search(r"\\.(?:layer|layers|h|block|blocks)\\.(\\d+)\\.", name)
            depth = layers - int(found.group(1)) if found else layers + 1 if "embed" in name else 0
            scale = s["layerwise_lr_decay"] ** depth
        groups.setdefault((s["weight_decay"] if p.ndim >= 2 else 0.0, scale), []).append(p)
    params = [{"params": ps, "weight_decay": d, "lr": s["learning_rate"] * k} for (d, k), ps in groups.items()]
    fused = all(p.dtype == torch.float32 for g in params for p in g["params"])
    if s["optimizer"] == "adam":
        return torch.optim.Adam(params, lr=s["learning_rate"], fused=fused)
    if s["optimizer"] == "sgd":
        return torch.optim.SGD(params, lr=s["learning_rate"], momentum=s["momentum"])
    if s["optimizer"] == "adafactor":
        from transformers.optimization import Adafactor

        return Adafactor(params, lr=s["learning_rate"], scale_parameter=False, relative_step=False)
    return torch.optim.AdamW(params, lr=s["learning_rate"], fused=fused)


def loss_of(model, batch, labels):
    logits = model(**batch).logits.float()
    if TASK == "regression":
        return torch.nn.functional.mse_loss(logits.squeeze(-1), labels.float())
    return torch.nn.functional.cross_entropy(logits, labels, label_smoothing=SETTINGS["label_smoothing"])


@torch.no_grad()
def score(model, data, pad_id, label_names):
    model.eval()
    predictions, losses = [], []
    for start in range(0, len(data["input_ids"]), 64):
        index = np.arange(start, min(start + 64, len(data["input_ids"])))
        batch, labels = collate(data, index, pad_id, 1)
        logits = model(**batch).logits.float()
        losses.append(float(loss_of(model, batch, labels)) * len(index))
        predictions.append(logits.argmax(-1) if TASK == "classification" else logits.squeeze(-1))
    model.train()
    if not predictions:
        return {}
    predicted = torch.cat(predictions).numpy()
    out = {"loss": sum(losses) / len(data["input_ids"])}
    if TASK == "classification":
        out["accuracy"] = float((predicted == data["labels"]).mean())
    else:
        out["mse"] = float(((predicted - data["labels"]) ** 2).mean())
    return out


# ------------------------------------------------------------------------------------------ training
def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-steps", type=int, default=0, help="Stop after this many steps (0: the run's length)")
    args = parser.parse_args()
    s = SETTINGS
    torch.manual_seed(s["seed"])
    np.random.seed(s["seed"] % 2**32)
    if s["num_threads"]:
        torch.set_num_threads(s["num_threads"])

    train_rows, val_rows, test_rows = split(read_rows())
    label_names = None
    if TASK == "classification":
        keys = list(pd.concat([train_rows, val_rows, test_rows])["label"].unique())
        numeric = all(k.lstrip("-+").replace(".", "", 1).isdigit() for k in keys)
        label_names = sorted(keys, key=float) if numeric else sorted(keys)
    print(f"rows: {len(train_rows)} train, {len(val_rows)} validation, {len(test_rows)} test")

    targets = train_rows["label"].to_numpy(dtype=np.float64) if TASK == "regression" else None
    model, tokenizer = build_model(label_names, targets)
    model.train()
    train_data = encode(tokenizer, train_rows, label_names)
    val_data = encode(tokenizer, val_rows, label_names)
    test_data = encode(tokenizer, test_rows, label_names)
    lengths = np.array([len(x) for x in train_data["input_ids"]])
    pad_id = tokenizer.pad_token_id
    bf16 = s["precision"] == "bf16"
    multiple = 8 if bf16 else 1  # bf16 on a CPU: widths rounded to 8, as the workbench does

    batches_per_epoch = math.ceil(len(lengths) / s["batch_size"])
    steps_per_epoch = max(1, math.ceil(batches_per_epoch / s["grad_accum"]))
    total_steps = s["max_steps"] or max(1, math.ceil(s["epochs"] * steps_per_epoch))
    optimizer = optimizer_for(model)
    warmup = s["warmup_steps"] or int(round(s["warmup_ratio"] * total_steps))
    schedule = "constant_with_warmup" if s["schedule"] == "constant" else s["schedule"]
    extra = {"num_cycles": 3} if s["schedule"] == "cosine_with_restarts" else None
    scheduler = get_scheduler(schedule, optimizer, warmup, max(total_steps, 1), scheduler_specific_kwargs=extra)
    params = [p for p in model.parameters()]
    stop_at = min(total_steps, args.max_steps) if args.max_steps else total_steps

    step, epoch, micro, window = 0, 0, 0, []
    optimizer.zero_grad(set_to_none=True)
    while step < stop_at:
        batches = grouped_batches(lengths, s["batch_size"], s["seed"] + epoch)
        for b, index in enumerate(batches):
            batch, labels = collate(train_data, index, pad_id, multiple)
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
                loss = loss_of(model, batch, labels)
            window.append(float(loss.detach()))
            if s["l1_penalty"]:
                loss = loss + s["l1_penalty"] * sum(p.abs().sum() for p in params if p.requires_grad and p.ndim >= 2)
            (loss / s["grad_accum"]).backward()
            micro += 1
            if micro < s["grad_accum"] and b + 1 < len(batches):
                continue
            micro = 0
            torch.nn.utils.clip_grad_norm_(params, s["grad_clip"] or math.inf)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            step += 1
            print(f"step {step} loss {sum(window) / len(window):.6f}", flush=True)
            window = []
            if step >= stop_at:
                break
        epoch += 1

    for name, data in (("validation", val_data), ("test", test_data)):
        print(name, score(model, data, pad_id, label_names))
    model = model.merge_and_unload() if LORA else model
    model.save_pretrained(OUTPUT_DIR)
    tokenizer.save_pretrained(OUTPUT_DIR)
    print(f"saved the model in {OUTPUT_DIR}")


if __name__ == "__main__":
    main()
'''
)


def _refuse(what: str) -> WorkbenchError:
    return WorkbenchError(
        f"A standalone script is not offered for {what} yet.",
        hint="Use the exact command on the Runs page (python -m core train --config ...), which needs the workbench.",
    )


def render_script(run) -> str:
    """The script's text for ``run``."""
    from core.data import read_table
    from core.models import minilm_path, portable_model_name

    config = run.config()
    dc, mc, tc = config.data, config.model, config.train
    if mc.task == "generation":
        raise _refuse("generation runs")
    if mc.method in ("prefix", "prompt"):
        raise _refuse(f"{mc.method} tuning")
    if mc.teacher_run or mc.student_layers:
        raise _refuse("distillation")
    if dc.augment_multiplier and dc.augment_ops:
        raise _refuse("runs with text augmentation")
    if dc.validation_path or dc.test_path:
        raise _refuse("runs with separate validation or test files")
    table = read_table(dc.train_path, max_mb=dc.max_file_mb)
    if table.format == "txt":
        raise _refuse("plain-text (.txt) data files")
    from core.data import _chosen_columns

    columns = _chosen_columns(table.frame, dc, mc.task)
    if mc.source == "default":
        base = portable_model_name(minilm_path())
    elif (run.dir.parent / mc.source / "model").is_dir():
        base = str((run.dir.parent / mc.source / "model").resolve())
    else:
        base = portable_model_name(mc.source)
    precision = tc.precision
    if precision == "auto":
        from core.device import resolve_device, resolve_precision

        precision = resolve_precision("auto", resolve_device(tc.device))
    settings = {
        k: getattr(tc, k)
        for k in (
            "learning_rate",
            "schedule",
            "warmup_steps",
            "warmup_ratio",
            "optimizer",
            "momentum",
            "weight_decay",
            "l1_penalty",
            "label_smoothing",
            "layerwise_lr_decay",
            "batch_size",
            "grad_accum",
            "epochs",
            "max_steps",
            "max_length",
            "grad_clip",
            "seed",
            "num_threads",
        )
    }
    settings.update(precision=precision, dropout=mc.dropout)
    lora = None
    if mc.method == "lora":
        from core.inference import outline_model

        targets = list(mc.lora_targets) or outline_model(mc.source, mc.task, runs_root=run.dir.parent).lora_default
        lora = {"r": mc.lora_r, "lora_alpha": mc.lora_alpha, "lora_dropout": mc.lora_dropout, "target_modules": targets}
    freeze = {"embeddings": bool(mc.freeze_embeddings), "layers": mc.freeze_layers if mc.method == "freeze" else 0}
    what = "a text classifier" if mc.task == "classification" else "a regression model"
    values = {
        "what": what,
        "run_id": run.id,
        "script_name": "train.py",
        "peft_note": " and peft (for LoRA)" if lora else "",
        "data_file": repr(str(Path(dc.train_path).resolve())),
        "file_format": repr(table.format),
        "separator": repr(table.delimiter or ","),
        "has_header": repr(bool(table.has_header)),
        "column_names": repr([str(c) for c in table.frame.columns]),
        "text_column": repr(columns.text),
        "pair_column": repr(columns.text_pair),
        "label_column": repr(columns.label),
        "task": repr(mc.task),
        "base_model": repr(base),
        "output_dir": repr(f"{run.id}-standalone-model"),
        "val_fraction": repr(dc.val_fraction),
        "test_fraction": repr(dc.test_fraction),
        "stratify": repr(bool(dc.stratify)),
        "split_seed": repr(dc.split_seed),
        "settings": _pretty(settings),
        "lora": _pretty(lora),
        "freeze": repr(freeze),
    }
    return TEMPLATE.substitute(values)


def _pretty(value) -> str:
    """A dict as Python source, one key per line (JSON's null/true/false spelled the Python way)."""
    if value is None:
        return "None"
    text = json.dumps(value, indent=4)
    return text.replace(": null", ": None").replace(": true", ": True").replace(": false", ": False")


def write_script(run, output: Path) -> Path:
    output = Path(output)
    text = render_script(run)
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(text.replace("python train.py", f"python {output.name}"), encoding="utf-8")
    return output
