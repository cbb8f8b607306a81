"""简体中文 for the figures and HTML views (viz/): titles, captions, axis and colour-bar titles, hovers, legends.
Exact English → Chinese; patterns for texts with numbers, tokens or model names in them (kept as they are).

Captions are wrapped by viz (`wrap_lines`: "<br>" between words), so a caption sentence is a pattern (`_note`) in
which every space may be a line break, placed anywhere among the caption's lines; its Chinese is wrapped again
(`_wrap_zh`) so a line is about as wide as an English one."""

from __future__ import annotations

import html
import re

from demos.i18n import CATALOGS

SEGMENTS = {  # service/tasks/* segment names and service/analysis/segments.py columns (zh_ui has most of them too)
    "instruction": "指令", "format": "格式", "text": "文本", "context": "上下文", "question": "问题",
    "source": "源文本", "answer": "答案", "prompt": "提示", "generated": "生成部分", "translation": "译文",
    "first token": "首个词元", "classifier token": "分类词元", "label": "标签",
    "other tokens": "其他词元", "hidden earlier tokens": "被隐藏的更早词元", "demonstrations": "示范样例",
}
ROLES = {  # viz/roles.py ROLE_COLORS and ROLE_SHORT
    "previous": "前一词元头", "last 4 tokens": "最近 4 个词元",
    "induction": "归纳头", "previous-token": "前一词元头", "first-token sink": "首词元汇聚头", "local": "局部头",
    "broad": "广泛关注头", "mixed": "混合头", "previous": "前一词元", "sink": "汇聚",
}
STATISTIC_LABELS = {
    "Attention entropy": "注意力熵", "Mean attention distance": "平均注意力距离",
    "Attention on the first token (sink)": "首个词元上的注意力（注意力汇聚点）", "Previous-token score": "前一词元得分",
}
ATTENTION_CAVEAT_ZH = "注意力显示的是一个头在看哪里，而不是模型为什么这样回答：注意力并不等于解释。"

