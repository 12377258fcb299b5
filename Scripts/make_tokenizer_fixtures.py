#!/usr/bin/env python3
"""Builds the tokenizer fixtures with Hugging Face `tokenizers` (PyPI) and records the ids it gives.

    python3 -m venv /tmp/venv && /tmp/venv/bin/pip install tokenizers
    /tmp/venv/bin/python Scripts/make_tokenizer_fixtures.py

Writes:
  Tests/Fixtures/tokenizers/<name>.json   tokenizer.json files made by `tokenizers` itself:
      smollm       BPE trained on Python stdlib sources, SmolLM2's pipeline (Digits individual +
                   ByteLevel), ChatML specials <|endoftext|> <|im_start|> <|im_end|> as ids 0-2
      gpt2         GPT-2's pipeline (ByteLevel with its regex, no prefix space), <|endoftext|>
      added        NFC normalizer, ByteLevel with add_prefix_space, special and non-special added
                   tokens with lstrip / rstrip / single_word / normalized variants
      llama3       Llama 3's Split regex + ByteLevel without regex, ignore_merges
      dropped      gpt2 without the characters of bytes 0x00-0x1F (as SmolLM2 lacks a few): dropped
      unknown      the same with unk_token <|endoftext|> and fuse_unk: a run becomes one unknown
  Tests/Fixtures/tokenizers/expected.json  {name: [{"text", "ids", "decoded",
      "decoded_skipping_special", "pieces"}]} from `encode(text, add_special_tokens=False)`,
      `decode(ids, skip_special_tokens=False/True)` and the pre-tokenizer alone, over a
      corpus of scripts, whitespace kinds, emoji sequences, digits, contractions, specials and near-misses, and source code.
  Tests/Fixtures/ouro-trained-s/tokenizer.json (+ tokenizer_config.json): the bundled trained
      model's byte tokenizer (id = byte + 3; 0-2 the ChatML specials), SmolLM2's pipeline, no merges.

The stdlib files come from this interpreter's installation (sorted list below); the committed outputs
were made with Python 3.11 and tokenizers 0.23.
"""
import json
import os
import sys
import sysconfig

from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "Tests", "Fixtures", "tokenizers")
STDLIB = sysconfig.get_paths()["stdlib"]
TRAINING_FILES = ["argparse.py", "ast.py", "collections/__init__.py", "dataclasses.py", "difflib.py",
                  "email/message.py", "enum.py", "functools.py", "inspect.py", "json/decoder.py",
                  "pathlib.py", "pydoc.py", "re/_parser.py", "subprocess.py", "textwrap.py", "typing.py"]
CHATML = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
LLAMA3_PATTERN = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"


def training_text():
    texts = []
    for name in TRAINING_FILES:
        with open(os.path.join(STDLIB, name), encoding="utf-8") as f:
            texts.append(f.read())
    # A little of every script the corpus below uses, so merges exist beyond ASCII.
    texts.append(MULTILINGUAL * 20)
    return texts


MULTILINGUAL = """
日本語のテキストと中文文本，还有한국어 문장. Русский текст и ещё немного. Ελληνικά γράμματα.
النص العربي هنا مع بعض الكلمات. עברית כאן. हिन्दी पाठ यहाँ है। ภาษาไทยอยู่ที่นี่ Tiếng Việt có dấu.
Émile and Zoë café naïve façade — “quotes” ‘single’ … ½ ¾ ² ³ ٣٤٥ ۱۲۳ १२३ ⅫⅣ
"""

