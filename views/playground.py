"""Playground: try a finished run (or the model it started from) on your own text."""

from __future__ import annotations

import streamlit as st

from core.inference import describe_run_model
from ui import charts, keys, share
from ui.format import STRATEGY_NAMES
from ui.guard import guarded
from ui.i18n import language, t, translated_options
from ui.pickers import pick_finished_run
from ui.safe import hide_paths, html_text, md, md_block
from ui.state import load_bundle

MAX_TEXTS = 50
# Literal keys (the catalog test finds them in the code); the values the engine sees stay as they are.
MODES = {"type": "play.mode.type", "file": "play.mode.file"}


def example_texts(run, n: int = 2) -> str:
    """A couple of held-out texts as a starting point, so the first try is one click."""
    import pandas as pd

    for split in ("test", "validation"):
        path = run.data_dir / f"{split}.parquet"
        if path.exists():
            frame = pd.read_parquet(path, columns=["text"])
            if len(frame):
                return "\n".join(frame["text"].astype(str).head(n))
    return ""


def highlighted(pieces: list[tuple[str, float]]) -> str:
    """Tokens tinted by attribution: green pushes towards the predicted class, red away from it."""
    top = max((abs(w) for _, w in pieces), default=0.0) or 1.0
    spans = []
    for token, weight in pieces:
        alpha = min(abs(weight) / top, 1.0) * 0.6
        colour = f"rgba(22,163,74,{alpha:.2f})" if weight >= 0 else f"rgba(220,38,38,{alpha:.2f})"
        spans.append(
            f'<span style="background:{colour};padding:1px 2px;border-radius:3px" '
            f'title="{weight:+.3f}">{html_text(token)}</span>'
        )
    return " ".join(spans)


def classify(run, bundle, base: bool) -> None:
    from core.generation import predict_proba

    cfg = run.config()
    pair = cfg.data.text_pair_column is not None
    texts_raw = st.text_area(t("play.texts"), value=example_texts(run), key=f"texts_{run.id}", height=120)
    pairs_raw = st.text_area(t("play.pairs"), key=f"pairs_{run.id}") if pair else ""
    explain_on = bundle.task == "classification" and st.toggle(t("play.explain"), key="explain")
    if st.button(t("play.predict"), type="primary", icon=":material/send:"):
        texts = [line.strip() for line in texts_raw.splitlines() if line.strip()][:MAX_TEXTS]
        pairs = [line.strip() for line in pairs_raw.splitlines() if line.strip()][:MAX_TEXTS] if pair else None
        if not texts:
            st.warning(t("play.no_text"))
            return
        if pairs is not None and len(pairs) != len(texts):
            st.warning(t("play.pairs.mismatch", texts=len(texts), pairs=len(pairs)))
            return
        with st.spinner(t("play.predicting")):
            probs = predict_proba(bundle, texts, pairs, max_length=cfg.train.max_length)
        st.session_state[keys.PREDICTIONS] = (run.id, base, texts, pairs, probs)
    saved = st.session_state.get(keys.PREDICTIONS)
    if not saved or saved[:2] != (run.id, base):
        return
    _, _, texts, pairs, probs = saved
    if bundle.task == "regression":
        st.dataframe({t("play.col.text"): texts, t("play.col.value"): [float(p[0]) for p in probs]}, hide_index=True)
        return
    from core.calibration import as_decision, labels_for

    names = bundle.label_names or [str(i) for i in range(probs.shape[1])]
    decided = labels_for(probs, names, bundle.decision)  # a saved threshold (Evaluate) answers, or "unsure"
    if as_decision(bundle.decision) is not None:
        st.caption(t("play.threshold", threshold=float(as_decision(bundle.decision).threshold)))
    st.dataframe(
        {
            t("play.col.text"): texts,
            t("play.col.label"): decided,
            t("play.col.probability"): [round(float(p.max()), 4) for p in probs],
        },
        hide_index=True,
    )
    for i, (text, p) in enumerate(list(zip(texts, probs))[:5]):
        with st.container(border=True):
            st.markdown(t("play.answer", label=md(decided[i]), p=float(p.max()), text=md(text, max_chars=300)))
            st.plotly_chart(charts.probabilities(names, p.tolist()), key=f"proba_{i}")
            if explain_on:
                explain_text(bundle, text, pairs[i] if pairs else None)


def explain_text(bundle, text: str, pair: str | None) -> None:
    try:
        from core.explain import explain
    except ImportError:
        st.info(t("play.explain.missing"))
        return
    with st.spinner(t("play.explaining")):
        pieces = explain(bundle, text, pair)
    st.markdown(highlighted(pieces), unsafe_allow_html=True)


