"""The translation layer (issue 16): keys found in the code are in both catalogs, translations keep their fields,
engine messages stored in status.json show in the reader's language, and the command line follows LANG."""

from __future__ import annotations

import ast
import json
import os
import re
import string
import subprocess
import sys
from pathlib import Path

import pytest

from core import i18n
from core.i18n import env_language, message, state_label, status_message, t
from core.runs import RunStore
from tests.conftest import tiny_run_config

ROOT = Path(__file__).resolve().parents[2]
SOURCES = [ROOT / "app.py", *sorted((ROOT / "core").glob("*.py")), *sorted((ROOT / "ui").glob("*.py"))]
SOURCES += sorted((ROOT / "views").glob("*.py"))
EN, ZH = i18n.catalog("en"), i18n.catalog("zh")
# A catalog key: a known first part, then dotted lower-case words ("check.rows.few", "nav.page.home").
PREFIXES = sorted({key.split(".")[0] for key in EN})
KEY = re.compile(rf"^(?:{'|'.join(PREFIXES)})\.[a-z0-9_]+(?:\.[a-z0-9_]+)*$")


def keys_in_code() -> dict[str, str]:
    """Every string literal in the app's code that has the shape of a catalog key, with where it was found."""
    found: dict[str, str] = {}
    for path in SOURCES:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and KEY.match(node.value):
                found.setdefault(node.value, f"{path.relative_to(ROOT)}:{node.lineno}")
    return found


def fields(entry) -> set[str]:
    """The {names} a message fills in, across all its plural forms."""
    if isinstance(entry, dict):
        return set().union(*(fields(v) for k, v in entry.items() if k != "count"))
    return {name.split(".")[0].split("[")[0] for _, name, _, _ in string.Formatter().parse(entry) if name}


def test_the_extraction_finds_keys_of_every_kind():
    found = keys_in_code()
    # One of each way a key reaches t(): a call, a page table, a state table, a finding, a status message.
    for key in ("home.sample.button", "nav.page.train", "run.state.finished", "check.rows.few", "run.status.resuming"):
        assert key in found, key
    assert len(found) >= 60


def test_every_key_in_the_code_is_in_both_catalogs():
    found = keys_in_code()
    missing_zh = {key: where for key, where in found.items() if key not in ZH}
    missing_en = {key: where for key, where in found.items() if key not in EN}
    assert not missing_zh, f"keys used in the code but missing from locales/zh.json: {missing_zh}"
    assert not missing_en, f"keys used in the code but missing from locales/en.json: {missing_en}"


def test_the_catalogs_hold_the_same_keys_and_no_unused_ones():
    assert set(EN) == set(ZH), set(EN) ^ set(ZH)
    unused = set(EN) - set(keys_in_code())
    assert not unused, f"catalog keys no code uses: {sorted(unused)}"


def test_no_key_is_in_two_files_of_one_catalog():
    for lang in i18n.LANGUAGES:
        seen: dict[str, str] = {}
        for path in i18n.catalog_files(lang):
            for key in json.loads(path.read_text(encoding="utf-8")):
                assert key not in seen, f"{key} is in both {seen[key]} and {path.name}"
                seen[key] = path.name


@pytest.mark.parametrize("key", sorted(EN))
def test_each_translation_fills_the_same_fields(key):
    assert fields(ZH[key]) == fields(EN[key]), key


def test_chinese_uses_the_terms_practitioners_use():
    text = json.dumps(ZH, ensure_ascii=False)
    for term in ("微调", "验证集", "训练集", "测试集", "检查点", "准确率", "token"):
        assert term in text, term
    prose = re.sub(r"{[^}]*}", "", ZH["check.rows.few"] + ZH["home.intro"])
    assert not re.search(r"[A-Za-z]{3,}", prose)  # no English left in prose


