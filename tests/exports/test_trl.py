"""The chat export as TRL reads it: its data utilities, its vision collator and a two-step
SFTTrainer run of a tiny vision-language model built here from a config (nothing downloaded)."""

import pytest

from tests.exports.conftest import export

pytestmark = pytest.mark.django_db

SPECIALS = ["<pad>", "<unk>", "<s>", "</s>", "<image>", "<|user|>", "<|assistant|>", "<|end|>"]
# Renders content lists as TRL hands them over: image parts as the processor's <image> token.
CHAT_TEMPLATE = (
    "{% for m in messages %}{{ '<|' + m['role'] + '|> ' }}{% for p in m['content'] %}"
    "{% if p['type'] == 'image' %}{{ '<image> ' }}{% else %}{{ p['text'] + ' ' }}{% endif %}"
    "{% endfor %}{{ '<|end|> ' }}{% endfor %}"
)


def tiny_llava(words: set[str]):
    """A LLaVA processor and model a few thousand parameters big: a word-level tokenizer over
    the export's own words, a 28-pixel CLIP vision tower, a one-layer Llama."""
    import torch
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import (
        CLIPImageProcessor,
        CLIPVisionConfig,
        LlamaConfig,
        LlavaConfig,
        LlavaForConditionalGeneration,
        LlavaProcessor,
        PreTrainedTokenizerFast,
    )

    vocab = {token: i for i, token in enumerate(SPECIALS + sorted(words - set(SPECIALS)))}
    backend = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=backend, pad_token="<pad>", unk_token="<unk>", bos_token="<s>",
        eos_token="</s>", additional_special_tokens=SPECIALS[4:],
    )
    processor = LlavaProcessor(
        image_processor=CLIPImageProcessor(
            size={"shortest_edge": 28}, crop_size={"height": 28, "width": 28}
        ),
        tokenizer=tokenizer, patch_size=14, vision_feature_select_strategy="default",
        num_additional_image_tokens=1, chat_template=CHAT_TEMPLATE,
    )
    config = LlavaConfig(
        vision_config=CLIPVisionConfig(
            hidden_size=16, intermediate_size=32, num_hidden_layers=1, num_attention_heads=2,
            image_size=28, patch_size=14, projection_dim=16,
        ),
        text_config=LlamaConfig(
            hidden_size=16, intermediate_size=32, num_hidden_layers=1, num_attention_heads=2,
            num_key_value_heads=1, vocab_size=len(vocab), max_position_embeddings=512,
            pad_token_id=0, bos_token_id=2, eos_token_id=3,
        ),
        image_token_id=vocab["<image>"], vision_feature_select_strategy="default",
        vision_feature_layer=-1,
    )
    torch.manual_seed(0)
    return processor, LlavaForConditionalGeneration(config)


def chat_export(project, tmp_path, monkeypatch):
    """The chat export loaded with `datasets`, its image paths made absolute for the processor."""
    import datasets

    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    _, folder = export(project, tmp_path, format="chat")
    train = datasets.load_dataset(str(folder), cache_dir=str(tmp_path / "hf"))["train"]
    return train.map(lambda row: {"images": [str(folder / p) for p in row["images"]]})


def words_of(dataset) -> set[str]:
    return {
        word for row in dataset for message in row["messages"] for part in message["content"]
        if part["type"] == "text" for word in part["text"].split()
    }


def test_trl_data_utilities_accept_every_chat_row(project, mixed, tmp_path, monkeypatch):
    from trl.data_utils import is_conversational, prepare_multimodal_messages
    from trl.trainer.sft_trainer import DataCollatorForVisionLanguageModeling

    # given the mixed project's chat export
    train = chat_export(project, tmp_path, monkeypatch)
    # then TRL sees conversations, and pairs each row's image parts with its images (it raises
    # when they differ, as it did for credentialed rows with an image part and no image)
    for row in train:
        assert is_conversational(row)
        prepare_multimodal_messages(row["messages"], images=row["images"])
    # and its vision collator batches image rows with text-only rows
    processor, _ = tiny_llava(words_of(train))
    batch = [row for row in train if row["images"]][:2] + [r for r in train if not r["images"]][:2]
    assert [bool(r["images"]) for r in batch] == [True, True, False, False]
    out = DataCollatorForVisionLanguageModeling(processor)([dict(r) for r in batch])
    assert out["pixel_values"].shape[0] == 2
    assert out["labels"].shape == out["input_ids"].shape


def test_sft_trainer_runs_two_steps_on_mixed_chat_export(project, mixed, tmp_path, monkeypatch):
    from trl import SFTConfig, SFTTrainer

    # given four rows of the chat export: a question on an image, an image generation, a
    # credentialed row and a text-only report (their image parts match their images)
    train = chat_export(project, tmp_path, monkeypatch)
    picked = []
    for want in (("vqa", "no"), ("image_generation", "no"), ("report_understanding", "yes"),
                 ("report_understanding", "no")):
        picked.append(next(i for i, r in enumerate(train) if (r["task"], r["credential"]) == want))
    subset = train.select(picked)
    assert [len(r["images"]) for r in subset] == [1, 1, 0, 0]
    processor, model = tiny_llava(words_of(train))
    # when SFTTrainer trains two steps on them, all four in each batch
    args = SFTConfig(
        output_dir=str(tmp_path / "sft"), max_steps=2, per_device_train_batch_size=4,
        report_to=[], save_strategy="no", logging_steps=1, use_cpu=True, bf16=False,
        activation_checkpointing=False, dataloader_num_workers=0, max_length=None,
    )
    trainer = SFTTrainer(model=model, args=args, train_dataset=subset, processing_class=processor)
    result = trainer.train()
    # then both steps ran and gave a finite loss
    assert result.global_step == 2
    losses = [log["loss"] for log in trainer.state.log_history if "loss" in log]
    assert len(losses) == 2 and all(loss == loss and loss > 0 for loss in losses)
