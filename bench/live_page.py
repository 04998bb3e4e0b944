"""What a real browser watching the live Train page costs a training run, against the same run unwatched.

    .venv/bin/python bench/live_page.py [--rows 2400] [--reps 2] [--conditions live,runs,closed]

One `streamlit run serve.py` server (as start.sh starts it; ``--script app.py`` for the page without the live
route) on a fresh workspace, one headless Chromium
driven by Playwright. Each trial trains the same fixed-size job (the default MiniLM on the short sentences of
``bench/train_classifier.py --data short``, one epoch, batch 16, logging about 40 points as the Train page sets
it) through the CLI into the server's workspace, while the browser is in one of three conditions:

- ``live``: a tab on the Train page showing this run (``/train?run=ID``), as after a click on Start;
- ``runs``: a tab on the Runs page (the issue's "not watching");
- ``closed``: no tab open (the browser process stays);
- ``hidden``: the live Train page in a tab the browser reports as hidden (another tab in front, a minimised window).

``--synthetic SECONDS`` measures the watching alone, without training: the script itself plays a run (status.json
and metrics.jsonl written at the pace of a real one: a logged step every ``--pace`` seconds, an evaluation every 20
logged steps) for SECONDS per trial, and counts the browser's and the server's CPU seconds. CPU seconds per minute
of watching hardly depend on how loaded the machine is, so this mode compares the page's levers on a shared
machine, where training times do not.

The trainer is paused from the moment its run exists until the page has loaded and settled (in the app the page is
open before Start; ``--no-pause`` lets the loading overlap the first steps). Conditions alternate (A B C A B C ...)
so drift in the machine's load hits all of them. Training time is the run's
own ``train_seconds`` (results.json: the training loop, evaluations excluded). CPU seconds are counted with psutil
over the training window (first logged step to the end of training): the Chromium process tree, the Streamlit
server, and the trainer. "cores" = CPU seconds / training seconds. The 1-minute load average is printed with each
trial: on a shared machine the ratios mean little unless the load is low and steady.
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import common  # noqa: E402
from tests.e2e.conftest import READY, launch_chromium, start_server, stop_server_process  # noqa: E402
from tests.played_run import HIDE_TAB_JS, PlayedRun  # noqa: E402

CONDITIONS = ("live", "runs", "closed", "hidden")
HIDDEN_NOTE = "in the background"  # the live panel's caption in a hidden tab (locales/en/live.json, live.hidden)


def cpu_seconds(procs: list) -> dict[int, float]:
    """pid -> user + system CPU seconds so far, for the processes still alive."""
    out = {}
    for p in procs:
        try:
            t = p.cpu_times()
            out[p.pid] = t.user + t.system
        except Exception:  # noqa: BLE001 - a process that ended between listing and reading
            continue
    return out


class CpuMeter:
    """CPU seconds of a changing set of processes (Chromium starts and ends renderers): each pid's last reading is
    kept, so one that ends between two samples loses at most its last interval."""

    def __init__(self, find):
        self.find = find
        self.first: dict[int, float] = {}
        self.last: dict[int, float] = {}

    def sample(self) -> None:
        for pid, secs in cpu_seconds(self.find()).items():
            self.first.setdefault(pid, secs if not self.last else 0.0)
            self.last[pid] = secs

    def start(self) -> None:
        self.first, self.last = {}, {}
        self.sample()
        self.first = dict(self.last)

    def total(self) -> float:
        return sum(self.last[pid] - self.first.get(pid, 0.0) for pid in self.last)


def chromium_tree() -> list:
    import psutil

    found = []
    for p in psutil.Process().children(recursive=True):
        try:
            if "chrom" in p.name().lower():
                found.append(p)
        except psutil.NoSuchProcess:  # a renderer that ended between the listing and the look at its name
            continue
    return found


def process_tree(pid: int) -> list:
    import psutil

    try:
        root = psutil.Process(pid)
        return [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return []


def open_condition(browser, server, condition: str, run_id: str, timed: bool = False):
    """(context, page) with the browser in ``condition`` for the run ``run_id``; (None, None) for ``closed``.

    ``timed``: the page refreshes through timed fragments (app.py), which say in a caption that a hidden tab is
    paused; served with the live route (serve.py), the browser's own refresh stops with no caption."""
    if condition == "closed":
        return None, None
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    page.goto(f"{server.url}/runs" if condition == "runs" else f"{server.url}/train?run={run_id}")
    page.wait_for_selector(READY, timeout=120_000)
    if condition == "hidden":
        page.evaluate(HIDE_TAB_JS)
        if timed:
            page.get_by_text(HIDDEN_NOTE).wait_for(timeout=120_000)  # the panel has seen it: the pause is on
    return context, page


