"""python -m core check|train|eval|predict|generate|runs|merge|report|export-script|fetch-dataset: as the UI calls."""

from __future__ import annotations

import argparse
import dataclasses
import json
import signal
import sys
from pathlib import Path
from typing import Any

from core import i18n
from core.config import DataConfig, ModelConfig, RunConfig, TrainConfig, field_docs
from core.defaults import defaults_for
from core.errors import WorkbenchError
from core.i18n import error_text, state_key
from core.inference import model_outline

SECTIONS = {"data": DataConfig, "model": ModelConfig, "train": TrainConfig}
ALIASES = {"train_path": ["--data"], "source": ["--model"], "learning_rate": ["--lr"]}
DEVICE_HELP = "cpu, cuda or mps (default: cpu)"
PARALLEL_HELP = (
    "Train even if another job (the app, another command) trains on this device: both slow down "
    "(also WORKBENCH_ALLOW_PARALLEL=1)"
)


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def _add_config_options(parser: argparse.ArgumentParser) -> None:
    """One option per config field, with the field's docstring as help; unset options keep the defaults."""
    for section, cls in SECTIONS.items():
        group = parser.add_argument_group(f"{section} settings")
        docs = field_docs(cls)
        for f in dataclasses.fields(cls):
            kind = str(f.type)
            names = [_flag(f.name), *ALIASES.get(f.name, [])]
            kwargs: dict[str, Any] = {"dest": f"{section}.{f.name}", "default": None, "help": docs.get(f.name, "")}
            if kind != "bool":
                kwargs["metavar"] = f.name.upper()
            if kind == "bool":
                kwargs["action"] = argparse.BooleanOptionalAction
            elif kind.startswith("list"):
                kwargs["nargs"] = "*"
            elif kind.startswith("dict"):
                kwargs.update(nargs="*", metavar="VALUE=NAME", type=_pair)
            elif kind.startswith("int"):
                kwargs["type"] = int
            elif kind.startswith("float"):
                kwargs["type"] = float
            group.add_argument(*names, **kwargs)


def _pair(text: str) -> tuple[str, str]:
    """'0=negative' -> ("0", "negative") for options that map values to names (--class-names)."""
    value, sep, name = text.partition("=")
    if not sep:
        raise argparse.ArgumentTypeError(f"'{text}' is not VALUE=NAME (e.g. 0=negative).")
    return value.strip(), name.strip()


def _config_from_args(args: argparse.Namespace) -> RunConfig:
    raw: dict[str, Any] = {"data": {}, "model": {}, "train": {}}
    if args.config:
        raw = RunConfig.load(Path(args.config)).to_dict()
    given = {k: v for k, v in vars(args).items() if "." in k and v is not None}
    for key, value in given.items():
        if isinstance(value, list) and value and isinstance(value[0], tuple):
            given[key] = dict(value)  # VALUE=NAME pairs (--class-names 0=negative 1=positive)
    task = given.get("model.task") or raw["model"].get("task") or "classification"
    source = given.get("model.source") or raw["model"].get("source") or "default"
    if not args.config:
        # The same defaults as the Train page: by task, method, data size (and model size where the page knows it).
        method = given.get("model.method") or "full"
        try:
            from core.data import estimated_train_rows

            rows = estimated_train_rows(
                DataConfig(**{k.split(".", 1)[1]: v for k, v in given.items() if k[:5] == "data."})
            )
        except (WorkbenchError, TypeError):
            rows = None  # a bad data setting is reported below, by the config's own validation
        # The model's size and longest input, read from its config as the page does (None if unreadable).
        outline = model_outline(source, task, _runs_root(args), bool(given.get("model.trust_remote_code")))
        raw["train"].update(
            defaults_for(
                task, source, rows, method=method, outline=outline, distill=bool(given.get("model.teacher_run"))
            )
        )
        if method in ("lora", "qlora") and outline is not None:  # the rank and layers the page's form shows
            raw["model"].update(lora_r=outline.lora_rank, lora_alpha=outline.lora_alpha)
            raw["model"]["lora_targets"] = list(outline.lora_default)
    for key, value in given.items():
        section, name = key.split(".", 1)
        raw[section][name] = value
    if args.name:
        raw["name"] = args.name
    return RunConfig.from_dict(raw)


def _runs_root(args) -> Path:
    from core.runs import default_workspace

    workspace = getattr(args, "workspace", None)
    return Path(workspace) / "runs" if workspace else default_workspace() / "runs"


