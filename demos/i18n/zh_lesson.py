"""简体中文 for the Lesson tab: its fixed texts (written in both languages in demos/lesson_text.py, registered here as
phrases) and the words of its figures and HTML (viz/lesson.py), with patterns for texts holding numbers, tokens or
model names (kept as they are)."""

from __future__ import annotations

from demos.i18n import CATALOGS
from demos.lesson_text import NOT_STARTED, STEPS, all_said, plain, step_markdown, step_title
from viz.lesson import SCHEME_MARKERS

SCHEME_MARKERS_ZH = {
    "sentencepiece": "▁ = 一个词从这里开始（SentencePiece 把空格写进下一个片段）",
    "wordpiece": "## = 这个片段接在前一个片段后面，属于同一个词",
    "byte-level-bpe": "Ġ = 片段前有一个空格；<e6 9c> = 只是一个字符一部分的 UTF-8 字节",
}

PHRASES: dict[str, str] = {
    **{said.en: said.zh for said in all_said()},
    **{step_title(index): step_title(index, "zh") for index in range(len(STEPS))},
    **{step_markdown(index): step_markdown(index, "zh") for index in range(len(STEPS))},
    plain(NOT_STARTED.en): plain(NOT_STARTED.zh),
    **{SCHEME_MARKERS[scheme]: chinese for scheme, chinese in SCHEME_MARKERS_ZH.items()},
    "Lesson": "课程",
    "byte-level BPE (GPT-2 style)": "字节级 BPE（GPT-2 式）",
    "BERT's algorithm, with a vocabulary built here from the app's own example sentences (every character, then "
    "their most frequent words): this profile has no encoder whose own WordPiece vocabulary could be shown":
        "BERT 的算法，词表是用本应用自己的示例句子在这里构建的（先是每个字符，再是最常见的词）：这个配置里没有编码器，"
        "无法展示它自己的 WordPiece 词表",
    "sentence": "句子",
    "step": "生成步骤",          # the generation step slider's value, in check_number's messages
    "Choose a step of the lesson (1–9).": "请选择课程的一个步骤（1–9）。",
    "The temperature must be a number.": "温度必须是一个数。",
    "The generation step must be a whole number.": "生成步骤必须是一个整数。",
    "token": "词元",
    "nearest entries of the embedding table (cosine)": "嵌入表中最接近的条目（余弦）",
    "cosine": "余弦",
    "T = 1 (the model)": "T = 1（模型本身）",
    "layer": "层",
    "relative change (log scale)": "相对变化（对数刻度）",
    "attention: ‖added‖ / ‖stream‖": "注意力：‖加上的部分‖ / ‖残差流‖",
    "feed-forward: ‖added‖ / ‖stream‖": "前馈网络：‖加上的部分‖ / ‖残差流‖",
    "one attention row": "一行注意力",
    "1 = the same direction, 0 = unrelated, −1 = opposite. The diagonal is each token with itself. A token that "
    "appears twice has the same vector both times: the table knows no position.":
        "1 = 方向相同，0 = 无关，−1 = 相反。对角线是每个词元和它自己。出现两次的词元两次得到的向量相同：嵌入表不知道位置。",
    "Each layer: h ← h + Attention(Norm(h)), then h ← h + FFN(Norm(h)). A bar is the size of what the sub-layer "
    "adds, divided by the size of h before it (mean over your tokens).":
        "每一层：h ← h + 注意力(归一化(h))，然后 h ← h + 前馈网络(归一化(h))。每根柱子是子层加上去的部分的大小，除以加之前 h "
        "的大小（对你的词元取平均）。",
}

PATTERNS: list[tuple[str, str]] = [
    (r"(?P<n>[\d,]+) tokens", "{n} 个词元"),
    (r"the generation model's own tokenizer \((?P<m>.+)\)", "生成模型自己的分词器（{m}）"),
    (r"the encoder's own tokenizer \((?P<m>.+)\)", "编码器自己的分词器（{m}）"),
    (r"(?P<a>[\w-]+)'s algorithm, with a (?P<n>[\d,]+)-entry vocabulary trained here on the app's own example "
     r"sentences: GPT-2's own 50,257-entry vocabulary is not installed offline",
     "{a} 的算法，{n} 个条目的词表是在本应用自己的示例句子上训练出来的：GPT-2 自己那个 50,257 个条目的词表没有离线安装"),
    (r"The temperature must be between (?P<a>[\d.]+) and (?P<b>[\d.]+)\.", "温度必须在 {a} 到 {b} 之间。"),
    (r"vocabulary of (?P<n>[\d,]+) entries", "词表共 {n} 个条目"),
    (r"(?P<m>.+?) · embeddings: how alike the token vectors are \((?P<d>\d+) numbers each\)",
     "{m} · 嵌入：词元向量彼此有多像（每个 {d} 个数）"),
    (r"embeddings: how alike the token vectors are \((?P<d>\d+) numbers each\)", "嵌入：词元向量彼此有多像（每个 {d} 个数）"),
    (r"(?P<m>.+?) · how much each sub-layer changes the residual stream", "{m} · 每个子层对残差流的改变有多大"),
    (r"Softmax with a temperature T = (?P<t>[\d.]+)", "带温度的 softmax：T = {t}"),
    (r"T = (?P<t>[\d.]+)", "T = {t}"),
    (r"attention of (?P<tok>.*) \(layer (?P<l>\d+), head (?P<h>\d+)\)", "{tok} 的注意力（第 {l} 层，第 {h} 个头）"),
    (r"next token after the sentence \(top (?P<n>\d+)\)", "句子之后的下一个词元（前 {n} 名）"),
    (r"softmax\(scores / T\) · T = (?P<t>[\d.]+): below 1 it sharpens, above 1 it flattens\. The order never changes, only "
     r"how far apart the weights are\. Each side still sums to 1 \(the right side over the whole vocabulary, so its "
     r"top bars sum to less\)\.",
     "softmax(分数 / T) · T = {t}：小于 1 更尖锐，大于 1 更平缓。排序永远不变，变的只是权重之间拉开多远。每一边的总和仍然是 1"
     "（右边是在整个词表上求和，所以这几根柱子加起来不到 1）。"),
    (r"(?P<m>.+?) · every head of layer (?P<l>\d+) on your sentence", "{m} · 第 {l} 层的每个头在你句子上的注意力"),
    (r"decoder-only · (?P<m>.+?) · mean over layers and heads", "仅解码器 · {m} · 对所有层和头取平均"),
    (r"encoder-only · (?P<m>.+?) · mean over layers and heads", "仅编码器 · {m} · 对所有层和头取平均"),
    (r"head (?P<h>\d+) · (?P<t_role>[\w -]+)", "头 {h} · {t_role}"),
    (r"(?P<m>.+?) · logit lens", "{m} · logit 透镜"),
]

CATALOGS["zh"].add(PHRASES, PATTERNS)