def test_plural_forms_and_fallbacks():
    assert t("check.empty.some", "en", n=1) == "1 row has an empty text; they will be left out."
    assert t("check.empty.some", "en", n=2_000) == "2,000 rows have an empty text; they will be left out."
    assert t("check.empty.some", "zh", n=2_000) == "有 2,000 行的文本为空，训练时会略过这些行。"
    assert t("check.leakage.some", "en", val=1, test=2).startswith("1 validation row and 2 test rows also appear")
    assert t("check.leakage.some", "en", val=3, test=1).startswith("3 validation rows and 1 test row also appear")
    assert t("run.state.finished", "xx") == "finished"  # a language without a catalog: English
    assert t("no.such.key", "zh") == "no.such.key"  # a gap shows, it does not break the page
    assert t("check.rows.few", "zh") == t("check.rows.few", "en") == "check.rows.few"  # a missing field, likewise
    assert state_label("interrupted", "zh") == "已中断" and state_label("weird", "zh") == "weird"


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        ({"LANG": "zh_CN.UTF-8"}, "zh"),
        ({"LANG": "zh_TW.Big5"}, "zh"),
        ({"LANG": "en_GB.UTF-8"}, "en"),
        ({"LANG": "fr_FR.UTF-8"}, "en"),
        ({"LANG": "C"}, "en"),
        ({}, "en"),
        ({"LANGUAGE": "fr:zh_CN", "LANG": "en_US.UTF-8"}, "zh"),
        ({"LC_ALL": "en_US.UTF-8", "LANG": "zh_CN.UTF-8"}, "en"),
        ({"LC_MESSAGES": "zh_CN.UTF-8", "LANG": "en_US.UTF-8"}, "zh"),
    ],
)
def test_the_command_line_language_follows_the_environment(environ, expected):
    assert env_language(environ) == expected


def test_a_status_message_stored_by_the_engine_shows_in_the_readers_language(tmp_path, toy_csv):
    run = RunStore(tmp_path / "runs").create(tiny_run_config(toy_csv, "default"))
    run.set_status("failed", **message("run.status.start_failed", error="no space left"))
    stored = json.loads((run.dir / "status.json").read_text(encoding="utf-8"))
    assert stored["message"] == "The training process could not start: no space left"  # old readers still read it
    assert stored["message_code"] == "run.status.start_failed"
    assert status_message(stored, "zh") == "训练进程没能启动：no space left"
    assert status_message(stored, "en") == stored["message"]
    # A later plain message leaves the old key behind in the merged record: the text that is there wins.
    run.set_status(message="Copying the files...")
    assert status_message(run.status(), "zh") == "Copying the files..."


def test_how_a_run_ended_is_stored_as_a_message_the_reader_gets_in_chinese(tmp_path, toy_csv, tiny_bert_dir):
    from core.training import train

    config = tiny_run_config(toy_csv, tiny_bert_dir, max_steps=3, eval_every=1, early_stopping_patience=1)
    run = RunStore(tmp_path / "runs").create(config)
    result = train(config, run)
    status = run.status()
    assert status["message"] == result.message and status["message_code"].startswith("run.status.")
    chinese = status_message(status, "zh")
    assert chinese != status["message"] and not re.search(r"[A-Za-z]{4,}", chinese.replace("val_loss", ""))


def test_a_run_found_interrupted_says_so_in_chinese(tmp_path, toy_csv):
    store = RunStore(tmp_path / "runs")
    run = store.create(tiny_run_config(toy_csv, "default"))
    run.set_status("running")  # this process, with no job: an orphan after a restart
    assert store.recover_interrupted() == [run.id]
    status = run.status()
    assert status["state"] == "interrupted"
    assert status_message(status, "zh") == "运行这个任务的进程已经退出。恢复训练会从最近一个检查点继续。"


def test_the_cli_data_check_speaks_chinese_under_a_chinese_lang():
    env = {**os.environ, "LANG": "zh_CN.UTF-8", "LANGUAGE": "", "LC_ALL": "", "LC_MESSAGES": ""}
    sample = str(ROOT / "data" / "samples" / "sentiment_zh.csv")
    out = subprocess.run(
        [sys.executable, "-m", "core", "check", sample, "--task", "classification"],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    assert "[OK     ] 行数: 共 400 行。" in out.stdout
    assert "[WARNING] 适合中文的模型:" in out.stdout and "bert-base-chinese" in out.stdout
    assert "columns used: text=文本 text_pair=None label=标签" in out.stdout
    english = subprocess.run(
        [sys.executable, "-m", "core", "check", sample, "--task", "classification"],
        capture_output=True,
        text=True,
        env={**env, "LANG": "en_US.UTF-8"},
        cwd=ROOT,
        timeout=120,
    )
    assert "[OK     ] Rows: 400 rows." in english.stdout