PHRASES: dict[str, str] = {
    **SEGMENTS, **ROLES, **STATISTIC_LABELS,
    **{f"{english}:": f"{chinese}：" for english, chinese in STATISTIC_LABELS.items()},   # head summary hovers
    # style.py
    "Attention shows where a head looks, not why the model answered: attention is not an explanation.":
        ATTENTION_CAVEAT_ZH,
    "grey = masked (this token cannot see that one)": "灰色 = 被遮蔽（这个词元看不到那个词元）",
    "grey = masked (this token cannot see that one).": "灰色 = 被遮蔽（这个词元看不到那个词元）。",
    # layer_view.py, zoom.py, cross_view.py
    "Attention": "注意力",
    "attention weight": "注意力权重",
    "attention weight (summed per key block)": "注意力权重（按键区块求和）",
    "key token (looked at)": "键词元（被关注的）",
    "query token (looking)": "查询词元（发出关注的）",
    "encoder self-attention": "编码器自注意力",
    "decoder self-attention": "解码器自注意力",
    "encoder": "编码器",
    "decoder": "解码器",
    "mean over heads": "所有头的平均",
    "query": "查询",
    "key": "键",
    "weight": "权重",
    "Grey: keys these queries cannot see (later tokens, or outside a sliding window).":
        "灰色：这些查询看不到的键（后面的词元，或滑动窗口之外的词元）。",
    "Cross-attention: which source tokens each target token looks at": "交叉注意力：每个目标词元关注哪些源词元",
    "cross-attention": "交叉注意力",
    "all layers": "所有层",
    "source token (encoder input)": "源词元（编码器输入）",
    "target token (decoder output)": "目标词元（解码器输出）",
    "strongest source": "最强的源词元",
    # overview.py
    "All layers and heads": "所有层和头",
    "all layers × heads": "所有层 × 头",
    "cross-attention (target → source)": "交叉注意力（目标 → 源）",
    "weight ÷ head's max": "权重 ÷ 该头的最大值",
    "of this head's max": "（相对该头的最大值）",
    # head_stats.py
    "bits": "比特",
    "tokens": "词元",
    "share of attention": "注意力占比",
    "role:": "角色：",
    "rollout": "注意力展开",
    "rollout share": "展开占比",
    "rollout share (summed per key block)": "展开占比（按键区块求和）",
    "input token": "输入词元",
    "position": "位置",
    "Role = the head's behaviour on the model's probe (see the view “Head roles”).":
        "角色 = 该头在模型探测输入上的行为（见“注意力头角色”视图）。",
    # focus.py
    "answer focus": "答案关注点",
    "produced": "生成的词元",
    "looks at": "关注",
    "summed weight": "求和权重",
    "one token": "单个词元",
    "summed part": "求和部分",
    "summed parts": "求和部分",
    "produced token": "生成的词元",
    "segment": "片段",
    "layer": "层",
    "where the produced tokens' attention goes, by segment": "生成词元的注意力去向（按片段）",
    "the same input with and without demonstrations": "同一输入有无示范样例的对比",
    "zero-shot: no demonstrations": "零样本：没有示范样例",
    "source alignment (decoder-only analogue of cross-attention)": "源对齐（仅解码器模型中与交叉注意力对应的视图）",
    "source token (your text)": "源词元（你的文本）",
    "target token (translation)": "目标词元（译文）",
    "Rows: the tokens the answer is read from (the answer span, or the classifier token).":
        "行：读出答案的词元（答案片段，或分类词元）。",
    '"hidden earlier tokens": weight on tokens cut off before the attention was kept.':
        "“被隐藏的更早词元”：保留注意力之前被截掉的词元上的权重。",
    "&quot;hidden earlier tokens&quot;: weight on tokens cut off before the attention was kept.":
        "“被隐藏的更早词元”：保留注意力之前被截掉的词元上的权重。",
    # token_strip.py
    "· dashed = masked · orange outline = chosen token": "· 虚线 = 被遮蔽 · 橙色外框 = 所选词元",
    # steps.py
    "probability": "概率",
    "raw probabilities (softmax, temperature 1)": "原始概率（softmax，温度 1）",
    "after temperature / top-k / top-p (what was sampled from)": "经温度 / top-k / top-p 调整后（实际采样所用的分布）",
    "Greedy decoding (temperature 0) always takes rank 0.": "贪心解码（温度 0）总是选排名 0 的词元。",
    "Each row is one layer: the attention of the position that predicted this step's token. Orange outline = the "
    "layer the token strip shows.": "每一行是一层：预测这一步词元的那个位置的注意力。橙色外框 = 词元条显示的层。",
    # lens.py
    "Logit lens": "logit 透镜",
    "logit lens": "logit 透镜",
    "probability of the top token": "最高概率词元的概率",
    "input position (the cell predicts the next token)": "输入位置（格子预测的是下一个词元）",
    "after layer": "经过的层",
    # roles.py
    "Pick a head with the Layer and Head sliders (outlined), then “Open this head's heatmap” to see what it does "
    "on your text.": "用“层”和“头”滑块选择一个头（带外框），再点“打开这个头的热力图”，看看它在你的文本上做了什么。",
    # explain.py: subplot titles, traces, hovers, the steps' titles, the architecture card and block diagram
    "embedding rows E[id]": "嵌入表的行 E[id]",
    "X (what attention reads)": "X（注意力读取的输入）",
    "scores q·k × scale (grey = masked, becomes −∞)": "分数 q·k × 缩放因子（灰色 = 被遮蔽，变为 −∞）",
    "softmax → attention row": "softmax → 注意力行",
    "after q-norm": "q 归一化之后",
    "after RoPE": "RoPE 之后",
    "score": "分数",
    "masked": "被遮蔽",
    "attention": "注意力",
    "masked (score": "被遮蔽 (分数",
    "dim": "维度",
    "attention output (concat·W_O)": "注意力输出（拼接·W_O）",
    "residual stream": "残差流",
    "after add & norm": "残差相加并归一化之后",
    "after add &amp; norm": "残差相加并归一化之后",
    "recomputed by hand": "手工重新计算",
    "the model's attention": "模型自身的注意力",
    "Tokens → ids → embeddings → the layer's input": "词元 → id → 嵌入 → 该层的输入",
    "Queries, keys and values of one head": "一个头的查询、键和值",
    "Scores, mask and softmax → the attention row": "分数、掩码与 softmax → 注意力行",
    "Weighted sum of values → output, W_O, residual and norm": "值的加权和 → 输出、W_O、残差与归一化",
    "Verified against the model": "与模型核对",
    "Family": "模型家族", "Type": "类型", "Layers": "层数", "Query heads": "查询头数", "Key/value heads": "键/值头数",
    "Head size": "头维度", "Hidden size": "隐藏层维度", "FFN size": "前馈层维度", "MLP": "MLP",
    "Vocabulary": "词表大小", "Positions": "位置编码", "Normalisation": "归一化", "Embedding scale": "嵌入缩放",
    "Parameters": "参数量",
    "input h (residual stream)": "输入 h（残差流）",
    "residual": "残差",
    "self-attention": "自注意力",
    "q/k norm": "q/k 归一化",
    "causal": "因果",
    "bidirectional": "双向",
    "sliding window on some layers": "部分层使用滑动窗口",
}

