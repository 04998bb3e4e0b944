"""Real browser, generative fine-tuning: upload a prompt/response file, train, and get in the Playground an answer
that is only the answer (no prompt echoed, nothing after the stop token)."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
import torch

from tests.e2e.conftest import choose_local_model, wait_ready
from tests.e2e.test_browser import set_number, shot

pytestmark = pytest.mark.e2e
ANSWER = "Thank you, we will reply soon."


@pytest.fixture
def tiny_gpt2_dir(tmp_path: Path) -> Path:
    """A 2-layer, 64-wide GPT-2 with a BPE tokenizer trained here, saved like a hub model (no chat template:
    the workbench gives it its default one)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import GPT2Config, GPT2LMHeadModel, PreTrainedTokenizerFast

    texts = [f"message {i}: where is my parcel number {i * 7}?" for i in range(200)] + [ANSWER] * 20
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=400, special_tokens=["<|endoftext|>"], show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())  # fmt: skip
    tok.train_from_iterator(texts, trainer=trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<|endoftext|>", pad_token="<|endoftext|>")
    torch.manual_seed(0)
    eos = fast.eos_token_id
    cfg = GPT2Config(vocab_size=len(fast), n_positions=128, n_embd=64, n_layer=2, n_head=2, bos_token_id=eos,
                     eos_token_id=eos, pad_token_id=eos)  # fmt: skip
    folder = tmp_path / "tiny-gpt2"
    GPT2LMHeadModel(cfg).save_pretrained(folder)
    fast.save_pretrained(folder)
    return folder


def test_upload_prompt_response_train_and_get_only_the_answer(server, page, tmp_path, tiny_gpt2_dir):
    csv = tmp_path / "support.csv"
    rows = [{"prompt": f"message {i}: where is my parcel number {i * 7}?", "response": ANSWER} for i in range(160)]
    pd.DataFrame(rows).to_csv(csv, index=False)  # the answer holds a comma: quoted

    # Data: upload, choose generation; the prompt/response columns are recognised; save.
    page.goto(f"{server.url}/data")
    wait_ready(page)
    page.locator("[data-testid='stFileUploader'] input[type='file']").set_input_files(str(csv))
    page.get_by_role("heading", name="Columns").wait_for()
    wait_ready(page)
    page.get_by_role("combobox", name="Task", exact=True).click()
    page.get_by_role("option").filter(has_text="generation").click()
    wait_ready(page)
    page.get_by_text("the model learns to write the response to each prompt").wait_for()
    assert page.get_by_role("combobox", name="Response column", exact=True).input_value() == "response"
    page.get_by_role("button", name="Save dataset").click()
    wait_ready(page)
    page.get_by_text("Saved as dataset").wait_for()
    shot(page, "sft-1-data")

    # Train: the tiny GPT-2 folder, 60 steps on one thread.
    page.get_by_role("button", name="Train with this dataset").click()
    wait_ready(page)
    choose_local_model(page, tiny_gpt2_dir)
    page.get_by_text("2 layers").first.wait_for()
    page.get_by_text("Advanced settings").click()
    set_number(page, "Max steps", 60)
    set_number(page, "Num threads", 1)
    page.get_by_role("spinbutton", name="Learning rate", exact=True).fill("5e-3")
    page.get_by_role("spinbutton", name="Learning rate", exact=True).press("Enter")
    wait_ready(page)
    page.get_by_role("button", name="Start training").click()
    wait_ready(page)
    page.locator("h3").filter(has_text="finished").wait_for()
    shot(page, "sft-2-trained")
    (run_dir,) = list((server.workspace / "runs").iterdir())
    meta = json.loads((run_dir / "model" / "workbench.json").read_text())
    assert meta["sft"]["shape"] == "pairs"

    # Playground: a new prompt in, only the answer out.
    page.get_by_role("button", name="Try it in the Playground").click()
    wait_ready(page)
    page.get_by_role("heading", name="Playground").wait_for()
    prompt = page.get_by_role("textbox", name="Prompt", exact=True)
    prompt.fill("message 999: where is my parcel number 42?")
    page.get_by_role("button", name="Generate").click()
    wait_ready(page)
    answer = page.locator("[data-testid='stText']").filter(has_text=ANSWER)
    answer.first.wait_for()
    assert answer.first.inner_text().strip() == ANSWER  # not the prompt, nothing after the stop token
    shot(page, "sft-3-playground")
    assert not page.locator("[data-testid='stException']").count()
