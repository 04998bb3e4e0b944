"""Data: bring a file, map its columns, check it, choose the split, preview augmentation, save it."""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from ui import charts, keys, nav
from ui.forms import task_name
from ui.guard import guarded
from ui.i18n import error_text, language, t, translated_options
from ui.label_review import label_review_section
from ui.safe import md
from ui.state import DATASET_PARAM, counting_tokenizer, dataset_store
from ui.uploads import stage

SAMPLES = Path(__file__).resolve().parent.parent / "data" / "samples"
# Literal keys (the catalog test finds them in the code); the values widgets return stay English, so session
# state, the URL and the engine see the same value in every language.
TASK_HELP = {
    "classification": "datapage.task.classification",
    "regression": "datapage.task.regression",
    "generation": "datapage.task.generation",
}
SOURCES = {
    "Upload a file": "datapage.source.upload",
    "Use a bundled sample": "datapage.source.sample",
    "A public dataset (by name)": "datapage.source.public",
}
# The bundled sample offered first, by the reader's language.
DEFAULT_SAMPLE = {"en": "sentiment.csv", "zh": "sentiment_zh.csv"}
NONE = "(none)"
LEVEL_SHOW = {"ok": st.success, "warning": st.warning, "problem": st.error}


def read(path: str, stamp: float, corpus: bool):
    # The spinner's text is the reader's language, so it is set here rather than in the cache decorator.
    with st.spinner(t("datapage.spinner.read")):
        return _read(path, stamp, corpus)


@st.cache_data(show_spinner=False, max_entries=8)
def _read(path: str, stamp: float, corpus: bool):
    from core.data import read_table

    return read_table(path, corpus=corpus)


def check(*args):
    """The cached data check (_check's arguments) under a spinner in the reader's language."""
    with st.spinner(t("datapage.spinner.check")):
        return _check(*args)


@st.cache_data(show_spinner=False, max_entries=8)
def _check(
    path: str,
    stamp: float,
    corpus: bool,
    task: str,
    text: str,
    pair,
    label,
    instruction,
    system,
    max_length: int,
    exact: bool,
    split: tuple | None,
):
    """The data check, and the split sizes when a split is asked for (cached: the page reruns on every click)."""
    from core.data import ColumnChoice, check_data, split_frame

    frame = _read(path, stamp, corpus).frame
    columns = ColumnChoice(text, pair, label, instruction, system)
    splits = None
    split_error = None
    if split is not None:
        val, test, stratify, seed = split
        try:
            splits = split_frame(
                frame, val_fraction=val, test_fraction=test, stratify_column=label if stratify else None, seed=seed
            )
        except Exception as err:  # noqa: BLE001 - shown next to the split settings
            split_error = err
    tokenizer = counting_tokenizer() if exact else None
    report = check_data(frame, columns, task, max_length=max_length, tokenizer=tokenizer, splits=splits)
    sizes = None if splits is None else (len(splits.train), len(splits.validation), len(splits.test))
    return report, sizes, split_error


def choose_file() -> tuple[Path | None, str]:
    from core.data import EXTENSIONS

    source = st.radio(
        t("datapage.source.label"),
        list(SOURCES),
        format_func=translated_options(SOURCES),
        horizontal=True,
        key="data_source",
    )
    if source == "A public dataset (by name)":
        from ui.share import public_dataset

        return public_dataset(dataset_store().root)
    if source == "Upload a file":
        upload = st.file_uploader(
            t("datapage.upload.label"),
            type=[e.lstrip(".") for e in EXTENSIONS],
            key="data_upload",
            help=t("datapage.upload.help"),
        )
        if upload is None:
            return None, ""
        return stage(upload, "data"), upload.name
    samples = sorted(p.name for p in SAMPLES.iterdir() if p.suffix in EXTENSIONS) if SAMPLES.is_dir() else []
    if not samples:
        st.info(t("datapage.samples.none"))
        return None, ""
    first = DEFAULT_SAMPLE.get(language(), DEFAULT_SAMPLE["en"])
    name = st.selectbox(
        t("datapage.samples.label"),
        samples,
        index=samples.index(first) if first in samples else 0,
        key="data_sample",
        help=t("datapage.samples.help"),
    )
    return SAMPLES / name, name