def _store(args):
    from core.runs import RunStore

    return RunStore(_runs_root(args))


def cmd_check(args) -> int:
    from core.data import check_data, guess_columns, read_table, validate_columns

    table = read_table(args.file, max_mb=args.max_mb, corpus=args.task == "generation")
    guess = guess_columns(table.frame, args.task)
    columns = dataclasses.replace(
        guess,
        text=args.text_column or guess.text,
        text_pair=args.text_pair_column or guess.text_pair,
        label=args.label_column or guess.label,
    )
    for note in table.notes:
        print(f"note: {note}")
    print(f"{args.file}: {len(table.frame)} rows, format {table.format}, columns {list(table.frame.columns)}")
    print(f"columns used: text={columns.text} text_pair={columns.text_pair} label={columns.label}")
    validate_columns(table.frame, columns, args.task, path_name=str(args.file))
    report = check_data(table.frame, columns, args.task, max_length=args.max_length)
    from core.i18n import finding_text

    for f in report.findings:
        title, detail = finding_text(f)  # in the language LANG names (English unless it is Chinese)
        print(f"[{f.level.upper():7}] {title}: {detail}")
    return 0 if report.usable else 2


def cmd_train(args) -> int:
    store = _store(args)
    # One job per device across processes: the app and other CLI runs take the same lock (unless allowed).
    lock = _device_lock(args, store) if _rank() == 0 else None
    try:
        return _train(args, store, lock)
    finally:
        if lock is not None:
            lock.release()


def _device_lock(args, store):
    """The workspace's lock of the run's device, or None with --allow-parallel / WORKBENCH_ALLOW_PARALLEL=1."""
    from core.devicelock import DeviceLock, parallel_allowed
    from core.jobs import device_key

    if args.allow_parallel or parallel_allowed():
        return None
    config = store.get(args.resume).config() if args.resume else _config_from_args(args)
    lock = DeviceLock(store.root.parent, device_key(config))
    lock.acquire(run_id=args.resume or "", by="python -m core train")
    return lock


def _train(args, store, lock) -> int:
    from core.progress import FileStopSignal, StopSignal

    rank = _rank()
    if args.resume:
        # Only rank 0 judges the state: the other ranks may look after rank 0 has already set it running.
        run = _resumable(store, args.resume) if rank == 0 else store.get(args.resume)
        config, resume = run.config(), True
    else:
        config, resume = _config_from_args(args), False
        from core.preflight import preflight

        preflight(config, store.root)  # a config that cannot start gets no run folder (every rank says the same)
        run = store.create(config) if rank == 0 else _scratch_run(config)
    if lock is not None:
        lock.set_run(run.id)
    if rank == 0:
        print(f"run {run.id} -> {run.dir}", flush=True)
    # stop.json in the run folder stops it too: the app's Stop button reaches a run the command line trains.
    stop = FileStopSignal(run.dir) if rank == 0 else StopSignal()
    if rank == 0:
        stop.clear()  # a request left from an earlier attempt is not for this one
    # Ctrl-C stops cleanly (checkpoint, 'stopped'); the caller's handler comes back afterwards, so main()
    # called in-process (tests, notebooks) does not leave Ctrl-C disarmed.
    previous = signal.signal(signal.SIGINT, lambda *_: stop.set())
    try:
        return _train_and_report(args, config, run, stop, resume, rank)
    finally:
        signal.signal(signal.SIGINT, previous)


def _resumable(store, run_id: str):
    """The same rule as the UI's Resume: only a stopped, failed or interrupted run continues (never a live one)."""
    from core.runs import RESUMABLE

    run = store.get(run_id)  # a run whose process is gone reads as interrupted
    if run.state not in RESUMABLE:
        raise WorkbenchError(
            "error.run.not_resumable", hint="error.hint.cli_repeat", run=run_id, state=state_key(run.state)
        )
    return run