def train_command(train_csv: Path, val_csv: Path, rows: int, name: str) -> list[str]:
    steps = rows // 16
    log_every = int(min(max(steps // 40, 1), 10))  # as the Train page sets it: about 40 points on the curve
    return [
        sys.executable,
        *("-m", "core", "train", "--quiet", "--name", name),
        *("--train-path", str(train_csv), "--validation-path", str(val_csv), "--test-fraction", "0"),
        *("--source", "default", "--task", "classification", "--epochs", "1", "--batch-size", "16"),
        *("--learning-rate", "5e-5", "--log-every", str(log_every), "--seed", "0"),
    ]


def trial(args, server, browser, data: tuple[Path, Path], condition: str, index: int) -> dict:
    from core.runs import RunStore

    store = RunStore(server.workspace / "runs")
    before = {r.id for r in store.list()}
    env = dict(os.environ, WORKBENCH_HOME=str(server.workspace), HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
    env["TOKENIZERS_PARALLELISM"] = "false"
    cmd = train_command(*data, args.rows, f"live-bench-{index}-{condition}")
    trainer = subprocess.Popen(cmd, cwd=common.ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    run = None
    while run is None:
        fresh = [r for r in store.list() if r.id not in before]
        run = fresh[0] if fresh else None
        if trainer.poll() is not None:
            raise RuntimeError(f"training exited with {trainer.returncode}: {trainer.stderr.read().decode()[-2000:]}")
        time.sleep(0.1)

    # In the app the page is open before Start, and the worker's imports give it seconds more: the page does not
    # load while the run trains. Here the trainer starts first, so it is paused (SIGSTOP) from the moment its run
    # exists until the page has loaded and settled, in every condition alike. --no-pause lets the two overlap.
    if args.pause:
        trainer.send_signal(signal.SIGSTOP)
    try:
        context, page = open_condition(browser, server, condition, run.id, args.script == "app.py")
        if args.pause:
            time.sleep(SETTLE_S)
    finally:
        if args.pause:
            trainer.send_signal(signal.SIGCONT)
    ready_step = int(run.status().get("step") or 0)  # how far training was when the page had loaded

    browser_cpu, server_cpu = CpuMeter(chromium_tree), CpuMeter(lambda: process_tree(server.process.pid))
    trainer_cpu = CpuMeter(lambda: process_tree(trainer.pid))
    # The training window starts with the first logged step: model loading and tokenizing are not what we measure.
    while not any("loss" in r for r in run.metrics()) and trainer.poll() is None:
        time.sleep(0.05)
    load_start = common.load_average()
    for meter in (browser_cpu, server_cpu, trainer_cpu):
        meter.start()
    while not _trained(run) and trainer.poll() is None:
        for meter in (browser_cpu, server_cpu, trainer_cpu):
            meter.sample()
        time.sleep(0.25)
    for meter in (browser_cpu, server_cpu, trainer_cpu):
        meter.sample()
    load_end = common.load_average()
    visibility = page.evaluate("document.visibilityState") if page is not None else "-"
    trainer.wait(timeout=600)
    if context is not None:
        context.close()
    if trainer.returncode != 0:
        raise RuntimeError(f"training exited with {trainer.returncode}: {trainer.stderr.read().decode()[-2000:]}")
    results = run.results()
    train_s = float(results["train_seconds"])
    return {
        "ready_step": ready_step,
        "settled_s": settled_seconds(run),
        "condition": condition,
        "rep": index,
        "train_s": train_s,
        "samples_per_s": float(results["samples_per_s"]),
        "browser_cpu": browser_cpu.total(),
        "server_cpu": server_cpu.total(),
        "trainer_cpu": trainer_cpu.total(),
        "browser_cores": browser_cpu.total() / train_s,
        "server_cores": server_cpu.total() / train_s,
        "load_start": load_start,
        "load_end": load_end,
        "visibility": visibility,
    }


def watch(args, server, browser, data: tuple[Path, Path], condition: str, index: int) -> dict:
    """One trial of --synthetic: the browser in ``condition`` while a played run logs for ``args.synthetic`` s."""
    run_id = f"played-{index}-{condition}"
    played = PlayedRun(server.workspace, data[0], total=100_000, run_id=run_id)  # this process owns it
    context, _ = open_condition(browser, server, condition, played.run.id, args.script == "app.py")
    browser_cpu, server_cpu = CpuMeter(chromium_tree), CpuMeter(lambda: process_tree(server.process.pid))
    load_start = common.load_average()
    browser_cpu.start()
    server_cpu.start()
    t0 = time.monotonic()
    while time.monotonic() - t0 < args.synthetic:
        played.log(eval_every=20)
        browser_cpu.sample()
        server_cpu.sample()
        time.sleep(args.pace)
    seconds = time.monotonic() - t0
    played.finish()
    if context is not None:
        context.close()
    return {
        "condition": condition,
        "rep": index,
        "train_s": seconds,
        "browser_cpu": browser_cpu.total(),
        "server_cpu": server_cpu.total(),
        "browser_cores": browser_cpu.total() / seconds,
        "server_cores": server_cpu.total() / seconds,
        "load_start": load_start,
        "load_end": common.load_average(),
    }


SETTLED_FROM = 0.25  # the settled window: the training steps after the first quarter
SETTLE_S = 3.0  # after the page is ready: its fonts, its first request and drawing


def settled_seconds(run) -> float:
    """Seconds of training loop (evaluations excluded) for the steps after the first quarter, from the logged
    records' own clock: the page has long finished loading by then in every condition, so this is the cost of
    watching alone."""
    points = [r for r in run.metrics() if "loss" in r and "elapsed_s" in r]
    total = points[-1]["step"]
    start = next(r for r in points if r["step"] >= SETTLED_FROM * total)
    return float(points[-1]["elapsed_s"] - start["elapsed_s"])


def _trained(run) -> bool:
    """The training loop is over (the last step is logged, or the run has ended): final scoring is not measured."""
    status = run.status()
    total = status.get("total_steps") or 0
    return bool(total and (status.get("step") or 0) >= total) or (run.dir / "results.json").exists()


def summary(rows: list[dict], baseline: str, synthetic: bool) -> str:
    if synthetic:
        return "\n".join(
            f"{c:>7}: browser {statistics.mean(r['browser_cores'] for r in rows if r['condition'] == c):.3f} cores, "
            f"server {statistics.mean(r['server_cores'] for r in rows if r['condition'] == c):.3f} cores"
            for c in dict.fromkeys(r["condition"] for r in rows)
        )
    lines = []
    base = statistics.median(r["train_s"] for r in rows if r["condition"] == baseline)
    for condition in dict.fromkeys(r["condition"] for r in rows):
        mine = [r for r in rows if r["condition"] == condition]
        med = statistics.median(r["train_s"] for r in mine)
        settled = statistics.median(r["settled_s"] for r in mine)
        base_settled = statistics.median(r["settled_s"] for r in rows if r["condition"] == baseline)
        lines.append(
            f"{condition:>7}: median training {med:6.1f} s = {med / base:4.2f}x '{baseline}'; "
            f"last three quarters {settled:5.1f} s = {settled / base_settled:4.2f}x; "
            f"page ready at step {max(r['ready_step'] for r in mine)} at most; "
            f"browser {statistics.mean(r['browser_cores'] for r in mine):.2f} cores, "
            f"server {statistics.mean(r['server_cores'] for r in mine):.2f} cores; "
            f"load {min(r['load_start'] for r in mine):.1f}-{max(r['load_end'] for r in mine):.1f}"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=2400, help="training rows (short sentences); 150 steps at 2400")
    parser.add_argument("--val", type=int, default=200, help="validation rows")
    parser.add_argument("--reps", type=int, default=2, help="trials per condition")
    parser.add_argument(
        "--conditions", default=",".join(CONDITIONS), help="comma-separated, in the order they alternate"
    )
    parser.add_argument("--synthetic", type=float, default=0, help="watch a played run for this many seconds")
    parser.add_argument("--pace", type=float, default=0.5, help="--synthetic: seconds between logged steps")
    parser.add_argument("--baseline", default="closed", help="the condition the ratios are taken against")
    parser.add_argument(
        "--no-pause",
        dest="pause",
        action="store_false",
        help="do not pause the trainer while the page loads (the page's loading then overlaps the first steps)",
    )
    parser.add_argument(
        "--script",
        default="serve.py",
        choices=("serve.py", "app.py"),
        help="what the server runs: serve.py as start.sh does (the browser refreshes the live numbers itself), "
        "or app.py (timed Streamlit fragments refresh them)",
    )
    args = parser.parse_args()
    conditions = [c.strip() for c in args.conditions.split(",") if c.strip()]
    unknown = set(conditions) - set(CONDITIONS)
    if unknown or args.baseline not in conditions:
        parser.error(f"conditions are {', '.join(CONDITIONS)}, and they must include the baseline {args.baseline!r}")

    from playwright.sync_api import sync_playwright

    print(f"load average at start: {' '.join(f'{v:.2f}' for v in os.getloadavg())} on {os.cpu_count()} cores")
    with tempfile.TemporaryDirectory(prefix="live-bench-") as tmp:
        tmp_path = Path(tmp)
        workspace = tmp_path / "workspace"
        workspace.mkdir()
        data = common.write_reviews(tmp_path / "data", n_train=args.rows, n_val=args.val, kind="short")
        server = start_server(workspace, tmp_path / "streamlit.log", script=args.script)
        rows: list[dict] = []
        try:
            with sync_playwright() as pw:
                browser = launch_chromium(pw)
                try:
                    for rep in range(args.reps):
                        for condition in conditions:
                            measure = watch if args.synthetic else trial
                            row = measure(args, server, browser, data, condition, rep)
                            rows.append(row)
                            print(
                                f"  {condition:>6} #{rep}: {row['train_s']:.1f} s training, "
                                f"browser {row['browser_cpu']:.1f} CPU s, server {row['server_cpu']:.1f} CPU s, "
                                f"load {row['load_start']:.1f}->{row['load_end']:.1f}",
                                flush=True,
                            )
                finally:
                    browser.close()
        finally:
            stop_server_process(server.process)
    columns = [
        ("condition", "condition", ""),
        ("rep", "#", "d"),
        ("train_s", "watched s" if args.synthetic else "train s", ".1f"),
        ("samples_per_s", "samples/s", ".1f"),
        *([] if args.synthetic else [("settled_s", "last 3/4 s", ".1f"), ("ready_step", "ready@step", "d")]),
        ("browser_cpu", "browser CPU s", ".1f"),
        ("server_cpu", "server CPU s", ".1f"),
        ("trainer_cpu", "trainer CPU s", ".1f"),
        ("browser_cores", "browser cores", ".2f"),
        ("server_cores", "server cores", ".2f"),
        ("load_start", "load@start", ".1f"),
        ("load_end", "load@end", ".1f"),
        ("visibility", "tab", ""),
    ]
    print()
    print(common.table(rows, columns))
    print()
    print(summary(rows, args.baseline, bool(args.synthetic)))
    print(f"load average at end: {' '.join(f'{v:.2f}' for v in os.getloadavg())}")


if __name__ == "__main__":
    main()