def column_choice(frame, task: str, file_key: str):
    from core.data import ColumnChoice, guess_columns

    names = [str(c) for c in frame.columns]
    guess = guess_columns(frame, task)
    if task == "generation":
        return generation_columns(frame, names, guess, file_key)
    c1, c2, c3 = st.columns(3)
    text = c1.selectbox(
        t("datapage.col.text"),
        names,
        index=names.index(guess.text),
        key=f"col_text_{file_key}",
        help=t("datapage.col.text.help"),
    )
    pair_options = [NONE] + names
    pair = c2.selectbox(
        t("datapage.col.pair"),
        pair_options,
        index=pair_options.index(guess.text_pair) if guess.text_pair in names else 0,
        key=f"col_pair_{file_key}",
        format_func=translated_options({NONE: "datapage.none"}),
        help=t("datapage.col.pair.help"),
    )
    label = None
    if task != "generation":
        label = c3.selectbox(
            t("datapage.col.label"),
            names,
            index=names.index(guess.label) if guess.label in names else 0,
            key=f"col_label_{file_key}",
            help=t("datapage.col.label.help"),
        )
    return ColumnChoice(text, None if pair == NONE else pair, label)


def generation_columns(frame, names: list[str], guess, file_key: str):
    """Generation data comes in three shapes: conversations, prompt and response, or plain text."""
    from core.data import ColumnChoice
    from core.sft import chat_column

    chat = chat_column(frame)
    if chat is not None:
        st.info(t("datapage.shape.chat"))
        st.caption(t("datapage.chat.caption"))
        st.text(chat)
        return ColumnChoice(chat)
    c1, c2, c3, c4 = st.columns(4)
    options = [NONE] + names

    def optional(container, label: str, guessed: str | None, key: str, help_text: str) -> str:
        index = options.index(guessed) if guessed in names else 0
        return container.selectbox(
            label,
            options,
            index=index,
            key=f"{key}_{file_key}",
            format_func=translated_options({NONE: "datapage.none"}),
            help=help_text,
        )

    response = optional(
        c2,
        t("datapage.col.response"),
        guess.text_pair,
        "col_pair",
        t("datapage.col.response.help"),
    )
    text = c1.selectbox(
        t("datapage.col.prompt") if response != NONE else t("datapage.col.text"),
        names,
        index=names.index(guess.text),
        key=f"col_text_{file_key}",
        help=t("datapage.col.prompt.help"),
    )
    instruction = system = NONE
    if response != NONE:
        instruction = optional(
            c3,
            t("datapage.col.instruction"),
            guess.instruction,
            "col_instr",
            t("datapage.col.instruction.help"),
        )
        system = optional(
            c4,
            t("datapage.col.system"),
            guess.system,
            "col_system",
            t("datapage.col.system.help"),
        )
    st.info(t("datapage.shape.pairs") if response != NONE else t("datapage.shape.corpus"))

    def pick(value: str) -> str | None:
        return None if value == NONE else value

    return ColumnChoice(text, pick(response), None, pick(instruction), pick(system))


def split_settings(task: str, file_key: str):
    st.markdown(t("datapage.split.heading"))
    separate = st.toggle(t("datapage.split.separate"), key=f"separate_{file_key}")
    extra: dict[str, tuple[str, Path]] = {}
    if separate:
        from core.data import EXTENSIONS

        types = [e.lstrip(".") for e in EXTENSIONS]
        c1, c2 = st.columns(2)
        val_up = c1.file_uploader(t("datapage.split.val_file"), type=types, key=f"val_upload_{file_key}")
        test_up = c2.file_uploader(t("datapage.split.test_file"), type=types, key=f"test_upload_{file_key}")
        for role, up in (("validation", val_up), ("test", test_up)):
            if up is not None:
                extra[role] = (up.name, stage(up, role))
    c1, c2, c3, c4 = st.columns(4)
    val = c1.number_input(
        t("datapage.split.val"),
        0.0,
        0.4,
        0.1,
        0.05,
        key=f"val_frac_{file_key}",
        disabled="validation" in extra,
        help=t("datapage.split.val.help"),
    )
    test = c2.number_input(
        t("datapage.split.test"),
        0.0,
        0.4,
        0.1,
        0.05,
        key=f"test_frac_{file_key}",
        disabled="test" in extra,
        help=t("datapage.split.test.help"),
    )
    stratify = c3.toggle(
        t("datapage.split.stratify"),
        value=task == "classification",
        disabled=task != "classification",
        key=f"stratify_{file_key}",
        help=t("datapage.split.stratify.help"),
    )
    seed = c4.number_input(
        t("datapage.split.seed"), 0, 2**31 - 1, 42, key=f"seed_{file_key}", help=t("datapage.split.seed.help")
    )
    val = 0.0 if "validation" in extra else float(val)
    test = 0.0 if "test" in extra else float(test)
    return val, test, bool(stratify and task == "classification"), int(seed), extra