def _train_and_report(args, config: RunConfig, run, stop, resume: bool, rank: int) -> int:
    from core.runs import ENDED_WELL
    from core.training import train

    def show(rec: dict[str, Any]) -> None:
        if rank == 0 and not args.quiet:
            print(
                f"step {rec['step']:>6}  epoch {rec['epoch']:.2f}  loss {rec['loss']:.4f}  lr {rec['lr']:.2e}  "
                f"{rec['samples_per_s']:.1f} samples/s  eta {rec['eta_s']:.0f}s",
                flush=True,
            )

    try:
        result = train(config, run, stop=stop, resume=resume, on_progress=show, process_ends=args.process_ends)
    finally:
        if rank != 0 and not args.resume:
            import shutil

            shutil.rmtree(run.dir.parent, ignore_errors=True)  # the scratch store _scratch_run made
    if rank == 0:
        summary = {
            "run": run.id,
            "state": result.state,
            "message": result.message,
            "steps": result.steps,
            "train_seconds": round(result.train_seconds, 2),
            "samples_per_s": round(result.samples_per_s, 2),
            **{k: v for k, v in result.results.items() if k in ("validation", "test")},
        }
        findings = _diagnosis(run)
        summary["diagnosis"] = [f.to_dict() for f in findings]
        if not args.quiet:
            from core.diagnose import format_findings

            print(format_findings(findings, str(run.dir / "config.json"), run.id), flush=True)
        print(json.dumps(summary))
    return 0 if result.state in ENDED_WELL else 1


def _diagnosis(run) -> list:
    """The run's diagnosis in plain words; a run too damaged to judge gets none rather than a traceback."""
    from core.diagnose import diagnose_run

    try:
        return diagnose_run(run)
    except Exception:  # noqa: BLE001 - the run's own result is what matters here
        return []


def _rank() -> int:
    import os

    return int(os.environ.get("RANK", "0")) if int(os.environ.get("WORLD_SIZE", "1")) > 1 else 0


def _scratch_run(config: RunConfig):
    """Non-zero ranks of a distributed launch write nothing; they get a throwaway folder, removed at exit."""
    import atexit
    import shutil
    import tempfile

    from core.runs import RunStore

    folder = Path(tempfile.mkdtemp(prefix="workbench-rank-"))
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    return RunStore(folder).create(config)


def cmd_eval(args) -> int:
    from core.evaluation import evaluate_run

    run = _store(args).get(args.run)
    report = evaluate_run(run, split=args.split, file=Path(args.file) if args.file else None, device=args.device)
    metrics = {k: v for k, v in report.metrics.items() if k not in ("per_class",) or args.details}
    print(json.dumps({"run": run.id, "split": args.file or args.split, "rows": len(report.predictions), **metrics}))
    if args.output:
        report.predictions.to_csv(args.output, index=False)
    return 0


def _load_bundle(args):
    from core.models import load_for_inference

    return load_for_inference(_store(args).get(args.run).model_dir, device=args.device)


def _texts(args) -> list[str]:
    if args.file:
        return [line.strip() for line in Path(args.file).read_text(encoding="utf-8").splitlines() if line.strip()]
    if args.text:
        return list(args.text)
    raise WorkbenchError("error.cli.no_text")


def cmd_predict(args) -> int:
    from core.calibration import labels_for
    from core.generation import predict_proba

    if args.output:
        return _predict_file(args)
    bundle = _load_bundle(args)
    texts = _texts(args)
    probs = predict_proba(bundle, texts, device=args.device)
    names = bundle.label_names or [str(i) for i in range(probs.shape[1])]
    decided = labels_for(probs, names, bundle.decision) if bundle.task == "classification" else []
    for i, (text, row) in enumerate(zip(texts, probs)):
        if bundle.task == "regression":
            print(json.dumps({"text": text, "value": float(row[0])}))
        else:
            print(
                json.dumps(
                    {
                        "text": text,
                        "label": decided[i],
                        "probabilities": {n: round(float(p), 4) for n, p in zip(names, row)},
                    }
                )
            )
    return 0


def _predict_file(args) -> int:
    """--file F --output out.csv: every row of F with its prediction, streamed in chunks."""
    from core.batch_predict import predict_file

    if not args.file:
        raise WorkbenchError("error.cli.output_needs_file")
    run = _store(args).get(args.run)
    bundle = _load_bundle(args)

    def show(done: int, total: int) -> None:
        if not args.quiet:
            print(f"\r{done:,} / ~{total:,} rows", end="", file=sys.stderr, flush=True)

    summary = predict_file(
        bundle,
        args.file,
        args.output,
        text_column=args.text_column or run.config().data.text_column,
        pair_column=args.text_pair_column or run.config().data.text_pair_column,
        max_length=run.config().train.max_length,
        chunk_rows=args.chunk_rows,
        device=args.device,
        on_progress=show,
    )
    if not args.quiet:
        print(file=sys.stderr)
    print(
        json.dumps(
            {
                "run": run.id,
                "output": str(summary.output),
                "rows": summary.rows,
                "predicted": summary.predicted,
                "bad_rows": summary.bad_rows,
                "columns": summary.columns,
                "message": summary.message(),
            }
        )
    )
    return 0