CORPUS = [
    "",
    " ",
    "Hello world",
    "Hello, world! How are you doing today?",
    " leading space and trailing space ",
    "  two leading spaces",
    "multiple   spaces   between    words",
    "tabs\tbetween\t\twords\tand\ttabs",
    "line one\nline two\n\nline four\n",
    "windows\r\nline\r\nendings\r\n",
    "no-break\u00a0space and ideographic\u3000space and line\u2028separator and para\u2029graph",
    "thin\u2009space, em\u2003space, narrow\u202fnbsp, ogham\u1680mark, next\u0085line",
    "\n\n\n   \t  \n",
    "trailing spaces    ",
    "   ",
    "1234567890",
    "pi is 3.14159265358979323846264338327950288419716939937510",
    "phone 555-0123, year 2024, 1,000,000 and 0.5% and 1e-10",
    "Arabic-Indic ٠١٢٣٤٥٦٧٨٩ and Devanagari १२३ and fullwidth １２３ and superscript ²³ and fractions ½⅓",
    "don't won't can't it's I'm you're we've they'll she'd",
    "DON'T WON'T IT'S I'M YOU'RE WE'VE THEY'LL SHE'D",
    "rock 'n' roll, 'quoted', ''double'', 's alone, x's",
    "l'homme d'état, dell'arte",
    "日本語のテキストです。東京は大きい都市です。",
    "中文文本测试，包括标点符号！还有数字123。",
    "한국어 텍스트 테스트입니다.",
    "Русский текст: Привет, мир! Как дела?",
    "Ελληνικά: Γειά σου Κόσμε",
    "العربية: مرحبا بالعالم، كيف حالك؟",
    "עברית: שלום עולם",
    "हिन्दी: नमस्ते दुनिया",
    "ไทย: สวัสดีชาวโลก",
    "Tiếng Việt: Xin chào thế giới",
    "emoji 😀😃😄 and 👍🏽 thumbs",
    "family 👨‍👩‍👧‍👦 and couple 👩‍❤️‍👨 and rainbow flag 🏳️‍🌈",
    "flags 🇫🇷🇩🇪🇯🇵🇺🇸 and keycap 1️⃣ and #️⃣",
    "combining: e\u0301 a\u0300 o\u0308 n\u0303 (decomposed) vs é à ö ñ (precomposed)",
    "Zalgo: Z\u0351\u0352\u0353a\u0354\u0355l\u0356g\u0357o\u0358",
    "Hangul jamo: \u1100\u1161\u11a8 vs 각",
    "ligature ﬁ and ﬂ, fullwidth ＡＢＣ, circled ①②, roman Ⅻ",
    "math: ∀x∈ℝ, ∃y: x² + y² ≤ 1 → ∞",
    "symbols: © ® ™ € £ ¥ § ¶ † ‡ • … ‰",
    "<|im_start|>user\nHello!<|im_end|>\n<|im_start|>assistant\n",
    "<|endoftext|>",
    "text<|endoftext|>more text",
    "<|im_start|><|im_end|><|im_start|>",
    "near misses: <|im_start| <im_start|> <|im_start |> <|IM_START|> <||> <| im_end |>",
    "nested <|im_<|im_end|>start|>",
    " <|im_start|> spaced <|im_end|> ",
    "<|endoftext|><|endoftext|>",
    "def f(x):\n    return x ** 2  # square\n",
    "    indented = {'key': [1, 2, 3], \"other\": None}\n\tif a != b:\n\t\tpass\n",
    "fn main() { println!(\"{}\", 42); }",
    "SELECT * FROM users WHERE id = 42 AND name LIKE '%test%';",
    "<html><body class=\"main\">Text &amp; more</body></html>",
    "https://example.com/path?query=value&other=123#fragment",
    "user@example.com, @mention, #hashtag, $variable, %percent",
    "CamelCaseIdentifier snake_case_identifier SCREAMING_CASE kebab-case",
    "!!!???...,,,;;;:::---___===+++***&&&|||",
    "a" * 100,
    " " * 70 + "x",
    "\t" * 10 + "y",
    "z" * 30 + " " + "9" * 40,
    "ab\u200bcd\u200ce\u200df\ufeffg",
    "control \u0001\u0002\u001b[0m chars and del \u007f",
    "lone high plane: 𝕳𝖊𝖑𝖑𝖔 𝓌𝑜𝓇𝓁𝒹 𐍈 𠀀",
    MULTILINGUAL,
]