def class_names_editor(counts: dict[str, int], key: str) -> tuple[dict[str, str], str | None]:
    """The classes found, with a name for each (0 -> negative): the model and every page then use the names.

    Returns ({value: name} for the renamed classes, an error message or None). Values and names come from the
    user's file and typing: they are shown in a table (text), never as markup.
    """
    st.markdown(t("datapage.classes.heading"))
    table = [{"value in the file": value, "rows": n, "name": value} for value, n in counts.items()]
    # The table's own column names stay English (the editor's state and the code read them); the reader sees
    # the headers in their language.
    edited = st.data_editor(
        table,
        key=f"class_names_{key}",
        hide_index=True,
        disabled=["value in the file", "rows"],
        column_config={
            "value in the file": st.column_config.TextColumn(t("datapage.classes.value")),
            "rows": st.column_config.NumberColumn(t("datapage.classes.rows")),
            "name": st.column_config.TextColumn(t("datapage.classes.name"), required=True, max_chars=100),
        },
        width="stretch",
    )
    rows = edited.to_dict("records") if hasattr(edited, "to_dict") else list(edited)
    names = {str(r["value in the file"]): str(r.get("name") or "").strip() for r in rows}
    if any(not n for n in names.values()):
        st.error(t("datapage.classes.empty"))
        return {}, "empty"
    if len(set(names.values())) < len(names):
        st.error(t("datapage.classes.duplicate"))
        return {}, "duplicate"
    return {value: name for value, name in names.items() if name != value}, None


def show_findings(report) -> None:
    from ui.i18n import finding_markdown  # in the reader's language, data-borne text escaped (issue 16)

    for finding in report.findings:
        # Findings quote column names, labels and texts from the file: finding_markdown escapes them.
        LEVEL_SHOW.get(finding.level, st.info)(finding_markdown(finding))


def augmentation(frame, columns, file_key: str) -> tuple[list[str], int]:
    from core.augment import OPS, preview

    with st.expander(t("datapage.aug.title")):
        c1, c2 = st.columns([3, 1])
        ops = c1.multiselect(
            t("datapage.aug.ops"),
            list(OPS),
            key=f"aug_ops_{file_key}",
            placeholder=t("datapage.aug.ops.placeholder"),
            help=t("datapage.aug.ops.help"),
        )
        multiplier = c2.number_input(
            t("datapage.aug.copies"),
            0,
            10,
            1 if ops else 0,
            key=f"aug_mult_{file_key}",
            help=t("datapage.aug.copies.help"),
        )
        if ops:
            texts = frame[columns.text].dropna().astype(str).head(5).tolist()
            rows = preview(texts, ops, seed=42)
            original, augmented = t("datapage.aug.original"), t("datapage.aug.augmented")
            st.dataframe(
                {original: [a for a, _ in rows], augmented: [b for _, b in rows]}, hide_index=True, width="stretch"
            )
    return list(ops), int(multiplier) if ops else 0


def save_section(path: Path, original: str, settings, extra, rows: int, usable: bool) -> None:
    store = dataset_store()
    default_name = Path(original).stem or "dataset"
    name = st.text_input(
        t("datapage.save.name"),
        value=default_name,
        key=f"ds_name_{original}",
        help=t("datapage.save.name.help"),
    )
    if not usable:
        st.error(t("datapage.save.blocked"))
    if st.button(t("datapage.save.button"), type="primary", disabled=not usable, icon=":material/save:"):
        dataset = store.save(
            name, path, original, settings, rows=rows, validation=extra.get("validation"), test=extra.get("test")
        )
        st.session_state[keys.SAVED_DATASET] = dataset.name
    saved = st.session_state.get(keys.SAVED_DATASET)
    if saved and store.find(saved) is not None:
        st.success(t("datapage.save.done", name=md(saved)))
        if st.button(t("datapage.save.train"), type="primary", icon=":material/model_training:"):
            st.session_state[keys.TRAIN_DATASET] = saved
            st.switch_page(nav.TRAIN.path, query_params={DATASET_PARAM: saved})


