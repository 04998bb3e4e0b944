"""Data: bring a file, map its columns, check it, choose the split, preview augmentation, save it."""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from ui import charts, keys, nav
from ui.guard import guarded
from ui.label_review import label_review_section
from ui.safe import md
from ui.state import DATASET_PARAM, counting_tokenizer, dataset_store
from ui.uploads import stage

SAMPLES = Path(__file__).resolve().parent.parent / "data" / "samples"
TASK_HELP = {
    "classification": "Sort texts into categories (e.g. positive / negative).",
    "regression": "Predict a number for each text (e.g. a 1-5 rating).",
    "generation": "Learn to write text like yours (continue a prompt, answer like the examples).",
}
NONE = "(none)"
LEVEL_SHOW = {"ok": st.success, "warning": st.warning, "problem": st.error}


@st.cache_data(show_spinner="Reading the file...", max_entries=8)
def read(path: str, stamp: float, corpus: bool):
    from core.data import read_table

    return read_table(path, corpus=corpus)


@st.cache_data(show_spinner="Checking the data...", max_entries=8)
def check(
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

    frame = read(path, stamp, corpus).frame
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
        "Where is your data?",
        ["Upload a file", "Use a bundled sample", "A public dataset (by name)"],
        horizontal=True,
        key="data_source",
    )
    if source == "A public dataset (by name)":
        from ui.share import public_dataset

        return public_dataset(dataset_store().root)
    if source == "Upload a file":
        upload = st.file_uploader(
            "Upload a data file",
            type=[e.lstrip(".") for e in EXTENSIONS],
            key="data_upload",
            help="CSV, TSV, JSON, JSON Lines, Parquet or plain text; one example per row.",
        )
        if upload is None:
            return None, ""
        return stage(upload, "data"), upload.name
    samples = sorted(p.name for p in SAMPLES.iterdir() if p.suffix in EXTENSIONS) if SAMPLES.is_dir() else []
    if not samples:
        st.info("No bundled samples are installed.")
        return None, ""
    name = st.selectbox(
        "Bundled sample",
        samples,
        index=samples.index("sentiment.csv") if "sentiment.csv" in samples else 0,
        key="data_sample",
        help="sentiment.csv: reviews with positive/negative labels; pairs.csv: sentence pairs; "
        "qa.csv: questions and answers; headlines.csv: news articles and their headlines; chat.jsonl: "
        "conversations at a bookshop's help desk; stories.txt: plain text for generation.",
    )
    return SAMPLES / name, name


GENERATION_SHAPES = {
    "chat": "Conversations: the model learns to write the assistant's turns, one after another.",
    "pairs": "Prompt and response: the model learns to write the response to each prompt, then stop.",
    "corpus": "Plain text: the model learns to continue text like yours.",
}


def column_choice(frame, task: str, file_key: str):
    from core.data import ColumnChoice, guess_columns

    names = [str(c) for c in frame.columns]
    guess = guess_columns(frame, task)
    if task == "generation":
        return generation_columns(frame, names, guess, file_key)
    c1, c2, c3 = st.columns(3)
    text = c1.selectbox(
        "Text column",
        names,
        index=names.index(guess.text),
        key=f"col_text_{file_key}",
        help="The column holding the text the model reads.",
    )
    pair_options = [NONE] + names
    pair = c2.selectbox(
        "Second text column (optional)",
        pair_options,
        index=pair_options.index(guess.text_pair) if guess.text_pair in names else 0,
        key=f"col_pair_{file_key}",
        help="For sentence pairs (e.g. premise and hypothesis) or prompt and response.",
    )
    label = None
    if task != "generation":
        label = c3.selectbox(
            "Label column",
            names,
            index=names.index(guess.label) if guess.label in names else 0,
            key=f"col_label_{file_key}",
            help="The answer the model should learn: a category, or a number for regression.",
        )
    return ColumnChoice(text, None if pair == NONE else pair, label)