# Added-token variants (for the "added" tokenizer).
ADDED = [
    AddedToken("<|endoftext|>", special=True, normalized=False),
    AddedToken("<special>", special=True, normalized=False, lstrip=True, rstrip=True),
    AddedToken("[MASK]", special=True, normalized=False, lstrip=True),
    AddedToken("<right>", special=True, normalized=False, rstrip=True),
    AddedToken("word", special=False, normalized=True, single_word=True),
    AddedToken("café", special=False, normalized=True),
    AddedToken("<raw é>", special=False, normalized=False),
    AddedToken("hello world", special=False, normalized=False),
]
ADDED_CORPUS = [
    "a <special> b",
    "a   <special>   b",
    "x[MASK]y and x  [MASK]  y",
    "x<right>   y",
    "word words sword word_ word. (word) 1word word1 ,word,",
    "a café and a cafe\u0301 and CAFÉ",
    "<raw é> vs <raw e\u0301>",
    "say hello world, hello  world, helloworld",
    "<|endoftext|>word<special>[MASK]",
    "\u00a0<special>\u3000",
]


def save(tokenizer, name):
    path = os.path.join(OUT, f"{name}.json")
    tokenizer.save(path, pretty=False)
    return Tokenizer.from_file(path)


def trained(name, pre_tokenizer, specials, vocab_size, normalizer=None, decoder_prefix=False):
    tok = Tokenizer(models.BPE())
    if normalizer is not None:
        tok.normalizer = normalizer
    tok.pre_tokenizer = pre_tokenizer
    tok.decoder = decoders.ByteLevel()
    tok.post_processor = processors.ByteLevel(trim_offsets=False)
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=specials, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(training_text(), trainer=trainer)
    return tok


def build_smollm():
    pre = pre_tokenizers.Sequence([pre_tokenizers.Digits(individual_digits=True),
                                   pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)])
    return save(trained("smollm", pre, CHATML, 3000), "smollm")


def build_gpt2():
    pre = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    return save(trained("gpt2", pre, ["<|endoftext|>"], 2000), "gpt2")


def build_added():
    pre = pre_tokenizers.ByteLevel(add_prefix_space=True, use_regex=True)
    tok = trained("added", pre, [], 1500, normalizer=normalizers.Sequence([normalizers.NFC()]))
    tok.add_tokens(ADDED)
    return save(tok, "added")


def build_llama3():
    pre = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(LLAMA3_PATTERN), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])
    tok = save(trained("llama3", pre, ["<|begin_of_text|>", "<|end_of_text|>"], 2500), "llama3")
    # `ignore_merges` is not a trainer option: set it in the file, then let `tokenizers` read it back.
    path = os.path.join(OUT, "llama3.json")
    with open(path, encoding="utf-8") as f:
        data = json.load(f)
    data["model"]["ignore_merges"] = True
    with open(path, "w", encoding="utf-8") as f:
        json.dump(data, f, ensure_ascii=False, separators=(",", ":"))
    return Tokenizer.from_file(path)


def without_control_bytes(source, name, unk_token=None):
    """A copy of `source` whose vocabulary lacks bytes 0x00-0x1F, with the merges that need them removed."""
    with open(os.path.join(OUT, f"{source}.json"), encoding="utf-8") as f:
        data = json.load(f)
    table = bytes_to_unicode()
    missing = {table[b] for b in range(0x20)}
    vocab = data["model"]["vocab"]
    kept = {t: i for t, i in vocab.items() if not any(c in missing for c in t) or t in CHATML}
    merges = [m for m in data["model"]["merges"] if all(part in kept for part in (m.split(" ") if isinstance(m, str) else m))]
    data["model"]["vocab"] = kept
    data["model"]["merges"] = merges
    data["model"]["unk_token"] = unk_token
    data["model"]["fuse_unk"] = unk_token is not None
    path = os.path.join(OUT, f"{name}.json")
    with open(path, "w", encoding="utf-8") as f:
        json.dump(data, f, ensure_ascii=False, separators=(",", ":"))
    return Tokenizer.from_file(path)


