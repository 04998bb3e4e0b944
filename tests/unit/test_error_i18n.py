"""Engine errors in the reader's language (issue 16): a WorkbenchError carries a catalog key and parameters, so a
page (core.i18n.error_text), the command line (LANG) and a failed run's status.json show it in Chinese or English,
while str(err) stays the English text that logs and old callers read."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from core.config import RunConfig
from core.data import ColumnChoice, read_table, validate_columns
from core.devicelock import DeviceBusy
from core.errors import ConfigError, DataError, WorkbenchError
from core.i18n import error_message, error_text, status_message
from core.runs import RunStore
from core.training import train
from tests.conftest import tiny_run_config

ROOT = Path(__file__).resolve().parents[2]


def test_a_data_error_from_the_engine_shows_in_chinese_and_in_english_by_default(tmp_path, monkeypatch):
    empty = tmp_path / "评论.csv"
    empty.write_bytes(b"")
    with pytest.raises(DataError) as caught:
        read_table(empty)
    err = caught.value
    assert err.key == "error.data.zero_bytes" and err.params == {"name": "评论.csv"}
    assert str(err) == "评论.csv is empty (0 bytes). Choose a file that contains data."  # logs and old callers
    assert error_text(err, "zh") == "评论.csv是空文件（0 字节）。请选择一个有数据的文件。"
    assert error_text(err, "en") == str(err)
    for name in ("LANGUAGE", "LC_ALL", "LC_MESSAGES"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("LANG", "C.UTF-8")
    assert error_text(err) == str(err)  # no language asked for, none in the environment: English


def test_a_column_error_names_the_role_and_the_task_in_the_readers_language():
    frame = pd.DataFrame({"文本": ["好", "差"], "标签": ["正面", "负面"]})
    with pytest.raises(DataError) as caught:
        validate_columns(frame, ColumnChoice(text="内容", label="标签"), "classification", path_name="评论.csv")
    assert str(caught.value) == (
        "There is no column '内容' (chosen as the text) in 评论.csv. Available columns: 文本, 标签."
    )
    assert error_text(caught.value, "zh") == "评论.csv中没有“内容”这一列（被选作文本列）。现有的列：文本, 标签。"
    one = pd.DataFrame({"文本": ["好", "差"]})
    with pytest.raises(DataError) as caught:
        validate_columns(one, ColumnChoice(text="文本", label=None), "regression")  # the default path name
    assert "No label column for regression: the file has only one column" in str(caught.value)
    assert error_text(caught.value, "zh").startswith("找不到用于回归的标签列：该文件只有一列（“文本”）。")


def test_the_data_checks_column_line_is_the_errors_own_message_in_the_readers_language():
    from core.data import check_data
    from core.i18n import finding_text

    frame = pd.DataFrame({"文本": ["好评", "差评"] * 10, "标签": ["正面", "负面"] * 10})
    report = check_data(frame, ColumnChoice(text="内容", label="标签"), "classification", max_length=32)
    line = next(f for f in report.findings if f.title_key == "check.title.columns")
    assert line.level == "problem"
    assert line.detail == "There is no column '内容' (chosen as the text) in the file. Available columns: 文本, 标签."
    assert finding_text(line, "zh")[1] == "该文件中没有“内容”这一列（被选作文本列）。现有的列：文本, 标签。"


def test_a_json_kind_and_a_setting_detail_are_messages_of_their_own(tmp_path):
    bad = tmp_path / "rows.jsonl"
    bad.write_text('{"text": "a", "label": "x"}\n[1, 2]\n', encoding="utf-8")
    with pytest.raises(DataError) as caught:
        read_table(bad)
    assert "Line 2 of rows.jsonl is a list, not an object with named fields." in str(caught.value)
    assert "rows.jsonl第 2 行是列表，不是带字段名的对象。" in error_text(caught.value, "zh")
    with pytest.raises(ConfigError) as caught:
        RunConfig.from_dict({"train": {"batch_size": "16"}})
    assert str(caught.value) == "Setting 'batch_size': must be a whole number, not '16'."
    assert error_text(caught.value, "zh") == "设置“batch_size”：必须是整数，而不是 '16'。"


def test_an_error_without_a_key_keeps_its_text_in_every_language():
    plain = WorkbenchError("Something only a programmer meets.", hint="Read the log.")
    assert plain.key is None and str(plain) == "Something only a programmer meets. Read the log."
    assert error_text(plain, "zh") == str(plain)
    assert error_text(ValueError("boom"), "zh") == "boom"
    stored = error_message(plain)
    assert stored["message"] == str(plain) and stored["message_code"] is None
    assert status_message(stored, "zh") == str(plain)


def test_the_device_lock_names_the_holder_in_chinese():
    busy = DeviceBusy("cpu", {"run": "sentiment-1", "by": "cli", "pid": 42})
    assert str(busy).startswith("The CPU is busy: run 'sentiment-1' (cli, process 42) is training on it.")
    assert error_text(busy, "zh").startswith("CPU 正忙：训练“sentiment-1”（cli，进程 42）正在上面训练。")
    nobody = DeviceBusy("cuda", {})
    assert error_text(nobody, "zh").startswith("cuda 正忙：另一个任务正在上面训练。")


def test_a_failed_runs_stored_status_shows_its_error_in_chinese(tmp_path):
    data = tmp_path / "one_class.csv"
    data.write_text("text,label\n" + "\n".join(f"sentence {i},pos" for i in range(40)) + "\n", encoding="utf-8")
    run = RunStore(tmp_path / "runs").create(tiny_run_config(data, "default"))
    result = train(run.config(), run)  # the data check refuses it before any model is built
    assert result.state == "failed"
    stored = json.loads((run.dir / "status.json").read_text(encoding="utf-8"))
    assert stored["state"] == "failed" and stored["message_code"] == "error.data.one_class"
    assert stored["message"] == (
        "Every labelled row of 'label' in one_class.csv has the label 'pos'. "
        "A classifier needs at least two classes; add examples of the others."
    )
    assert status_message(stored, "zh") == (
        "one_class.csv中“label”列所有带标签的行都是同一个标签“pos”。分类模型至少需要两个类别，请补充其他类别的样本。"
    )
    assert status_message(stored, "en") == stored["message"]
    # A later plain message replaces it: the stale key and hint are not trusted.
    run.set_status(message="Copying the files...")
    assert status_message(run.status(), "zh") == "Copying the files..."


def test_a_worker_that_died_is_told_in_chinese_with_its_last_words(tmp_path):
    from core.jobs import _ended_early

    log = tmp_path / "worker.log"
    log.write_text("loading\nKilled\n", encoding="utf-8")
    record = _ended_early(-9, log)
    assert record["message"].startswith("The training process was killed (signal 9); when nobody stopped it")
    assert record["message"].endswith("Its last words: Killed")
    zh = status_message(record, "zh")
    assert zh.startswith("训练进程被终止了（信号 9）。") and zh.endswith("它最后输出的是：Killed")
    quiet = _ended_early(1, tmp_path / "no.log")
    assert status_message(quiet, "zh") == (
        "训练进程意外退出（退出码 1）。请调小批大小或最大长度后重新开始，或从最近的检查点恢复训练。"
    )


def test_the_cli_prints_a_bad_input_error_in_chinese_under_a_chinese_lang(tmp_path):
    env = {**os.environ, "LANG": "zh_CN.UTF-8", "LANGUAGE": "", "LC_ALL": "", "LC_MESSAGES": ""}
    missing = tmp_path / "缺失.csv"
    command = [sys.executable, "-m", "core", "check", str(missing), "--task", "classification"]
    out = subprocess.run(command, capture_output=True, text=True, env=env, cwd=ROOT, timeout=120)
    assert out.returncode == 2
    assert out.stderr.strip() == f"错误：{missing} 处没有文件。请检查路径，或重新上传文件。"
    english = subprocess.run(
        command, capture_output=True, text=True, env={**env, "LANG": "en_US.UTF-8"}, cwd=ROOT, timeout=120
    )
    assert english.stderr.strip() == f"Error: No file at {missing}. Check the path, or upload the file again."