def generation_columns(frame, names: list[str], guess, file_key: str):
    """Generation data comes in three shapes: conversations, prompt and response, or plain text."""
    from core.data import ColumnChoice
    from core.sft import chat_column

    chat = chat_column(frame)
    if chat is not None:
        st.info(md(GENERATION_SHAPES["chat"]))
        st.caption("Conversations are read from the column below ('messages' with role/content, or ShareGPT's "
                   "'conversations' with from/value).")  # fmt: skip
        st.text(chat)
        return ColumnChoice(chat)
    c1, c2, c3, c4 = st.columns(4)
    options = [NONE] + names

    def optional(container, label: str, guessed: str | None, key: str, help_text: str) -> str:
        index = options.index(guessed) if guessed in names else 0
        return container.selectbox(label, options, index=index, key=f"{key}_{file_key}", help=help_text)

    response = optional(
        c2,
        "Response column",
        guess.text_pair,
        "col_pair",
        "What the model should learn to answer. (none): plain text the model learns to continue.",
    )
    text = c1.selectbox(
        "Prompt column" if response != NONE else "Text column",
        names,
        index=names.index(guess.text),
        key=f"col_text_{file_key}",
        help="What the model reads (the prompt), or the text to learn from when there is no response column.",
    )
    instruction = system = NONE
    if response != NONE:
        instruction = optional(
            c3,
            "Instruction column (optional)",
            guess.instruction,
            "col_instr",
            "Put before each prompt (Alpaca's 'instruction'; the prompt column is then its 'input').",
        )
        system = optional(
            c4,
            "System message column (optional)",
            guess.system,
            "col_system",
            "A system message for each row (who the assistant is, how it answers).",
        )
    st.info(md(GENERATION_SHAPES["pairs" if response != NONE else "corpus"]))

    def pick(value: str) -> str | None:
        return None if value == NONE else value

    return ColumnChoice(text, pick(response), None, pick(instruction), pick(system))


def split_settings(task: str, file_key: str):
    st.markdown("**How to hold out data for checking the model**")
    separate = st.toggle("I have separate validation / test files", key=f"separate_{file_key}")
    extra: dict[str, tuple[str, Path]] = {}
    if separate:
        from core.data import EXTENSIONS

        types = [e.lstrip(".") for e in EXTENSIONS]
        c1, c2 = st.columns(2)
        val_up = c1.file_uploader("Validation file", type=types, key=f"val_upload_{file_key}")
        test_up = c2.file_uploader("Test file", type=types, key=f"test_upload_{file_key}")
        for role, up in (("validation", val_up), ("test", test_up)):
            if up is not None:
                extra[role] = (up.name, stage(up, role))
    c1, c2, c3, c4 = st.columns(4)
    val = c1.number_input(
        "Validation share",
        0.0,
        0.4,
        0.1,
        0.05,
        key=f"val_frac_{file_key}",
        disabled="validation" in extra,
        help="Rows held out to watch for overfitting during training.",
    )
    test = c2.number_input(
        "Test share",
        0.0,
        0.4,
        0.1,
        0.05,
        key=f"test_frac_{file_key}",
        disabled="test" in extra,
        help="Rows kept aside for the final score on the Evaluate page.",
    )
    stratify = c3.toggle(
        "Stratified split",
        value=task == "classification",
        disabled=task != "classification",
        key=f"stratify_{file_key}",
        help="Keep class proportions: each split gets the same share of each class as the whole file.",
    )
    seed = c4.number_input(
        "Split seed", 0, 2**31 - 1, 42, key=f"seed_{file_key}", help="The same seed always gives the same split."
    )
    val = 0.0 if "validation" in extra else float(val)
    test = 0.0 if "test" in extra else float(test)
    return val, test, bool(stratify and task == "classification"), int(seed), extra