_DEMO_ZH = "示范样例"   # zh_ui's word for a demonstration (its pattern "demonstration N" comes first)


def _flex(regex: str) -> str:
    """A regex in which every space may also be a caption line break."""
    return regex.replace(r"\ ", " ").replace(" ", "(?: |<br>)")


def _fixed(english: str) -> str:
    """The regex of a fixed caption sentence as viz writes it (escaped for Plotly)."""
    return re.escape(html.escape(english, quote=False))


_NO_LINE_START = set("，。；：、！？）》」』”’…—·")


def _width(character: str) -> int:
    return 2 if ord(character) > 0x2E7F else 1


def _wrap_zh(text: str, width: int = 120) -> str:
    """Chinese with "<br>" where a line would pass `width` (a CJK character counts 2); breaks only between CJK
    characters or after CJK punctuation, never inside {fields}, ASCII words or entities."""
    out, line, last_break = [], 0, -1
    index = 0
    while index < len(text):
        character = text[index]
        if character == "{":
            end = text.index("}", index)
            out.append(text[index:end + 1])
            line += 6
            index = end + 1
            continue
        wide = _width(character) == 2
        previous_wide = bool(out) and len(out[-1]) == 1 and _width(out[-1]) == 2
        if (wide or previous_wide) and out and character not in _NO_LINE_START:
            last_break = len(out)
        out.append(character)
        line += _width(character)
        if line > width and last_break > 0:
            out.insert(last_break, "<br>")
            line = sum(6 if piece.startswith("{") else _width(piece[0]) if len(piece) == 1 else 0
                       for piece in out[last_break + 1:])
            last_break = -1
        index += 1
    return "".join(out)


def _note(regex: str, chinese: str) -> tuple[str, str]:
    """A caption sentence (wrapped anywhere) among the caption's other lines, before and after it."""
    return (r"(?P<t_pre>(?:.*?<br>)?)" + _flex(regex) + r"(?P<t_post>(?:<br>.*)?)",
            "{t_pre}" + _wrap_zh(chinese) + "{t_post}")


ROLLOUT_MEANING_ZH = ("注意力展开（Abnar &amp; Zuidema 2020）把从第一层到这一层每一层的头平均注意力依次相乘，并计入残差连接，"
                      "以估计每个位置从每个输入词元那里汲取了多少信息。")
PROBE_SENTENCE_ZH = ("角色来自一次探测：一段由 24 个随机词元组成、重复两遍的序列。归纳头在第二遍中关注第一遍里紧跟在相同词元之后的那个"
                     "词元；前一词元头关注前一个词元；汇聚头把注意力停放在首个词元上。")
MEANINGS_ZH = {
    "entropy": "熵低表示一个头只关注少数几个词元；熵高表示它把注意力分散到许多词元上（0 比特 = 一个词元，1 比特 = 两个同等的词元，"
               "log2(n) 比特 = n 个词元完全均等）。",
    "distance": "一个头平均看向多远的位置：局部头（自身、相邻词元）接近 0，看向很远之前或之后的头则很大。",
    "first_token": "流向首个词元的注意力占比；许多头把用不上的注意力停放在那里（即“注意力汇聚点”），所以数值高往往意味着“无事可做”，"
                   "而不是“重要”。",
    "previous_token": "每个词元分给紧挨在它前面那个词元的注意力占比；接近 1 的头把前一个词元向前复制，这是归纳头的组成部分之一。",
}
LENS_MEANING_ZH = ("每个格子：如果模型在这一层之后就停下（对这一层的输出施加模型自己的最终归一化和反嵌入），它会预测的下一个词元；"
                   "颜色 = 该词元的概率。悬停可查看概率最高的几个候选。列是该位置上的输入词元；格子预测的是它后面的那个词元。")