def cmd_generate(args) -> int:
    from core.generation import GenerationSettings, stream

    bundle = _load_bundle(args)
    settings = GenerationSettings(
        strategy=args.strategy,
        max_new_tokens=args.max_new_tokens,
        num_beams=args.num_beams,
        temperature=args.temperature,
        top_k=args.top_k,
        top_p=args.top_p,
        repetition_penalty=args.repetition_penalty,
        seed=args.seed,
    )
    formatted = bundle.sft is not None and bundle.sft.formatted
    for prompt in _texts(args):
        if formatted or args.file:
            # One JSON object per line: the prompt and only the model's answer (up to its stop token).
            response = "".join(stream(bundle, prompt, settings, device=args.device))
            print(json.dumps({"prompt": prompt, "response": response}, ensure_ascii=False), flush=True)
            continue
        print(prompt, end="", flush=True)
        for piece in stream(bundle, prompt, settings, device=args.device):
            print(piece, end="", flush=True)
        print()
    return 0


def cmd_runs(args) -> int:
    from core.i18n import state_label

    rows = _store(args).summaries()
    if args.json:
        print(json.dumps(rows))
        return 0
    if not rows:
        print("No runs yet.")
    for r in rows:
        acc = r.get("test_accuracy", r.get("val_accuracy"))
        extra = f" acc={acc:.3f}" if isinstance(acc, float) else ""
        print(f"{r['run']:<50} {state_label(r['state']):<12} {r['task']:<15} {r['model']}{extra}")
    return 0


def cmd_merge(args) -> int:
    from core.models import merge_adapter

    run = _store(args).get(args.run)
    out = merge_adapter(run.model_dir, Path(args.out))
    print(json.dumps({"run": run.id, "merged": str(out)}))
    return 0


def cmd_keep_best(args) -> int:
    """A finished run's best checkpoint becomes its model, scored again (the overfitting diagnosis's fix)."""
    from core.best_checkpoint import keep_best_checkpoint, model_step_of

    run = _store(args).get(args.run)
    results = keep_best_checkpoint(run)
    scores = {k: v for k, v in results.items() if k in ("validation", "test")}
    print(json.dumps({"run": run.id, "model_step": model_step_of(run), **scores}))
    return 0


def cmd_fetch_dataset(args) -> int:
    """A public dataset by name (or a save_to_disk folder) written as one Parquet or CSV file."""
    from core.hub_data import load_public

    frame = load_public(args.name, args.config_name, args.split)
    out = Path(args.output)
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.suffix.lower() == ".csv":
        frame.to_csv(out, index=False)
    else:
        frame.to_parquet(out, index=False)
    print(
        json.dumps(
            {
                "dataset": args.name,
                "split": args.split,
                "rows": len(frame),
                "columns": list(frame.columns),
                "output": str(out),
            }
        )
    )
    return 0


def cmd_report(args) -> int:
    from core.report import comparison_report, run_report

    store = _store(args)
    runs = [store.get(r) for r in args.run]
    page = run_report(runs[0]) if len(runs) == 1 else comparison_report(runs)
    Path(args.output).write_text(page, encoding="utf-8")
    print(json.dumps({"runs": [r.id for r in runs], "output": args.output, "bytes": len(page.encode())}))
    return 0


def cmd_export_script(args) -> int:
    from core.script_export import write_script

    run = _store(args).get(args.run)
    path = write_script(run, Path(args.output))
    print(json.dumps({"run": run.id, "script": str(path), "run_it": f"python {path}"}))
    return 0


def _space(items: list[str]) -> dict[str, list]:
    """--space learning_rate=1e-4,3e-4 --space batch_size=8,16 -> {"learning_rate": [...], "batch_size": [...]}."""
    from core.search import PARAMS

    space: dict[str, list] = {}
    for item in items or []:
        name, _, values = item.partition("=")
        name = name.strip().replace("-", "_")
        if name == "lr":
            name = "learning_rate"
        if name not in PARAMS or not values:
            raise WorkbenchError("error.cli.space_syntax", hint="error.hint.cli_space", item=item, names=PARAMS)
        cast = int if name == "batch_size" else float
        try:
            space[name] = [cast(v) for v in values.split(",") if v.strip()]
        except ValueError:
            raise WorkbenchError("error.cli.space_number", item=item) from None
    return space