def class_names_editor(counts: dict[str, int], key: str) -> tuple[dict[str, str], str | None]:
    """The classes found, with a name for each (0 -> negative): the model and every page then use the names.

    Returns ({value: name} for the renamed classes, an error message or None). Values and names come from the
    user's file and typing: they are shown in a table (text), never as markup.
    """
    st.markdown("**Classes found**: name them as you want them shown (the model's answers use these names).")
    table = [{"value in the file": value, "rows": n, "name": value} for value, n in counts.items()]
    edited = st.data_editor(
        table,
        key=f"class_names_{key}",
        hide_index=True,
        disabled=["value in the file", "rows"],
        column_config={"name": st.column_config.TextColumn("name", required=True, max_chars=100)},
        width="stretch",
    )
    rows = edited.to_dict("records") if hasattr(edited, "to_dict") else list(edited)
    names = {str(r["value in the file"]): str(r.get("name") or "").strip() for r in rows}
    if any(not n for n in names.values()):
        st.error("Every class needs a name: fill in the empty cell (or type the value itself back).")
        return {}, "empty"
    if len(set(names.values())) < len(names):
        st.error("Two classes have the same name: give each class its own name.")
        return {}, "duplicate"
    return {value: name for value, name in names.items() if name != value}, None


def show_findings(report) -> None:
    from ui.i18n import finding_markdown  # in the reader's language, data-borne text escaped (issue 16)

    for finding in report.findings:
        # Findings quote column names, labels and texts from the file: finding_markdown escapes them.
        LEVEL_SHOW.get(finding.level, st.info)(finding_markdown(finding))


def augmentation(frame, columns, file_key: str) -> tuple[list[str], int]:
    from core.augment import OPS, preview

    with st.expander("Augmentation (optional): add altered copies of training texts"):
        c1, c2 = st.columns([3, 1])
        ops = c1.multiselect(
            "Operations",
            list(OPS),
            key=f"aug_ops_{file_key}",
            help="delete: drop a few words; swap: swap neighbouring words; synonym: replace words "
            "with synonyms; char_noise: small typos.",
        )
        multiplier = c2.number_input(
            "Copies per text",
            0,
            10,
            1 if ops else 0,
            key=f"aug_mult_{file_key}",
            help="0 turns augmentation off. Validation and test are never augmented.",
        )
        if ops:
            texts = frame[columns.text].dropna().astype(str).head(5).tolist()
            rows = preview(texts, ops, seed=42)
            st.dataframe(
                {"original": [a for a, _ in rows], "augmented": [b for _, b in rows]}, hide_index=True, width="stretch"
            )
    return list(ops), int(multiplier) if ops else 0


def save_section(path: Path, original: str, settings, extra, rows: int, usable: bool) -> None:
    store = dataset_store()
    default_name = Path(original).stem or "dataset"
    name = st.text_input(
        "Dataset name",
        value=default_name,
        key=f"ds_name_{original}",
        help="Letters, digits, - and _; an existing name gets a number added, never replaced.",
    )
    if not usable:
        st.error("Fix the problems marked in red above before saving: training would fail on them.")
    if st.button("Save dataset", type="primary", disabled=not usable, icon=":material/save:"):
        dataset = store.save(
            name, path, original, settings, rows=rows, validation=extra.get("validation"), test=extra.get("test")
        )
        st.session_state[keys.SAVED_DATASET] = dataset.name
    saved = st.session_state.get(keys.SAVED_DATASET)
    if saved and store.find(saved) is not None:
        st.success(f"Saved as dataset **{md(saved)}**.")
        if st.button("Train with this dataset", type="primary", icon=":material/model_training:"):
            st.session_state[keys.TRAIN_DATASET] = saved
            st.switch_page(nav.TRAIN.path, query_params={DATASET_PARAM: saved})