def source_samples():
    """A few chunks of stdlib code that were not in the training files."""
    samples = []
    for name in ["heapq.py", "string.py", "tokenize.py"]:
        with open(os.path.join(STDLIB, name), encoding="utf-8") as f:
            text = f.read()
        samples.append(text[:3000])
    return samples


def record(tokenizer, texts):
    """ids and decoded text; `pieces` is the pre-tokenizer's output on the normalized text (added
    tokens not extracted), in byte-level characters, so that splits are compared even where the
    small vocabularies would merge the same either way."""
    rows = []
    for text in texts:
        ids = tokenizer.encode(text, add_special_tokens=False).ids
        normalized = tokenizer.normalizer.normalize_str(text) if tokenizer.normalizer else text
        pieces = [piece for piece, _ in tokenizer.pre_tokenizer.pre_tokenize_str(normalized)]
        rows.append({"text": text, "ids": ids, "decoded": tokenizer.decode(ids, skip_special_tokens=False),
                     "decoded_skipping_special": tokenizer.decode(ids, skip_special_tokens=True), "pieces": pieces})
    return rows


def build_trained_fixture():
    """ouro-trained-s: the model was trained on bytes with id = byte + 3."""
    byte_chars = pre_tokenizers.ByteLevel.alphabet()
    # The alphabet is a set; order the characters by the byte they stand for (GPT-2's table).
    table = bytes_to_unicode()
    vocab = {token: i for i, token in enumerate(CHATML)}
    for byte in range(256):
        vocab[table[byte]] = byte + 3
    assert set(table.values()) == set(byte_chars)
    tok = Tokenizer(models.BPE(vocab=vocab, merges=[]))
    tok.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.Digits(individual_digits=True),
                                                 pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)])
    tok.decoder = decoders.ByteLevel()
    tok.post_processor = processors.ByteLevel(trim_offsets=False)
    tok.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in CHATML])
    folder = os.path.join(ROOT, "Tests", "Fixtures", "ouro-trained-s")
    tok.save(os.path.join(folder, "tokenizer.json"), pretty=False)
    config = {
        "add_bos_token": False,
        "bos_token": None,
        "eos_token": "<|im_end|>",
        "pad_token": "<|endoftext|>",
        "unk_token": None,
        "model_max_length": 2048,
        "tokenizer_class": "GPT2Tokenizer",
        "chat_template": ("{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + "
                          "message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}"
                          "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"),
    }
    with open(os.path.join(folder, "tokenizer_config.json"), "w", encoding="utf-8") as f:
        json.dump(config, f, indent=2)
        f.write("\n")
    check = Tokenizer.from_file(os.path.join(folder, "tokenizer.json"))
    sample = "<|im_start|>user\nHi 42 é<|im_end|>"
    ids = check.encode(sample, add_special_tokens=False).ids
    expected = [1] + [b + 3 for b in "user\nHi 42 é".encode()] + [2]
    assert ids == expected, (ids, expected)


def bytes_to_unicode():
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, map(chr, cs)))


def main():
    os.makedirs(OUT, exist_ok=True)
    corpus = CORPUS + source_samples()
    expected = {
        "smollm": record(build_smollm(), corpus),
        "gpt2": record(build_gpt2(), corpus),
        "added": record(build_added(), corpus + ADDED_CORPUS),
        "llama3": record(build_llama3(), corpus),
        "dropped": record(without_control_bytes("gpt2", "dropped"), corpus),
        "unknown": record(without_control_bytes("gpt2", "unknown", unk_token="<|endoftext|>"), corpus),
    }
    with open(os.path.join(OUT, "expected.json"), "w", encoding="utf-8") as f:
        json.dump(expected, f, ensure_ascii=False, indent=0)
        f.write("\n")
    build_trained_fixture()
    print(f"wrote {OUT} ({sum(len(v) for v in expected.values())} texts) and the ouro-trained-s tokenizer")


if __name__ == "__main__":
    sys.exit(main())