def saved_datasets() -> None:
    store = dataset_store()
    datasets = store.list()
    with st.expander(t("datapage.saved.title", n=len(datasets))):
        if not datasets:
            st.caption(t("datapage.saved.none"))
        for ds in datasets:
            c1, c2 = st.columns([4, 1])
            c1.markdown(
                t(
                    "datapage.saved.line",
                    name=md(ds.name),
                    task=md(task_name(ds.settings.task)),
                    rows=md(ds.rows or "?"),
                    source=md(ds.original_name or ds.file),
                )
            )
            if st.session_state.get(keys.CONFIRM_DELETE_DATASET) != ds.name:
                if c2.button(t("datapage.saved.delete"), key=f"del_ds_{ds.name}"):
                    st.session_state[keys.CONFIRM_DELETE_DATASET] = ds.name
                    st.rerun()
                continue
            # A dataset is someone's upload: one click must not lose it.
            st.warning(t("datapage.saved.confirm", name=md(ds.name)))
            y, n = st.columns(2)
            if y.button(t("datapage.saved.yes"), type="primary", key=f"del_ds_yes_{ds.name}"):
                st.session_state.pop(keys.CONFIRM_DELETE_DATASET, None)
                store.delete(ds.name)
                st.rerun()
            if n.button(t("datapage.saved.cancel"), key=f"del_ds_no_{ds.name}"):
                st.session_state.pop(keys.CONFIRM_DELETE_DATASET, None)
                st.rerun()


def main() -> None:
    from core.datasets import DatasetSettings

    st.title(t("datapage.title"))
    st.caption(t("datapage.intro"))
    path, original = choose_file()
    if path is None:
        saved_datasets()
        label_review_section()
        return
    stamp = path.stat().st_mtime
    from core.config import TASKS

    default_task = "generation" if path.suffix == ".txt" else "classification"
    task = st.selectbox(
        t("datapage.task.label"),
        TASKS,
        index=TASKS.index(default_task),
        key=f"task_{path.name}",
        format_func=translated_options(TASK_HELP),
    )
    corpus = task == "generation"
    table = read(str(path), stamp, corpus)
    frame = table.frame
    st.markdown(
        t("datapage.file.summary", name=md(original), rows=len(frame), columns=len(frame.columns), fmt=md(table.format))
    )
    for note in table.notes:
        st.caption(md(note))
    st.dataframe(frame.head(200), width="stretch", height=240)

    file_key = f"{path.name}-{task}"
    st.subheader(t("datapage.columns"))
    columns = column_choice(frame, task, file_key)

    st.subheader(t("datapage.split"))
    val, test, stratify, seed, extra = split_settings(task, file_key)

    st.subheader(t("datapage.check"))
    c1, c2 = st.columns(2)
    max_length = c1.number_input(
        t("datapage.check.max_length"),
        8,
        8192,
        128,
        8,
        key=f"maxlen_{file_key}",
        help=t("datapage.check.max_length.help"),
    )
    exact = c2.toggle(
        t("datapage.check.exact"),
        value=True,
        key=f"exact_{file_key}",
        help=t("datapage.check.exact.help"),
    )
    split = (val, test, stratify, seed) if (val or test) else None
    report, sizes, split_error = check(
        str(path),
        stamp,
        corpus,
        task,
        columns.text,
        columns.text_pair,
        columns.label,
        columns.instruction,
        columns.system,
        int(max_length),
        bool(exact),
        split,
    )
    if split_error is not None:
        st.error(md(error_text(split_error)))
    elif sizes is not None:
        st.info(t("datapage.split.sizes", train=int(sizes[0]), val=int(sizes[1]), test=int(sizes[2])))
    show_findings(report)
    names: dict[str, str] = {}
    names_error = None
    if task == "classification" and report.class_counts:
        names, names_error = class_names_editor(report.class_counts, f"{file_key}-{columns.label}")
    c1, c2 = st.columns(2)
    if report.class_counts:
        shown = {names.get(k, k): n for k, n in report.class_counts.items()} if not names_error else report.class_counts
        c1.plotly_chart(charts.class_balance(shown, lang=language()), width="stretch")
    if report.token_lengths:
        figure = charts.token_lengths(report.token_lengths, report.max_length, exact=exact, lang=language())
        c2.plotly_chart(figure, width="stretch")

    ops, multiplier = augmentation(frame, columns, file_key)
    settings = DatasetSettings(
        task=task,
        text_column=columns.text,
        text_pair_column=columns.text_pair,
        label_column=columns.label,
        instruction_column=columns.instruction,
        system_column=columns.system,
        val_fraction=val,
        test_fraction=test,
        stratify=stratify,
        split_seed=seed,
        augment_ops=ops,
        augment_multiplier=multiplier,
        class_names=names,
    )
    st.subheader(t("datapage.save"))
    usable = report.usable and split_error is None and names_error is None
    save_section(path, original, settings, extra, len(frame), usable)
    saved_datasets()
    label_review_section()


with guarded():
    main()
