"""Security of a shared instance: hostile upload names, safe model formats, no remote code unless asked,
no secret on disk, a server bound to this machine, and the optional allow-list of model folders."""

from __future__ import annotations

import ast
import tomllib
from pathlib import Path

import pytest

from core.config import RunConfig
from core.datasets import DatasetSettings, DatasetStore, safe_name, stage_upload
from core.errors import ConfigError, DataError, ModelError, WorkbenchError
from core.jobs import JobRegistry
from core.models import resolve_source
from core.runs import RunStore

REPO = Path(__file__).resolve().parents[2]
SOURCE_DIRS = ("core", "pages", "ui", "bench", "scripts")
TOKEN = "hf_TESTsecretTOKEN0123456789abcdefXYZ"


@pytest.fixture(autouse=True)
def _one_torch_thread():
    import torch

    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


def repo_python_files() -> list[Path]:
    files = [REPO / "app.py"] if (REPO / "app.py").exists() else []
    for folder in SOURCE_DIRS:
        files += sorted((REPO / folder).rglob("*.py"))
    return files


def calls(tree: ast.AST):
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            yield node


def call_name(node: ast.Call) -> str:
    func = node.func
    parts = []
    while isinstance(func, ast.Attribute):
        parts.append(func.attr)
        func = func.value
    if isinstance(func, ast.Name):
        parts.append(func.id)
    return ".".join(reversed(parts))


def keyword(node: ast.Call, name: str):
    for kw in node.keywords:
        if kw.arg == name:
            return kw.value
    return None


# ------------------------------------------------------------------------------------------------ code
def test_every_torch_load_uses_weights_only():
    found = []
    for path in repo_python_files():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module == "torch":
                assert "load" not in {a.name for a in node.names}, f"{path}: import torch.load by name"
        for node in calls(tree):
            if call_name(node) == "torch.load":
                found.append(f"{path.relative_to(REPO)}:{node.lineno}")
                value = keyword(node, "weights_only")
                assert isinstance(value, ast.Constant) and value.value is True, f"{found[-1]} without weights_only=True"
    assert found, "expected at least the trainer-state load in core/training.py"


def test_no_pickle_and_no_remote_code_switched_on_in_the_source():
    for path in repo_python_files():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in calls(tree):
            name = call_name(node)
            builtin = isinstance(node.func, ast.Name) and name in ("eval", "exec")  # not model.eval()
            assert not builtin and name not in ("pickle.load", "pickle.loads", "joblib.load"), (
                f"{path.relative_to(REPO)}:{node.lineno} calls {name}"
            )
            value = keyword(node, "trust_remote_code")
            assert not (isinstance(value, ast.Constant) and value.value is True), (
                f"{path.relative_to(REPO)}:{node.lineno} turns trust_remote_code on unconditionally"
            )


def test_trust_remote_code_is_off_unless_set():
    assert RunConfig().model.trust_remote_code is False
    assert RunConfig.from_dict({"model": {"source": "some/model"}}).to_dict()["model"]["trust_remote_code"] is False


# ------------------------------------------------------------------------------------------------ a real run
@pytest.fixture
def finished_run(workspace, toy_csv, tiny_bert_dir, monkeypatch):
    """A tiny run trained with an HF token in the environment, spying on what the loaders were asked."""
    import transformers

    asked = []
    for cls in (transformers.AutoTokenizer, transformers.AutoModelForSequenceClassification):
        real = cls.from_pretrained.__func__

        def spy(klass, *args, _real=real, **kwargs):
            asked.append(kwargs.get("trust_remote_code", False))
            return _real(klass, *args, **kwargs)

        monkeypatch.setattr(cls, "from_pretrained", classmethod(spy))
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    monkeypatch.setenv("HUGGING_FACE_HUB_TOKEN", TOKEN)
    config = RunConfig.from_dict({
        "data": {"train_path": str(toy_csv)},
        "model": {"source": str(tiny_bert_dir), "task": "classification"},
        "train": {"max_steps": 3, "save_every": 2, "batch_size": 16, "max_length": 32, "precision": "fp32",
                  "num_threads": 1, "log_every": 1},
    })  # fmt: skip
    # A thread job: the spies live in this process (a worker process would load through its own, unspied copy).
    job, _ = JobRegistry(RunStore(workspace / "runs"), mode="thread").start(config)
    assert job.join(300).state == "finished", job.result
    return job.run, asked