def show_stream(pieces) -> str:
    """Model output as it arrives, shown as plain text (never markdown): one placeholder rewritten per piece."""
    box = st.empty()
    text = ""
    for piece in pieces:
        text += piece
        box.text(text)
    if not text:
        box.caption(t("play.empty_answer"))
    return text


def formatted_run(bundle) -> bool:
    return bundle.sft is not None and bundle.sft.formatted


def chat(run, bundle, settings) -> None:
    """A multi-turn chat for runs trained on conversations; the history is kept per run for this session."""
    from core.generation import stream

    key = f"chat_{run.id}"
    history = st.session_state.setdefault(key, [])
    c1, c2 = st.columns([4, 1])
    system = c1.text_input(t("play.system"), key=f"system_{run.id}", help=t("play.system.help"))
    if c2.button(t("play.new_chat"), icon=":material/restart_alt:", key=f"clear_{run.id}"):
        history.clear()
    for message in history:
        with st.chat_message(message["role"]):
            st.text(message["content"])
    said = st.chat_input(t("play.chat_input"))
    if not said or not said.strip():
        return
    history.append({"role": "user", "content": said.strip()})
    with st.chat_message("user"):
        st.text(said.strip())
    conversation = ([{"role": "system", "content": system}] if system.strip() else []) + history
    with st.chat_message("assistant"):
        answer = show_stream(stream(bundle, conversation, settings))
    history.append({"role": "assistant", "content": answer})


def generate(run, bundle) -> None:
    from core.generation import STRATEGIES, GenerationSettings, stream

    is_chat = bundle.sft is not None and bundle.sft.shape == "chat"
    if formatted_run(bundle):
        st.caption(t("play.formatted"))
    prompt = "" if is_chat else st.text_area(
        t("play.prompt"), value=example_texts(run, 1)[:200], key=f"prompt_{run.id}", height=100
    )  # fmt: skip
    c = st.columns(4)
    strategy = c[0].radio(
        t("play.decoding"),
        STRATEGIES,
        key="strategy",
        format_func=translated_options(STRATEGY_NAMES),
    )
    max_new = c[1].number_input(t("play.max_new_tokens"), 1, 1024, 64, key="max_new_tokens")
    repetition = c[2].number_input(
        t("play.repetition"),
        1.0,
        3.0,
        1.1,
        0.05,
        key="repetition_penalty",
        help=t("play.repetition.help"),
    )
    seed = c[3].number_input(t("play.seed"), 0, 2**31 - 1, 0, key="gen_seed", help=t("play.seed.help"))
    c = st.columns(4)
    temperature = c[0].slider(
        t("play.temperature"),
        0.05,
        2.0,
        0.8,
        0.05,
        key="temperature",
        disabled=strategy != "sample",
        help=t("play.temperature.help"),
    )
    top_k = c[1].number_input(
        t("play.top_k"),
        0,
        1000,
        50,
        key="top_k",
        disabled=strategy != "sample",
        help=t("play.top_k.help"),
    )
    top_p = c[2].slider(
        t("play.top_p"),
        0.05,
        1.0,
        0.95,
        0.05,
        key="top_p",
        disabled=strategy != "sample",
        help=t("play.top_p.help"),
    )
    beams = c[3].number_input(t("play.beams"), 1, 16, 4, key="num_beams", disabled=strategy != "beam")
    settings = GenerationSettings(
        strategy=strategy,
        max_new_tokens=int(max_new),
        num_beams=int(beams),
        temperature=float(temperature),
        top_k=int(top_k),
        top_p=float(top_p),
        repetition_penalty=float(repetition),
        seed=int(seed),
    )
    if is_chat:
        chat(run, bundle, settings)
        return
    if st.button(t("play.generate"), type="primary", icon=":material/send:"):
        with st.container(border=True):
            if formatted_run(bundle):
                st.caption(t("play.answer_heading"))
                show_stream(stream(bundle, prompt, settings))
            else:
                st.markdown(f"**{md(prompt)}**")
                # The model's words are text: a generated link or image stays characters on the screen.
                st.write_stream(md_block(piece) for piece in stream(bundle, prompt, settings))


def main() -> None:
    st.title(t("nav.page.playground"))
    run = pick_finished_run()
    if run is None:
        return
    base = st.toggle(
        t("play.use_base"),
        key="use_base",
        help=t("play.use_base.help"),
    )
    with st.spinner(t("play.loading")):
        bundle = load_bundle(run, base=base)
    st.caption(md(hide_paths(describe_run_model(run, base=base, lang=language()))))
    mode = st.segmented_control(
        t("play.mode"), list(MODES), default="type", format_func=translated_options(MODES), key="pg_mode"
    )
    if mode == "file":
        share.whole_file(run, bundle)
    elif bundle.task == "generation":
        generate(run, bundle)
    else:
        classify(run, bundle, base)


with guarded():
    main()