def cmd_search(args) -> int:
    from core.jobs import JobRegistry
    from core.runs import ENDED_WELL
    from core.search import (
        TRIAL_ACTIVE,
        SearchConfig,
        SearchSpace,
        SearchStore,
        best_config,
        results_table,
        run_search,
    )

    base = _config_from_args(args)
    defaults = SearchSpace()
    space = SearchSpace(
        **{
            "learning_rate": defaults.learning_rate,
            "batch_size": [base.train.batch_size],
            "epochs": [base.train.epochs],
            "weight_decay": [base.train.weight_decay],
            **_space(args.space),
        }
    )
    cfg = SearchConfig(
        base=base,
        space=space,
        strategy=args.strategy,
        max_trials=args.max_trials,
        folds=args.folds,
        metric=args.metric or "",
        seed=args.search_seed,
        name=args.name or "",
    )
    root = Path(args.workspace) / "searches" if args.workspace else None
    store = SearchStore(root)
    record = store.create(cfg)
    stop = store.stop_signal(record["id"])  # the app's Stop reaches this search through its folder
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    print(f"search {record['id']}: {len(record['trials'])} trials -> {store.folder(record['id'])}", flush=True)
    done: set[int] = set()

    def show(rec: dict[str, Any]) -> None:
        for t in rec["trials"]:
            if t["state"] not in TRIAL_ACTIVE and t["trial"] not in done:
                done.add(t["trial"])
                print(
                    json.dumps({"trial": t["trial"], **t["params"], cfg.metric: t.get("metric"), "state": t["state"]}),
                    flush=True,
                )

    registry = JobRegistry(_store(args), allow_parallel=args.allow_parallel or None)
    record = run_search(record["id"], registry, stop, store, on_update=show)
    print(
        json.dumps(
            {
                "search": record["id"],
                "state": record["state"],
                "message": record["message"],
                "best_trial": record["best_trial"],
                "table": results_table(record),
            }
        )
    )
    if record["best_trial"]:
        path = store.folder(record["id"]) / "best_config.json"
        path.write_text(best_config(record).to_json(), encoding="utf-8")
        print(f"best config: {path}  (train it with: python -m core train --config {path})")
    return 0 if record["state"] in ENDED_WELL else 1


def cmd_distill_report(args) -> int:
    from core.distill import compare_models, format_table, teacher_run_of

    store = _store(args)
    student = store.get(args.run)
    teacher_id = student.config().model.teacher_run
    if not teacher_id:
        raise WorkbenchError("error.cli.not_distilled", hint="error.hint.pick_distilled", run=student.id)
    rows = compare_models(student, teacher_run_of(teacher_id, store.root), split=args.split, device=args.device)
    print(json.dumps(rows) if args.json else format_table(rows))
    return 0


# ------------------------------------------------------------------ know your data and your model (issue 18)
def cmd_label_issues(args) -> int:
    from core.label_issues import find_label_issues

    rows, issues = find_label_issues(
        args.file,
        text_column=args.text_column,
        label_column=args.label_column,
        folds=args.folds,
        source=args.model,
        seed=args.seed,
    )
    for issue in issues[: args.limit or None]:
        if args.json:
            print(json.dumps(issue.to_dict(), ensure_ascii=False))
        else:
            print(
                f"row {issue.row:>6}  given {issue.given_label!r:<14} suggested {issue.suggested_label!r:<14} "
                f"score {issue.score:.3f}  {issue.text[:70]}"
            )
    if not args.json:
        print(f"{len(issues)} of {len(rows.labels)} rows flagged (lowest score: most likely mislabelled).")
    return 0


def cmd_bias(args) -> int:
    from core.bias import bias_report

    run = _store(args).get(args.run)
    report = bias_report(
        run,
        Path(args.file),
        pairs_path=Path(args.pairs) if args.pairs else None,
        by=args.by,
        words=args.words,
        device=args.device,
    )
    if args.json:
        print(json.dumps(report, ensure_ascii=False, default=float))
        return 0
    for column, sl in report["slices"].items():
        print(f"== {column}")
        for g in sl["groups"]:
            print(
                f"  {g['group']:<20} rows {g['rows']:>6}  "
                + "  ".join(
                    f"{k} {v:.3f}" if v is not None else f"{k} –" for k, v in g.items() if k not in ("group", "rows")
                )
            )
        print(f"  {sl['reading']}")
    print(report["swap_reading"])
    return 0


