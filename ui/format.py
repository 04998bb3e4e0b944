"""Numbers as people read them."""

from __future__ import annotations

from core.runs import RunStatus

# Decoding strategies as a reader names them (literal keys: the catalog test finds them in the code).
STRATEGY_NAMES = {"greedy": "play.strategy.greedy", "beam": "play.strategy.beam", "sample": "play.strategy.sample"}


def duration(seconds: float | None) -> str:
    """'45 s', '3 min 05 s', '2 h 07 min' (or '45 秒', '3 分 05 秒', '2 小时 07 分' in Chinese)."""
    from ui.i18n import t

    if seconds is None or seconds != seconds or seconds < 0:
        return "–"
    seconds = int(round(seconds))
    if seconds < 60:
        return t("format.seconds", s=seconds)
    if seconds < 3600:
        return t("format.minutes", m=seconds // 60, s=seconds % 60)
    return t("format.hours", h=seconds // 3600, m=seconds % 3600 // 60)


def count(n: int | None) -> str:
    if n is None:
        return "–"
    for unit, size in (("B", 1e9), ("M", 1e6), ("k", 1e3)):
        if n >= size:
            return f"{n / size:.1f}{unit}"
    return str(n)


def metric(value) -> str:
    if isinstance(value, float):
        return f"{value:.4f}" if abs(value) < 1000 else f"{value:,.0f}"
    return str(value)


STATE_COLOUR = {
    RunStatus.QUEUED: "gray",
    RunStatus.RUNNING: "blue",
    RunStatus.FINISHED: "green",
    RunStatus.FAILED: "red",
    RunStatus.STOPPED: "orange",
    RunStatus.INTERRUPTED: "orange",
    RunStatus.DAMAGED: "red",
}


def state_badge(state: str) -> str:
    # The state comes from status.json on disk: a word we wrote, but escaped all the same; shown in the reader's
    # language, while the colour follows the state itself.
    from ui.i18n import state_label
    from ui.safe import md

    return f":{STATE_COLOUR.get(state, 'gray')}-badge[{md(state_label(state))}]"
