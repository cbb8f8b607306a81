"""Structural checks for the held-out test split: python eval/test/check.py (exit 1 on any error)."""
import json, re, sys, collections, unicodedata
import os
D = os.path.dirname(os.path.abspath(__file__)) + "/"
def load(name):
    rows = []
    with open(D + name, encoding="utf-8") as f:
        for i, line in enumerate(f, 1):
            assert line.endswith("\n"), (name, i)
            r = json.loads(line)
            assert "\\u" not in line, (name, i, "ascii-escaped")
            rows.append(r)
    return rows
def en_words(s): return len(s.split())
def zh_chars(s): return sum(1 for c in s if not c.isspace() and not unicodedata.category(c).startswith("P"))
def bucket(direction, text):
    if direction == "en-zh":
        n = en_words(text); return "short" if n <= 8 else ("long" if n >= 20 else "medium")
    n = zh_chars(text); return "short" if n <= 12 else ("long" if n >= 30 else "medium")
han = re.compile(r"[\u4e00-\u9fff]")
TRAD = set("們這個來說會時後對國與開關門車長電東區書見買賣覺點體員問題學習當還邊讓從話實")
errs = []
def err(*a): errs.append(" ".join(map(str, a)))
def check_lang(lang, s, where):
    if lang == "zh":
        if not han.search(s): err(where, "no Han chars", s)
        t = [c for c in s if c in TRAD]
        if t: err(where, "traditional chars?", t, s)
    else:
        if han.search(s): err(where, "Han chars in English", s)

sent = load("sentiment.jsonl")
c = collections.Counter()
for i, r in enumerate(sent):
    if set(r) != {"lang", "text", "label", "category"}: err("sent", i, "fields", r.keys())
    if r["lang"] not in ("en", "zh"): err("sent", i, "lang")
    if r["label"] not in ("positive", "negative"): err("sent", i, "label")
    if not r["category"] or not r["text"].strip(): err("sent", i, "empty")
    check_lang(r["lang"], r["text"], f"sent {i}")
    c[(r["lang"], r["label"])] += 1
print("sentiment", len(sent), dict(c))
print("  categories", dict(collections.Counter(r["category"] for r in sent)))
lens = collections.Counter((r["lang"], bucket("en-zh" if r["lang"]=="en" else "zh-en", r["text"])) for r in sent)
print("  length buckets", dict(lens))
if len({r["text"] for r in sent}) != len(sent): err("sent duplicate")

qa = load("qa.jsonl")
c = collections.Counter()
CATS = {"who", "when", "where", "what", "how many"}
for i, r in enumerate(qa):
    if set(r) != {"lang", "context", "question", "answers", "category"}: err("qa", i, "fields")
    if r["lang"] not in ("en", "zh"): err("qa", i, "lang")
    if r["category"] not in CATS: err("qa", i, "cat")
    a = r["answers"]
    if not (isinstance(a, list) and a and all(isinstance(x, str) and x for x in a)): err("qa", i, "answers type")
    for x in a:
        if x not in r["context"]: err("qa", i, "answer not in context:", x)
        if x != x.strip(): err("qa", i, "answer whitespace", repr(x))
    if [len(x) for x in a] != sorted(len(x) for x in a): err("qa", i, "not shortest first")
    if len(set(a)) != len(a): err("qa", i, "dup answers")
    if r["lang"] == "en":
        ns = len(re.findall(r"[.!?](\s|$)", r["context"].replace("Dr.", "Dr").replace("Mr.", "Mr").replace("Ms.", "Ms").replace("p.m", "pm")))
    else:
        ns = len(re.findall(r"[。！？]", r["context"]))
    if not 1 <= ns <= 4: err("qa", i, "sentences", ns)
    if re.search(r"\b(why|how)\b(?! many)", r["question"], re.I) or re.search(r"为什么|怎么|如何", r["question"]): err("qa", i, "why/how question")
    check_lang(r["lang"], r["question"], f"qa {i} q")
    c[(r["lang"], r["category"])] += 1
print("qa", len(qa), dict(sorted(c.items())))
print("  answers per item", dict(collections.Counter(len(r["answers"]) for r in qa)))

tr = load("translation.jsonl")
c = collections.Counter()
for i, r in enumerate(tr):
    if set(r) != {"direction", "text", "references"}: err("tr", i, "fields")
    d = r["direction"]
    if d not in ("en-zh", "zh-en"): err("tr", i, "direction")
    refs = r["references"]
    if not (isinstance(refs, list) and len(refs) == 2 and all(isinstance(x, str) and x.strip() for x in refs)): err("tr", i, "refs")
    if refs[0] == refs[1]: err("tr", i, "identical refs")
    src, tgt = ("en", "zh") if d == "en-zh" else ("zh", "en")
    check_lang(src, r["text"], f"tr {i} src")
    for x in refs: check_lang(tgt, x, f"tr {i} ref")
    b = bucket(d, r["text"])
    if b == "long" and not re.search(r"[,;，；]", r["text"]): print("  note: long item without comma (check clauses by eye):", r["text"])
    c[(d, b)] += 1
print("translation", len(tr), dict(sorted(c.items())))
print("  directions", dict(collections.Counter(r["direction"] for r in tr)))
if len({r["text"] for r in tr}) != len(tr): err("tr duplicate")
print("ERRORS:" if errs else "OK: no errors", *errs, sep="\n  ")
sys.exit(1 if errs else 0)