def saved_datasets() -> None:
    store = dataset_store()
    datasets = store.list()
    with st.expander(f"Saved datasets ({len(datasets)})"):
        if not datasets:
            st.caption("None yet.")
        for ds in datasets:
            c1, c2 = st.columns([4, 1])
            c1.markdown(
                f"**{md(ds.name)}**: {md(ds.settings.task)}, {md(ds.rows or '?')} rows, "
                f"from {md(ds.original_name or ds.file)}"
            )
            if st.session_state.get(keys.CONFIRM_DELETE_DATASET) != ds.name:
                if c2.button("Delete", key=f"del_ds_{ds.name}"):
                    st.session_state[keys.CONFIRM_DELETE_DATASET] = ds.name
                    st.rerun()
                continue
            # A dataset is someone's upload: one click must not lose it.
            st.warning(f"Delete dataset **{md(ds.name)}** and its files? Runs trained on it keep their copy.")
            y, n = st.columns(2)
            if y.button("Yes, delete it", type="primary", key=f"del_ds_yes_{ds.name}"):
                st.session_state.pop(keys.CONFIRM_DELETE_DATASET, None)
                store.delete(ds.name)
                st.rerun()
            if n.button("Cancel", key=f"del_ds_no_{ds.name}"):
                st.session_state.pop(keys.CONFIRM_DELETE_DATASET, None)
                st.rerun()


def main() -> None:
    from core.datasets import DatasetSettings

    st.title("Data")
    st.caption("Bring examples of the task: one example per row. Nothing leaves this computer.")
    path, original = choose_file()
    if path is None:
        saved_datasets()
        label_review_section()
        return
    stamp = path.stat().st_mtime
    from core.config import TASKS

    default_task = "generation" if path.suffix == ".txt" else "classification"
    task = st.selectbox(
        "Task",
        TASKS,
        index=TASKS.index(default_task),
        key=f"task_{path.name}",
        format_func=lambda t: f"{t}: {TASK_HELP[t]}",
    )
    corpus = task == "generation"
    table = read(str(path), stamp, corpus)
    frame = table.frame
    st.markdown(f"**{md(original)}**: {len(frame):,} rows, {len(frame.columns):,} columns, read as {md(table.format)}.")
    for note in table.notes:
        st.caption(md(note))
    st.dataframe(frame.head(200), width="stretch", height=240)

    file_key = f"{path.name}-{task}"
    st.subheader("Columns")
    columns = column_choice(frame, task, file_key)

    st.subheader("Split")
    val, test, stratify, seed, extra = split_settings(task, file_key)

    st.subheader("Data check")
    c1, c2 = st.columns(2)
    max_length = c1.number_input(
        "Max length (tokens)",
        8,
        8192,
        128,
        8,
        key=f"maxlen_{file_key}",
        help="Texts longer than this are cut during training (set on the Train page).",
    )
    exact = c2.toggle(
        "Count tokens exactly (MiniLM tokenizer)",
        value=True,
        key=f"exact_{file_key}",
        help="Off: estimate from word counts (faster on very large files).",
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
        st.error(md(str(split_error)))
    elif sizes is not None:
        st.info(f"Split: {sizes[0]:,} training, {sizes[1]:,} validation and {sizes[2]:,} test rows.")
    show_findings(report)
    names: dict[str, str] = {}
    names_error = None
    if task == "classification" and report.class_counts:
        names, names_error = class_names_editor(report.class_counts, f"{file_key}-{columns.label}")
    c1, c2 = st.columns(2)
    if report.class_counts:
        shown = {names.get(k, k): n for k, n in report.class_counts.items()} if not names_error else report.class_counts
        c1.plotly_chart(charts.class_balance(shown), width="stretch")
    if report.token_lengths:
        c2.plotly_chart(charts.token_lengths(report.token_lengths, report.max_length, exact=exact), width="stretch")

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
    st.subheader("Save")
    usable = report.usable and split_error is None and names_error is None
    save_section(path, original, settings, extra, len(frame), usable)
    saved_datasets()
    label_review_section()


with guarded():
    main()