def test_a_run_saves_safetensors_only_and_loads_no_remote_code(finished_run):
    import torch

    run, asked = finished_run
    assert asked and not any(asked), "a loader was asked to run remote code"
    files = [p for p in run.dir.rglob("*") if p.is_file()]
    pickles = [p for p in files if p.suffix in (".bin", ".pkl", ".pickle", ".pth", ".ckpt")]
    assert not pickles, pickles
    assert (run.model_dir / "model.safetensors").exists()
    for checkpoint in run.checkpoints():
        assert (checkpoint / "model.safetensors").exists()
        # The one torch file (optimizer, schedule, RNG) holds tensors and plain types only.
        torch.load(checkpoint / "trainer_state.pt", weights_only=True)
    assert {p.suffix for p in files if p.suffix == ".pt"} <= {".pt"}
    assert all(p.name == "trainer_state.pt" for p in files if p.suffix == ".pt")


def test_an_hf_token_is_never_written_to_the_run(finished_run, workspace):
    run, _ = finished_run
    for path in workspace.rglob("*"):
        if path.is_file():
            assert TOKEN.encode() not in path.read_bytes(), f"the token was written to {path}"


@pytest.mark.parametrize("key", ["token", "hf_token", "HF_TOKEN", "use_auth_token", "api_key", "password"])
def test_config_refuses_credentials_without_echoing_them(key):
    for section in ("data", "model", "train"):
        with pytest.raises(ConfigError) as err:
            RunConfig.from_dict({section: {key: TOKEN}})
        assert TOKEN not in str(err.value)
        assert "credential" in str(err.value) or "unknown" in str(err.value).lower()
    with pytest.raises(ConfigError) as err:
        RunConfig.from_dict({key: TOKEN})
    assert TOKEN not in str(err.value)


# ------------------------------------------------------------------------------------------------ server settings
def test_streamlit_config_binds_locally_keeps_xsrf_and_caps_uploads():
    config = tomllib.loads((REPO / ".streamlit" / "config.toml").read_text(encoding="utf-8"))
    server = config["server"]
    assert server["address"] == "127.0.0.1"
    assert server.get("enableXsrfProtection", True) is True
    assert 1 <= server["maxUploadSize"] <= 200  # MB; the data reader refuses more than its own limit anyway
    assert server.get("enableCORS", True) is True
    assert config.get("client", {}).get("showErrorDetails") in ("none", False)  # no tracebacks to visitors
    assert config.get("browser", {}).get("gatherUsageStats") is False


# ------------------------------------------------------------------------------------------------ model allow-list
def test_model_folder_outside_the_allow_list_is_refused(tmp_path, tiny_bert_dir, monkeypatch):
    allowed = tmp_path / "models"
    inside = allowed / "tiny"
    inside.mkdir(parents=True)
    (inside / "config.json").write_text("{}", encoding="utf-8")
    monkeypatch.setenv("WORKBENCH_MODEL_DIRS", str(allowed))
    assert resolve_source(str(inside)) == (str(inside.resolve()), True)
    # Outside, a sibling whose name starts the same, and a symlink inside pointing out: all refused.
    sibling = tmp_path / "models-evil"
    sibling.mkdir()
    link = allowed / "escape"
    link.symlink_to(tiny_bert_dir, target_is_directory=True)
    for folder in (tiny_bert_dir, sibling, link, allowed / ".." / "models-evil"):
        with pytest.raises(ModelError) as err:
            resolve_source(str(folder))
        assert "not allowed" in str(err.value) and "WORKBENCH_MODEL_DIRS" in str(err.value)


def test_run_started_from_a_refused_folder_fails_with_the_message(workspace, toy_csv, tiny_bert_dir, tmp_path,
                                                                  monkeypatch):  # fmt: skip
    monkeypatch.setenv("WORKBENCH_MODEL_DIRS", str(tmp_path / "approved-models"))
    config = RunConfig.from_dict({"data": {"train_path": str(toy_csv)},
                                  "model": {"source": str(tiny_bert_dir)}, "train": {"num_threads": 1}})  # fmt: skip
    job, _ = JobRegistry(RunStore(workspace / "runs")).start(config)
    result = job.join(300)
    assert result.state == "failed" and "not allowed on this server" in result.message
    assert not job.run.model_dir.exists()