def cmd_calibration(args) -> int:
    from core import calibration
    from core.evaluation import evaluate_run

    run = _store(args).get(args.run)
    report = evaluate_run(run, split=args.split, file=Path(args.file) if args.file else None, device=args.device)
    if report.task != "classification":
        raise WorkbenchError("error.cli.calibration_task")
    names = report.label_names
    probs = report.predictions[[f"p({n})" for n in names]].to_numpy()
    labels = report.predictions["label"].to_numpy()
    out = {
        "run": run.id,
        "ece": calibration.expected_calibration_error(probs, labels, args.bins),
        "bins": calibration.reliability(probs, labels, args.bins),
    }
    out["reading"] = calibration.reading(out["ece"])
    if len(names) == 2:
        positive = args.positive or names[1]
        if positive not in names:
            raise WorkbenchError(
                "error.cli.not_a_label", hint="error.hint.labels", label=positive, labels=", ".join(names)
            )
        decision = calibration.Decision(positive, args.threshold, args.band)
        pos = names.index(positive)
        out["decision"] = {
            **dataclasses.asdict(decision),
            **calibration.threshold_effect(probs[:, pos], labels == pos, decision),
        }
        if args.save:
            calibration.save_decision(run.model_dir, decision)
            out["saved"] = True
    elif args.save:
        raise WorkbenchError("error.cli.threshold_binary")
    print(json.dumps(out, ensure_ascii=False))
    return 0


