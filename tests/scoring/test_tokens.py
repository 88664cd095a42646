"""Token counts: the bundled SmolLM2 tokenizer, and the estimate it replaces when missing."""

from medmax_review.core import medmax, tokens


def test_bundled_tokenizer_counts_real_tokens(demo_rows):
    assert tokens.tokenizer() is not None and "bundled" in tokens.token_method()
    # The counts llama.cpp gives for the same text with the same vocabulary.
    assert tokens.count_text_tokens("The right lung has diffuse opacification of 12 mm.") == 14
    assert tokens.count_text_tokens("Is this a X-Ray? No.") == 9


def test_cjk_is_not_under_counted(demo_rows):
    chinese = next(r["question"] for r in demo_rows.values()
                   if r.get("question") and any("\u4e00" <= c <= "\u9fff" for c in r["question"]))
    counted = tokens.count_text_tokens(chinese)
    assert counted >= len(chinese)  # a byte-level BPE spends 1-3 tokens per character
    assert medmax.estimate_text_tokens(chinese) >= 0.7 * counted


def test_fallback_estimate_when_tokenizer_missing(monkeypatch):
    monkeypatch.setitem(tokens._state, "tokenizer", None)
    assert tokens.count_text_tokens("anything") is None
    assert tokens.token_method().startswith("estimate")
    assert medmax.estimate_tokens("<image>right lung") == medmax.IMAGE_TOKENS + 3
