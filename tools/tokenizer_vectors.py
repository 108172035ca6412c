# Golden-vector generator for the CLIP BPE tokenizer: a plain Python port of OpenAI's simple_tokenizer.py.
"""Writes test/golden/tokenizer_vectors.json.

Independent of the TypeScript code: it re-implements OpenAI CLIP's ``clip/simple_tokenizer.py``
(openai/CLIP) directly from the vendored ``bpe_simple_vocab_16e6.txt.gz``.

Two stand-ins, because this machine has neither ``ftfy`` nor the third-party ``regex`` module:

* ``ftfy.fix_text`` is replaced by NFC normalisation (ftfy ends with NFC; its mojibake repair,
  quote uncurling and width folding are not reproduced -- the same choice HF's fast tokenizer makes).
* The pre-tokenisation regex
  ``<|startoftext|>|<|endoftext|>|'s|'t|'re|'ve|'m|'ll|'d|[\\p{L}]+|[\\p{N}]|[^\\s\\p{L}\\p{N}]+``
  is implemented as a hand-written scanner over ``unicodedata`` general categories (L* letters,
  N* numbers), with the same leftmost-first alternation semantics as ``regex.findall``.

Everything else (html.unescape twice, the ``\\s+`` collapse with Python's ``re``, lower(),
bytes_to_unicode, the greedy lowest-rank BPE loop) is the reference code.

Run:  /usr/bin/python3 tools/tokenizer_vectors.py
"""
import gzip
import html
import json
import os
import re
import sys
import unicodedata

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BPE_PATH = os.path.join(ROOT, "assets", "clip-bpe", "bpe_simple_vocab_16e6.txt.gz")
OUT_PATH = os.path.join(ROOT, "test", "golden", "tokenizer_vectors.json")


def bytes_to_unicode():
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(2**8):
        if b not in bs:
            bs.append(b)
            cs.append(2**8 + n)
            n += 1
    return dict(zip(bs, [chr(c) for c in cs]))


def get_pairs(word):
    pairs = set()
    prev = word[0]
    for ch in word[1:]:
        pairs.add((prev, ch))
        prev = ch
    return pairs


def basic_clean(text):
    text = unicodedata.normalize("NFC", text)  # stand-in for ftfy.fix_text
    text = html.unescape(html.unescape(text))
    return text.strip()


def whitespace_clean(text):
    text = re.sub(r"\s+", " ", text)
    return text.strip()


SPECIALS = ("<|startoftext|>", "<|endoftext|>")
CONTRACTIONS = ("'s", "'t", "'re", "'ve", "'m", "'ll", "'d")


def is_letter(ch):
    return unicodedata.category(ch).startswith("L")


def is_number(ch):
    return unicodedata.category(ch).startswith("N")


def pre_tokenize(text):
    """Hand-written equivalent of regex.findall(CLIP pattern, text, IGNORECASE) on lowercased text."""
    out = []
    i, n = 0, len(text)
    while i < n:
        matched = None
        for lit in SPECIALS + CONTRACTIONS:
            if text.startswith(lit, i):
                matched = lit
                break
        if matched is not None:
            out.append(matched)
            i += len(matched)
            continue
        ch = text[i]
        if is_letter(ch):
            j = i + 1
            while j < n and is_letter(text[j]):
                j += 1
        elif is_number(ch):
            j = i + 1
        elif not ch.isspace():
            j = i + 1
            while j < n and not (text[j].isspace() or is_letter(text[j]) or is_number(text[j])):
                j += 1
        else:
            i += 1
            continue
        out.append(text[i:j])
        i = j
    return out