def cmd_learning_curve(args) -> int:
    from core.jobs import JobRegistry
    from core.learning_curve import CurveStore, run_learning_curve
    from core.search import SearchStore
    from core.training import StopSignal

    base = _config_from_args(args)
    ws = Path(args.workspace) if args.workspace else None
    store = CurveStore(ws / "curves" if ws else None)
    fractions = [float(f) for f in args.fractions.split(",")]
    if not fractions or any(not 0 < f <= 1 for f in fractions):
        raise WorkbenchError("error.cli.fractions")
    record = store.create(base, fractions, args.metric or "")
    stop = StopSignal()
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    searches = SearchStore(ws / "searches" if ws else None)
    record = run_learning_curve(record["id"], JobRegistry(_store(args)), store, searches, stop)
    print(json.dumps({k: record[k] for k in ("id", "state", "message", "metric", "points", "reading")}))
    return 0 if record["state"] == "finished" else 1


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m core", description="Fine-Tuning Workbench engine (no UI).")
    p.add_argument("--workspace", help="Workspace folder (default: $WORKBENCH_HOME or ./workspace).")
    sub = p.add_subparsers(dest="command", required=True)

    c = sub.add_parser("check", help="Read a data file and print the data check (exit 0 when usable).")
    c.add_argument("file", help="csv, tsv, json, jsonl, parquet or txt file")
    c.add_argument(
        "--task",
        default="classification",
        choices=["classification", "regression", "generation"],
        help="What the data is for (default: classification); generation reads a .txt as one corpus",
    )
    c.add_argument("--text-column", help="Column holding the text (default: guessed)")
    c.add_argument("--text-pair-column", help="Second text column for sentence pairs")
    c.add_argument("--label-column", help="Column holding the label (default: guessed)")
    c.add_argument("--max-length", type=int, default=128, help="Max tokens, to count truncated rows")
    c.add_argument("--max-mb", type=float, default=200.0, help="Refuse files larger than this")
    c.set_defaults(func=cmd_check)

    t = sub.add_parser("train", help="Train a model; every config setting is an option.")
    t.add_argument("--config", help="A run's config.json to repeat it exactly (options given override it)")
    t.add_argument("--resume", metavar="RUN", help="Continue a stopped or interrupted run from its last checkpoint")
    t.add_argument("--name", help="A name for the run")
    t.add_argument("--quiet", action="store_true", help="Print only the final JSON summary")
    t.add_argument("--allow-parallel", action="store_true", help=PARALLEL_HELP)
    _add_config_options(t)
    t.set_defaults(func=cmd_train)

    e = sub.add_parser("eval", help="Score a run on one of its splits or on a file; prints JSON.")
    e.add_argument("run", help="Run id (see 'runs')")
    e.add_argument("--split", default="test", choices=["train", "validation", "test"], help="Saved split to score")
    e.add_argument("--file", help="A new file with the same columns as the training data")
    e.add_argument("--output", help="Write per-example predictions to this CSV")
    e.add_argument("--details", action="store_true", help="Include per-class scores")
    e.add_argument("--device", default="cpu", help=DEVICE_HELP)
    e.set_defaults(func=cmd_eval)

    for name, func, helptext in (
        ("predict", cmd_predict, "Classify text; prints one JSON line per text."),
        (
            "generate",
            cmd_generate,
            "Answer prompts with a generation run (formatted as it was trained); with --file, or for a run "
            "trained on prompt/response or chat data, prints one JSON line per prompt: {prompt, response}.",
        ),
    ):
        g = sub.add_parser(name, help=helptext)
        g.add_argument("run", help="Run id")
        g.add_argument("--text", nargs="*", help="Text(s) or prompt(s)")
        g.add_argument("--file", help="A file with one text per line (with --output: any data file, every row)")
        g.add_argument("--device", default="cpu", help=DEVICE_HELP)
        if name == "predict":
            g.add_argument(
                "--output", help="Predict every row of --file and write them, with the predictions, here (CSV)"
            )
            g.add_argument("--text-column", help="With --output: the column holding the text (default: the run's)")
            g.add_argument("--text-pair-column", help="With --output: the second text column, for sentence pairs")
            g.add_argument(
                "--chunk-rows", type=int, default=2000, help="With --output: rows read and predicted at once"
            )
            g.add_argument("--quiet", action="store_true", help="With --output: no progress on stderr")
        if name == "generate":
            g.add_argument(
                "--strategy",
                default="greedy",
                choices=["greedy", "beam", "sample"],
                help="greedy: most likely token; beam: search several continuations; sample: random, shaped below",
            )
            g.add_argument("--max-new-tokens", type=int, default=64, help="Most tokens to add to each prompt")
            g.add_argument("--num-beams", type=int, default=4, help="Beam: continuations searched at once")
            g.add_argument("--temperature", type=float, default=0.8, help="Sample: below 1 safer, above 1 wilder")
            g.add_argument("--top-k", type=int, default=50, help="Sample: draw among the k likeliest tokens (0: off)")
            g.add_argument("--top-p", type=float, default=0.95, help="Sample: draw within this probability mass")
            g.add_argument("--repetition-penalty", type=float, default=1.1, help="Above 1 discourages repeats")
            g.add_argument("--seed", type=int, default=0, help="Sample: the same seed gives the same text")
        g.set_defaults(func=func)

    r = sub.add_parser("runs", help="List runs and their status.")
    r.add_argument("--json", action="store_true", help="Print as JSON")
    r.set_defaults(func=cmd_runs)

    m = sub.add_parser("merge", help="Merge a LoRA run's adapter into its base model and save a plain model.")
    m.add_argument("run", help="Run id of a LoRA run")
    m.add_argument("--out", required=True, help="Folder to write the merged model")
    m.set_defaults(func=cmd_merge)

    kb = sub.add_parser("keep-best", help="Make a finished run's best checkpoint its model, and score it again.")
    kb.add_argument("run", help="Run id")
    kb.set_defaults(func=cmd_keep_best)

    s = sub.add_parser("search", help="Grid or random search over learning rate, batch size, epochs, weight decay.")
    s.add_argument("--space", action="append", metavar="NAME=V1,V2", help="Values to try, e.g. learning_rate=1e-4,3e-4")
    s.add_argument("--strategy", default="grid", choices=["grid", "random"], help="Every combination, or a draw")
    s.add_argument("--max-trials", type=int, default=8, help="Random: trials to draw. Grid: the most allowed")
    s.add_argument("--folds", type=int, default=0, help="k-fold cross-validation on the training split (0: off)")
    s.add_argument("--metric", help="Validation metric that ranks trials (default val_accuracy / val_loss)")
    s.add_argument("--search-seed", type=int, default=0, help="Seed of the random draws and the folds")
    s.add_argument("--config", help="A run's config.json as the base of every trial")
    s.add_argument("--name", help="A name for the search")
    s.add_argument("--allow-parallel", action="store_true", help=PARALLEL_HELP)
    _add_config_options(s)
    s.set_defaults(func=cmd_search)

    f = sub.add_parser("fetch-dataset", help="Load a public dataset by name (or a save_to_disk folder) into a file.")
    f.add_argument("name", help="Hub name, e.g. imdb or glue, or a folder saved with save_to_disk")
    f.add_argument("--config-name", help="The dataset's configuration, e.g. sst2 for glue")
    f.add_argument("--split", default="train", help="Which split (default: train)")
    f.add_argument("--output", required=True, help="File to write: .parquet (default) or .csv")
    f.set_defaults(func=cmd_fetch_dataset)

    rp = sub.add_parser("report", help="One self-contained HTML page about a run (or a comparison of several).")
    rp.add_argument("run", nargs="+", help="Run id; two or more make a comparison")
    rp.add_argument("--output", required=True, help="The .html file to write")
    rp.set_defaults(func=cmd_report)

    x = sub.add_parser("export-script", help="Write a standalone train.py (torch, transformers, peft, pandas).")
    x.add_argument("run", help="Run id")
    x.add_argument("--output", required=True, help="The .py file to write")
    x.set_defaults(func=cmd_export_script)

    d = sub.add_parser("distill-report", help="A distilled run beside its teacher: accuracy, size and speed.")
    d.add_argument("run", help="The student run id")
    d.add_argument("--split", default="test", choices=["validation", "test"], help="Saved split to score")
    d.add_argument("--device", default="cpu", help=DEVICE_HELP)
    d.add_argument("--json", action="store_true", help="Print as JSON")
    d.set_defaults(func=cmd_distill_report)

    li = sub.add_parser("label-issues", help="Rows whose label looks wrong (out-of-fold confident learning).")
    li.add_argument("file", help="A labelled classification file (csv, tsv, json, jsonl, parquet)")
    li.add_argument("--folds", type=int, default=5, help="Cross-validation folds (default 5)")
    li.add_argument("--json", action="store_true", help="One JSON object per flagged row")
    li.add_argument("--text-column", help="Column holding the text (default: guessed)")
    li.add_argument("--label-column", help="Column holding the label (default: guessed)")
    li.add_argument("--model", default="default", help="Frozen encoder for the embeddings (default: MiniLM)")
    li.add_argument("--limit", type=int, default=0, help="Print at most this many rows (0: all)")
    li.add_argument("--seed", type=int, default=0, help="Seed of the fold assignment")
    li.set_defaults(func=cmd_label_issues)

    b = sub.add_parser("bias", help="Metrics per group and a counterfactual word-swap test of a classifier run.")
    b.add_argument("run", help="Run id")
    b.add_argument("--file", required=True, help="A labelled file with the run's columns (and any group columns)")
    b.add_argument("--pairs", help="CSV of word pairs to swap (default: data/bias/pairs_en.csv, +pairs_zh.csv)")
    b.add_argument("--by", nargs="*", default=[], help="Columns of the file to slice the metrics by")
    b.add_argument("--words", nargs="*", default=[], help="Also slice by whether a text mentions these words")
    b.add_argument("--json", action="store_true", help="Print as JSON")
    b.add_argument("--device", default="cpu", help=DEVICE_HELP)
    b.set_defaults(func=cmd_bias)

    ca = sub.add_parser("calibration", help="Reliability bins, calibration error and a binary decision threshold.")
    ca.add_argument("run", help="Run id")
    ca.add_argument("--split", default="validation", choices=["train", "validation", "test"], help="Saved split")
    ca.add_argument("--file", help="A labelled file instead of a saved split")
    ca.add_argument("--bins", type=int, default=10, help="Reliability bins")
    ca.add_argument("--positive", help="Binary: the positive label (default: the second label)")
    ca.add_argument("--threshold", type=float, default=0.5, help="Binary: P(positive) at or above it says positive")
    ca.add_argument("--band", type=float, default=0.0, help="Binary: answer 'unsure' within this of the threshold")
    ca.add_argument("--save", action="store_true", help="Save the threshold with the model (used by predict)")
    ca.add_argument("--device", default="cpu", help=DEVICE_HELP)
    ca.set_defaults(func=cmd_calibration)

    lc = sub.add_parser("learning-curve", help="Train on 10/25/50/100%% of the training split; read the curve.")
    lc.add_argument("--fractions", default="0.1,0.25,0.5,1", help="Shares of the training split (comma-separated)")
    lc.add_argument("--metric", help="Validation metric (default val_accuracy / val_loss)")
    lc.add_argument("--config", help="A run's config.json as the base of every point")
    lc.add_argument("--name", help="A name for the runs")
    _add_config_options(lc)
    lc.set_defaults(func=cmd_learning_curve)
    return p


def main(argv: list[str] | None = None, *, process_ends: bool = False) -> int:
    """``process_ends``: run as ``python -m core``, whose process ends with the command (a training run then
    skips its closing collection, see core.training.train); False for a caller that goes on."""
    import os

    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    args = build_parser().parse_args(argv)
    args.process_ends = process_ends
    try:
        return args.func(args)
    except WorkbenchError as err:
        print(i18n.t("error.cli.prefix", text=error_text(err)), file=sys.stderr)  # in LANG's language
        return 2
    except KeyboardInterrupt:
        print("Interrupted.", file=sys.stderr)
        return 130