# ------------------------------------------------------------------------------------------------ names from users
HOSTILE = [
    "../../etc/passwd", "/etc/passwd", "..\\..\\windows\\win.ini", "C:\\Windows\\evil", "..", ".", "",
    ".hidden", "...", "a/../../b", "~/x", "$(rm -rf ~)", "name\nwith\nlines", "nul\x00byte", "CON", "nul.txt",
    "ｆｕｌｌ／ｗｉｄｔｈ", "x" * 1000, "dataset", " dataset ", "-rf", "%2e%2e%2fescape",
]  # fmt: skip


@pytest.mark.parametrize("name", HOSTILE)
def test_hostile_dataset_names_stay_inside_the_store_and_never_overwrite(workspace, name):
    store = DatasetStore(workspace / "datasets")
    first = store.save("dataset", b"text,label\na film,pos\n", "first.csv", DatasetSettings())
    try:
        saved = store.save(name, b"text,label\nanother film,neg\n", name + ".csv", DatasetSettings(),
                           validation=(name + ".csv", b"text,label\nthird film,pos\n"))  # fmt: skip
    except DataError as err:  # refusing is fine (".csv" alone is a hidden file without extension) ...
        assert "not a file type" in str(err)
        assert [d.name for d in store.list()] == [first.name]  # ... as long as nothing was half-saved
        return
    root = store.root.resolve()
    assert saved.dir.resolve().parent == root and saved.path.resolve().parent == saved.dir.resolve()
    assert not saved.name.startswith(".") and len(saved.name) <= 60
    assert saved.name == safe_name(saved.name)
    assert first.path.read_bytes() == b"text,label\na film,pos\n"  # the older dataset is untouched
    assert saved.dir != first.dir
    again = store.get(saved.name)
    assert again.path == saved.path and again.path.read_bytes() == b"text,label\nanother film,neg\n"
    assert (again.dir / again.validation_file).resolve().parent == saved.dir.resolve()
    # Nothing anywhere else in the workspace.
    outside = [p for p in workspace.rglob("*") if root not in p.resolve().parents and p.resolve() != root]
    assert not outside, outside


@pytest.mark.parametrize("name", ["../../escape.csv", "/tmp/abs.csv", "..\\x.csv", ".csv", "a\x00.csv"])
def test_hostile_upload_file_names_are_staged_inside_the_workspace(workspace, name):
    try:
        staged = stage_upload(name, b"text,label\na film,pos\n", workspace / "datasets")
    except DataError as err:
        assert name == ".csv" and "not a file type" in str(err)
        return
    assert staged.resolve().parent.parent == (workspace / "datasets" / ".staging").resolve()
    assert staged.suffix == ".csv" and not staged.name.startswith(".")


@pytest.mark.parametrize("name", ["../x", "..", "/etc", "a/../../b", "", " ", "x" * 200, "\x00"])
def test_hostile_run_ids_are_refused(workspace, name):
    store = RunStore(workspace / "runs")
    (workspace / "precious").mkdir()
    with pytest.raises(WorkbenchError):
        store.get(name)
    with pytest.raises(WorkbenchError):
        store.delete(name)
    if name:  # an empty id means "make one up"
        with pytest.raises(WorkbenchError):
            store.create(RunConfig(), run_id=name)
    assert (workspace / "precious").is_dir()


@pytest.mark.parametrize("name", ["../x", "..", "/etc", "a/../b", ".hidden"])
def test_hostile_dataset_lookups_are_refused(workspace, name):
    store = DatasetStore(workspace / "datasets")
    with pytest.raises(DataError):
        store.get(name)
    with pytest.raises(DataError):
        store.delete(name)


def test_no_token_sits_in_the_repository_config():
    import re

    token_like = re.compile(r"hf_[A-Za-z0-9]{30,}")
    for path in [*(REPO / ".streamlit").glob("*.toml"), *REPO.glob("*.toml"), *REPO.glob("*.sh")]:
        assert not token_like.search(path.read_text(encoding="utf-8")), path
    if (REPO / ".streamlit" / "secrets.toml").exists():
        assert "secrets.toml" in (REPO / ".gitignore").read_text(encoding="utf-8")