class SimpleTokenizer:
    def __init__(self, bpe_path=BPE_PATH):
        self.byte_encoder = bytes_to_unicode()
        merges = gzip.open(bpe_path).read().decode("utf-8").split("\n")
        merges = merges[1 : 49152 - 256 - 2 + 1]
        merges = [tuple(m.split()) for m in merges]
        vocab = list(bytes_to_unicode().values())
        vocab = vocab + [v + "</w>" for v in vocab]
        for merge in merges:
            vocab.append("".join(merge))
        vocab.extend(["<|startoftext|>", "<|endoftext|>"])
        self.encoder = dict(zip(vocab, range(len(vocab))))
        self.bpe_ranks = dict(zip(merges, range(len(merges))))
        self.cache = {"<|startoftext|>": "<|startoftext|>", "<|endoftext|>": "<|endoftext|>"}

    def bpe(self, token):
        if token in self.cache:
            return self.cache[token]
        word = tuple(token[:-1]) + (token[-1] + "</w>",)
        pairs = get_pairs(word)
        if not pairs:
            return token + "</w>"
        while True:
            bigram = min(pairs, key=lambda pair: self.bpe_ranks.get(pair, float("inf")))
            if bigram not in self.bpe_ranks:
                break
            first, second = bigram
            new_word = []
            i = 0
            while i < len(word):
                try:
                    j = word.index(first, i)
                    new_word.extend(word[i:j])
                    i = j
                except ValueError:
                    new_word.extend(word[i:])
                    break
                if word[i] == first and i < len(word) - 1 and word[i + 1] == second:
                    new_word.append(first + second)
                    i += 2
                else:
                    new_word.append(word[i])
                    i += 1
            word = tuple(new_word)
            if len(word) == 1:
                break
            pairs = get_pairs(word)
        word = " ".join(word)
        self.cache[token] = word
        return word

    def encode(self, text):
        bpe_tokens = []
        text = whitespace_clean(basic_clean(text)).lower()
        for token in pre_tokenize(text):
            token = "".join(self.byte_encoder[b] for b in token.encode("utf-8"))
            bpe_tokens.extend(self.encoder[t] for t in self.bpe(token).split(" "))
        return bpe_tokens


def tokenize(tok, text, context_length=77):
    """clip.tokenize(text, truncate=True) for one string, without the zero padding."""
    ids = [49406] + tok.encode(text) + [49407]
    if len(ids) > context_length:
        ids = ids[:context_length]
        ids[-1] = 49407
    return ids


BRIEF_VECTORS = [
    ("a photo of a cat", [49406, 320, 1125, 539, 320, 2368, 49407]),
    ("A Photo of a DOG!!", [49406, 320, 1125, 539, 320, 1929, 748, 49407]),
    ("an ankle boot.", [49406, 550, 14777, 8087, 269, 49407]),
    ("itap of a {}.", [49406, 529, 2728, 539, 320, 90, 92, 269, 49407]),
    ("Hello, World!", [49406, 3306, 267, 1002, 256, 49407]),
    ("a diagram", [49406, 320, 22697, 49407]),
    ("it's 2024 \u2014 na\u00efve caf\u00e9", [49406, 585, 568, 273, 271, 273, 275, 2005, 1097, 35689, 563, 15304, 49407]),
]

LONG_TEXT = (
    "A very long caption that goes on and on, describing a sunny beach with palm trees, blue water, "
    "white sand, children building sandcastles, surfers riding waves, seagulls flying overhead, "
    "a lifeguard tower painted red and yellow, umbrellas in every colour, people reading books, "
    "dogs chasing frisbees, boats on the horizon, and clouds drifting slowly across the afternoon sky "
    "while music plays from a small radio near the boardwalk."
)