def _notes() -> list[tuple[str, str]]:
    from viz.head_stats import ROLLOUT_MEANING, STATISTICS
    from viz.lens import LENS_MEANING
    from viz.roles import PROBE_SENTENCE

    role_line = "Role = the head's behaviour on the model's probe (see the view “Head roles”). "
    notes = [
        _note(_fixed(role_line + PROBE_SENTENCE),
              "角色 = 该头在模型探测输入上的行为（见“注意力头角色”视图）。" + PROBE_SENTENCE_ZH),
        _note(_fixed(PROBE_SENTENCE), PROBE_SENTENCE_ZH),
        _note(_fixed(ROLLOUT_MEANING), ROLLOUT_MEANING_ZH),
        _note(_fixed(LENS_MEANING), LENS_MEANING_ZH),
    ]
    notes += [_note(_fixed(STATISTICS[key].meaning), chinese) for key, chinese in MEANINGS_ZH.items()]
    return notes


_ITEM = "|".join(_flex(re.escape(name)) for name in sorted(SEGMENTS, key=len, reverse=True))
_OUTPUT = r"answer|generated|translation|classifier token|label"

PATTERNS: list[tuple[str, str]] = [
    # the head-roles map's cells and hovers ("layer 3 · head 1: induction", "previous-token: 0.82")
    (r"(?P<t_where>layer \d+ · head \d+): (?P<t_role>[a-z -]+)", "{t_where}：{t_role}"),
    (r"(?P<t_score>previous-token|first token|last 4 tokens|induction|local|broad): (?P<v>[\d.]+)",
     "{t_score}：{v}"),
    # --- numbers, layers, heads (tick labels too: narrow) -------------------------------------------------------
    (r"layer (?P<n>\d+)", "第 {n} 层"),
    (r"head (?P<n>\d+)", "头 {n}"),
    (r"head (?P<n>\d+) \(shares keys with group (?P<g>\d+)\)", "头 {n}（与第 {g} 组共享键）"),
    (r"mean of (?P<n>\d+) heads", "{n} 个头的平均"),
    (r"layer (?P<n>\d+), (?P<t_which>mean over heads|head \d+)", "第 {n} 层，{t_which}"),
    (r"demonstration (?P<n>\d+)", _DEMO_ZH + " {n}"),
    # segment names wrapped inside a caption, and lists of them ("first token, instruction, demonstrations")
    *[(_flex(re.escape(name)), chinese) for name, chinese in SEGMENTS.items() if " " in name],
    (rf"(?P<t_a>{_ITEM}),(?: |<br>)(?P<t_b>(?:{_ITEM})(?:,(?: |<br>)(?:{_ITEM}))*)", "{t_a}、{t_b}"),
    # --- layer_view.py / zoom.py ------------------------------------------------------------------------------------
    (r"(?P<n>\d+) tokens shown as (?P<m>\d+) blocks \(hover shows the span\); pick one head for full detail",
     "{n} 个词元显示为 {m} 个区块（悬停可查看范围）；选择单个头可查看完整细节"),
    (r"queries (?P<a>\d+)–(?P<b>\d+) × keys (?P<c>\d+)–(?P<d>\d+) \(full resolution\)",
     "查询 {a}–{b} × 键 {c}–{d}（完整分辨率）"),
    # --- overview.py --------------------------------------------------------------------------------------------------
    (r"(?P<n>\d+) tokens summarised as (?P<m>\d+) blocks per thumbnail\. Each thumbnail is one head \(rows: query → "
     r"columns: key\), scaled to its own maximum\. Pick a layer and head to see it in full\.",
     "{n} 个词元在每个缩略图中汇总为 {m} 个区块。每个缩略图是一个头（行：查询 → 列：键），按它自己的最大值缩放。"
     "选择某一层和某个头即可查看完整热力图。"),
    (r"Each thumbnail is one head \(rows: query → columns: key\), scaled to its own maximum\. Pick a layer and head "
     r"to see it in full\.",
     "每个缩略图是一个头（行：查询 → 列：键），按它自己的最大值缩放。选择某一层和某个头即可查看完整热力图。"),
    # --- head_stats.py ------------------------------------------------------------------------------------------------
    (r"attention rollout through layer (?P<n>\d+)", "注意力展开（截至第 {n} 层）"),
    # --- focus.py -------------------------------------------------------------------------------------------------------
    (r"few-shot: (?P<n>\d+) demonstrations", "少样本：{n} 个" + _DEMO_ZH),
    _note(r"Rows: each token the model produced, with the attention that chose it: a decoder predicts the next "
          r"token, so that is the row of the position just before it\.",
          "行：模型生成的每个词元，以及选出它时的注意力：解码器预测的是下一个词元，所以那是它前一个位置的行。"),
    _note(r"Left: the rest of the prompt \((?P<t_parts>[^()]+)\), each part summed into one column \(hover shows "
          r"its text\)\. Right: your text and the answer, token by token\. Each side has its own colour bar\.",
          "左：提示的其余部分（{t_parts}），每部分求和为一列（悬停可查看其文本）。右：你的文本和答案，逐词元显示。"
          "两侧各有自己的颜色条。"),
    _note(r"Right: your text and the answer, token by token\.", "右：你的文本和答案，逐词元显示。"),
    _note(r"Layer (?P<l>\d+) is a sliding-window layer: each token sees only the last (?P<w>\d+) tokens \(itself "
          r"included\), so text before that is grey here\.",
          "第 {l} 层是滑动窗口层：每个词元只能看到最近的 {w} 个词元（包括它自己），所以更早的文本在这里是灰色的。"),
    _note(r"Long input: (?P<r>\d+) produced tokens × (?P<c>\d+) columns shown as (?P<rb>\d+) × (?P<cb>\d+) blocks "
          r"\(rows averaged, columns summed; hover shows each block's span\)\.",
          "长输入：{r} 个生成词元 × {c} 列显示为 {rb} × {cb} 个区块（行取平均，列求和；悬停可查看每个区块的范围）。"),
    _note(r"Each bar is one layer: the attention of the tokens the model produced, split over the parts of the prompt "
          r"\(mean over those tokens and over heads\)\. Each bar sums to 1\. (?P<t_outs>(?:&quot;|\")(?:" + _OUTPUT
          + r")(?:&quot;|\")(?: and (?:&quot;|\")(?:" + _OUTPUT + r")(?:&quot;|\"))*): the produced tokens "
          r"themselves \(each sees those before it\)\.",
          "每根柱子是一层：模型生成的词元的注意力在提示各部分上的分配（对这些词元和所有头取平均）。每根柱子总和为 1。"
          "{t_outs}：生成的词元本身（每个词元能看到它之前的词元）。"),
    _note(r"Each bar is one layer: the attention of the tokens the model produced, split over the parts of the prompt "
          r"\(mean over those tokens, head (?P<h>\d+)\)\. Each bar sums to 1\. (?P<t_outs>(?:&quot;|\")(?:" + _OUTPUT
          + r")(?:&quot;|\")(?: and (?:&quot;|\")(?:" + _OUTPUT + r")(?:&quot;|\"))*): the produced tokens "
          r"themselves \(each sees those before it\)\.",
          "每根柱子是一层：模型生成的词元的注意力在提示各部分上的分配（对这些词元取平均，头 {h}）。每根柱子总和为 1。"
          "{t_outs}：生成的词元本身（每个词元能看到它之前的词元）。"),
    _note(r"Each bar is one layer: the attention of the tokens the model produced, split over the parts of the prompt "
          r"\(mean over those tokens and over heads\)\. Each bar sums to 1\.",
          "每根柱子是一层：模型生成的词元的注意力在提示各部分上的分配（对这些词元和所有头取平均）。每根柱子总和为 1。"),
    _note(r"Each bar is one layer: the attention of the tokens the model produced, split over the parts of the prompt "
          r"\(mean over those tokens, head (?P<h>\d+)\)\. Each bar sums to 1\.",
          "每根柱子是一层：模型生成的词元的注意力在提示各部分上的分配（对这些词元取平均，头 {h}）。每根柱子总和为 1。"),
    (_flex(r"(?:&quot;|\")(?P<t_a>" + _OUTPUT + r")(?:&quot;|\") and (?P<t_b>(?:&quot;|\").+)"), "“{t_a}”和{t_b}"),
    (_flex(r"(?:&quot;|\")(?P<t_a>" + _OUTPUT + r")(?:&quot;|\")"), "“{t_a}”"),
    _note(r"Cut from the decoder's self-attention \(this model has no cross-attention\): of the attention each "
          r"translated token gives your source text, the share on each source token; rows sum to 1\. Grey rows: this "
          r"layer's sliding window does not reach the source, so they stay empty\.",
          "取自解码器的自注意力（这个模型没有交叉注意力）：每个译文词元分给你的源文本的注意力中，各个源词元所占的比例；"
          "每行总和为 1。灰色行：这一层的滑动窗口够不到源文本，所以是空的。"),
    _note(r"Cut from the decoder's self-attention \(this model has no cross-attention\): of the attention each "
          r"translated token gives your source text, the share on each source token; rows sum to 1\.",
          "取自解码器的自注意力（这个模型没有交叉注意力）：每个译文词元分给你的源文本的注意力中，各个源词元所占的比例；"
          "每行总和为 1。"),
    # --- token_strip.py -------------------------------------------------------------------------------------------------
    (r"How much “(?P<tok>.*)” \(#(?P<pos>\d+)\) attends to each token \((?P<t_which>layer \d+, .+)\)",
     "“{tok}”（#{pos}）对每个词元的注意力有多少（{t_which}）"),
    (r"How much each token attends to “(?P<tok>.*)” \(#(?P<pos>\d+)\) \((?P<t_which>layer \d+, .+)\)",
     "每个词元对“{tok}”（#{pos}）的注意力有多少（{t_which}）"),
    (r"(?P<v>[\d.]+) \(attention weight\)", "{v}（注意力权重）"),
    (r"Tokens #(?P<a>\d+)–#(?P<b>\d+) of (?P<n>\d+): the page of the chosen token \(choose a token on another page "
     r"to see that page\)\.(?: (?P<t_more>Strongest on other pages: .+\.))?",
     "词元 #{a}–#{b}（共 {n} 个）：所选词元所在的一页（选择另一页上的词元即可看到那一页）。{t_more}"),
    (r"Strongest on other pages: (?P<named>.+)\.", "其他页上最强的：{named}。"),
    # --- steps.py ---------------------------------------------------------------------------------------------------------
    (r"Step (?P<i>\d+) of (?P<n>\d+): “(?P<tok>.*)” · rank (?P<r>\d+) \(rank 0 = the model(?:'|&#x27;)s first "
     r"choice\) · p = (?P<p>[\d.]+)(?P<t_sampled>(?: \(after temperature / top-k / top-p: [\d.]+\))?)",
     "第 {i} 步（共 {n} 步）：“{tok}” · 排名 {r}（排名 0 = 模型的首选） · p = {p}{t_sampled}"),
    (r"\(after temperature / top-k / top-p: (?P<p>[\d.]+)\)", "（经温度 / top-k / top-p 调整后：{p}）"),
    (r"(?P<t_head>Step \d+ of \d+: .+?)\. To choose “(?P<c>.*)” the model read from “(?P<r>.*)” \(#(?P<pos>\d+), the "
     r"last token it had\): shaded is what that position attended to \((?P<t_which>layer \d+, .+)\); dashed = the "
     r"token being chosen\.",
     "{t_head}。为了选出“{c}”，模型读取的是“{r}”（#{pos}，它当时拥有的最后一个词元）：着色的是该位置关注的内容（{t_which}）；"
     "虚线 = 正在被选出的词元。"),
    (r"Step (?P<i>\d+): what “(?P<tok>.*)” \(#(?P<pos>\d+)\) attended to, layer by layer \((?P<t_which>.+)\)",
     "第 {i} 步：“{tok}”（#{pos}）逐层关注了什么（{t_which}）"),
    _note(r"Orange = the token chosen at this step \(rank 0 = the model's first choice\)\. Probabilities come from "
          r"the model's raw next-token logits \(softmax at temperature 1\), recorded while it generated\.",
          "橙色 = 这一步选出的词元（排名 0 = 模型的首选）。概率来自模型原始的下一词元 logit（温度为 1 的 softmax），"
          "在生成时记录。"),
    _note(r"The run sampled: the right panel is the distribution after temperature, top-k and top-p, which the token "
          r"was drawn from\.", "这次运行使用了采样：右侧面板是经温度、top-k 和 top-p 调整后的分布，词元就是从中抽取的。"),
    # --- lens.py ------------------------------------------------------------------------------------------------------------
    (r"Last layer vs the model's own output: max difference (?P<d>\S+) ✓", "最后一层与模型自身输出对比：最大差值 {d} ✓"),
    (r"Last layer vs the model's own output: max difference (?P<d>\S+) ✗ \(≥ (?P<tol>\S+): do not trust this lens\)",
     "最后一层与模型自身输出对比：最大差值 {d} ✗（≥ {tol}：不要相信这个 logit 透镜）"),
    # --- roles.py -------------------------------------------------------------------------------------------------------------
    (r"head roles \((?P<t_summary>.+)\)", "注意力头角色（{t_summary}）"),
    (r"(?P<n>\d+) (?P<t_role>induction|previous-token|first-token sink|local|broad|mixed), (?P<t_rest>\d+ .+)",
     "{n} 个{t_role}、{t_rest}"),
    (r"(?P<n>\d+) (?P<t_role>induction|previous-token|first-token sink|local|broad|mixed)", "{n} 个{t_role}"),
    (r'(?P<mark><span style="color:#[0-9A-Fa-f]{6}">■</span> )(?P<t_role>induction|previous-token|first-token sink|'
     r"local|broad|mixed)(?P<t_rest>(?:  <span .*)?)", "{mark}{t_role}{t_rest}"),
    # --- explain.py -------------------------------------------------------------------------------------------------------------
    (r"all (?P<n>\d+) dims", "全部 {n} 维"),
    (r"first (?P<k>\d+) of (?P<n>\d+) dims — truncated", "前 {k} 维（共 {n} 维）— 已截断"),
    (r"entering layer (?P<n>\d+)", "进入第 {n} 层时"),
    (r"Q \(head (?P<n>\d+)\)", "Q（头 {n}）"),
    (r"(?P<m>[KV]) \(kv head (?P<n>\d+)\)", "{m}（键/值头 {n}）"),
    (r"q of token (?P<n>\d+): before / after RoPE", "词元 {n} 的 q：RoPE 之前 / 之后"),
    (r"all heads at token (?P<n>\d+) \((?P<t_cut>[^()]+)\)", "词元 {n} 处的所有头（{t_cut}）"),
    (r"through W_O, residual, norm \((?P<t_cut>[^()]+)\)", "经过 W_O、残差与归一化（{t_cut}）"),
    (r"Tokens → ids \[(?P<ids>[^\]]*)\] → vectors \((?P<t_cut>[^()]+)\)", "词元 → id [{ids}] → 向量（{t_cut}）"),
    (r"Q, K, V of head (?P<h>\d+): (?P<shape>\(\d+×\d+\)·\(\d+×\d+\) → \(\d+×\d+\)) \((?P<t_cut>[^()]+)\)",
     "头 {h} 的 Q、K、V：{shape}（{t_cut}）"),
    (r"Query token (?P<n>\d+) “(?P<tok>.*)” against every key", "查询词元 {n} “{tok}”与每个键的打分"),
    (r"Head output → concat of (?P<n>\d+) heads → W_O → residual", "头输出 → 拼接 {n} 个头 → W_O → 残差"),
    (r"✓ matches the model \(max \|Δ\| = (?P<d>\S+) (?P<lt><|&lt;) 1e-4\)", "✓ 与模型一致（最大 |Δ| = {d} {lt} 1e-4）"),
    (r"✗ differs from the model \(max \|Δ\| = (?P<d>\S+) ≥ 1e-4\)", "✗ 与模型不一致（最大 |Δ| = {d} ≥ 1e-4）"),
    (r"(?P<n>\d+) heads", "{n} 个头"),
    (r"(?P<q>\d+) q heads / (?P<kv>\d+) kv \(GQA\)", "{q} 个查询头 / {kv} 个键值头（GQA）"),
    (r"to block ℓ\+1 \(× (?P<n>\d+) blocks\)", "进入第 ℓ+1 个块（共 {n} 个块）"),
    # --- bertviz_view.py ----------------------------------------------------------------------------------------------------------
    (r"The bertviz head view is limited to short inputs\.", "bertviz 头视图只适用于短输入。"),
    (r"The bertviz model view is limited to short inputs\.", "bertviz 模型视图只适用于短输入。"),
    (r"This one would embed (?P<v>[\d,]+) attention values \((?P<t>\d+) tokens × (?P<l>\d+) layer\(s\)\); the limit "
     r"is (?P<m>[\d,]+), beyond which the page freezes\. Choose a single layer or a shorter input; the heatmap views "
     r"show inputs of any length\.",
     "这个输入需要嵌入 {v} 个注意力值（{t} 个词元 × {l} 层）；上限是 {m}，超过它页面会卡死。请只选一层或缩短输入；"
     "热力图视图可以显示任意长度的输入。"),
]
PATTERNS += _notes()

CATALOGS["zh"].add(PHRASES, PATTERNS)