STRINGS = [
    "a photo of a dog",
    "a photo of a {}.",
    "a bad photo of the {}.",
    "a origami {}.",
    "a photo of the large {}.",
    "a {} in a video game.",
    "art of the {}.",
    "a photo of the small {}.",
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Sneaker",
    "Ankle boot",
    "!!!???...",
    "hello!!! what?!? ...yes... (maybe) [ok] {fine} <tag> #hash @user $5.99 50% off",
    "--==**##@@",
    "1234567890",
    "3.14159 and 2,718 and 1e10",
    "in 1999, 42 people paid $3,000",
    "don't I'll we're you've I'm he'd it's",
    "DON'T I'LL WE'RE YOU'VE",
    "rock'n'roll isn't 'quoted' words''",
    "caf\u00e9 na\u00efve r\u00e9sum\u00e9 \u00fcber stra\u00dfe",
    "cafe\u0301 (combining accent, NFC composes it)",
    "\u00c9COLE \u00c0 PARIS",
    "\u65e5\u672c\u8a9e\u306e\u30c6\u30ad\u30b9\u30c8",
    "\u4e00\u53ea\u732b\u5750\u5728\u6905\u5b50\u4e0a",
    "\ud55c\uad6d\uc5b4 \ubb38\uc7a5",
    "\u0420\u0443\u0441\u0441\u043a\u0438\u0439 \u0442\u0435\u043a\u0441\u0442 \u0438 \u0395\u03bb\u03bb\u03b7\u03bd\u03b9\u03ba\u03ac",
    "\u0627\u0644\u0639\u0631\u0628\u064a\u0629 \u0648 \u05e2\u05d1\u05e8\u05d9\u05ea",
    "a cat \U0001f431 and a dog \U0001f436",
    "\U0001f44d\U0001f3fd\U0001f680\u2728 emoji run",
    "\U0001f468\u200d\U0001f469\u200d\U0001f467 family",
    "fish &amp; chips",
    "&lt;b&gt;bold&lt;/b&gt; &quot;quoted&quot; it&#39;s",
    "&amp;amp; double escaped &amp;lt;tag&amp;gt;",
    "&#65;&#x42;&#x63; numeric refs &#233;t&#xE9;",
    "non&nbsp;breaking&nbsp;space",
    "multiple    spaces\tand\ttabs\nand\nnewlines\r\n  end  ",
    "   leading and trailing whitespace   ",
    "\u00a0\u2003unicode\u3000spaces\u2009here\u00a0",
    "",
    "   ",
    "x",
    "!",
    "a",
    "supercalifragilisticexpialidocious antidisestablishmentarianism",
    "pneumonoultramicroscopicsilicovolcanoconiosis",
    "<|startoftext|>literal specials<|endoftext|> in text",
    "CamelCaseWords and snake_case_words and kebab-case-words",
    "http://example.com/path?query=1&x=2",
    "email: someone@example.org",
    "\u00bd \u00b2 \u2163 \u0663 fractions, superscripts, roman and arabic-indic digits",
    "\u2014\u2013\u2026\u201c\u201d\u2018\u2019 typographic punctuation",
    "Z\u00fcrich, K\u00f8benhavn, \u0141\u00f3d\u017a, \u0130stanbul",
    "\u03a3\u039f\u03a6\u039f\u03a3 greek final sigma",
    "word " * 100,
    LONG_TEXT,
    LONG_TEXT + " " + LONG_TEXT,
    "1 2 3 4 5 6 7 8 9 0 " * 10,
]


def main():
    tok = SimpleTokenizer()
    for text, want in BRIEF_VECTORS:
        got = tokenize(tok, text)
        if got != want:
            sys.exit(f"reference port disagrees with the brief on {text!r}: {got} != {want}")
    vectors = []
    seen = set()
    for text in [t for t, _ in BRIEF_VECTORS] + STRINGS:
        if text in seen:
            continue
        seen.add(text)
        vectors.append({"text": text, "ids": tokenize(tok, text)})
    doc = {
        "generator": "tools/tokenizer_vectors.py (port of openai/CLIP clip/simple_tokenizer.py, ftfy stubbed as NFC)",
        "python": sys.version.split()[0],
        "unicodedata": unicodedata.unidata_version,
        "context_length": 77,
        "truncation": "clip.tokenize(truncate=True): keep the first 77 ids and force the last to 49407",
        "vectors": vectors,
    }
    os.makedirs(os.path.dirname(OUT_PATH), exist_ok=True)
    with open(OUT_PATH, "w", encoding="utf-8") as f:
        # One vector per line keeps the golden file reviewable in a diff.
        head = {k: v for k, v in doc.items() if k != "vectors"}
        f.write(json.dumps(head, ensure_ascii=False, indent=1)[:-2] + ',\n "vectors": [\n')
        f.write(",\n".join("  " + json.dumps(v, ensure_ascii=False) for v in vectors))
        f.write("\n ]\n}\n")
    print(f"wrote {len(vectors)} vectors to {os.path.relpath(OUT_PATH, ROOT)}")


if __name__ == "__main__":
    main()
