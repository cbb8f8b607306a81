"""简体中文 for the page itself: tabs, labels, buttons, help texts, notes, info lines, notices and error messages
(demos/, app.py and the service's messages). Exact English → Chinese; patterns for texts with numbers or names."""

from __future__ import annotations

from demos.i18n import CATALOGS

PHRASES: dict[str, str] = {
    # --- app.py: tabs and the introduction ---------------------------------------------------------------------
    "Generate": "生成",
    "Ask": "问答",
    "Translate": "翻译",
    "Sentiment": "情感分析",
    "Explain": "讲解",
    "# Attention Atlas\nRun a real transformer language model on four tasks and see what it attended to, layer by "
    "layer and head by head.\nPick a tab, try an example, then move the **Layer** and **Head** controls under the "
    "answer: the view redraws from the\nkept result without running the model again. *Attention shows where a head "
    "looks, not why the model answered.*":
        "# Attention Atlas 注意力图谱\n在四个任务上运行一个真实的 Transformer 语言模型，逐层、逐个注意力头地查看它关注了什么。\n"
        "选择一个标签页，试一个示例，然后拖动答案下方的 **层** 和 **头** 控件：视图会根据已保留的结果重新绘制，"
        "无需再次运行模型。*注意力显示的是注意力头看向哪里，而不是模型为什么这样回答。*",
    "Language · 语言": "语言 · Language",
    "English": "English",
    # --- presenter.py, privacy.py ---------------------------------------------------------------------------------
    "Presenter mode (large type for a projector)": "演示模式（大字号，适合投影）",
    "Forget my results": "清除我的结果",
    "Forgotten: the server holds no result of yours now.": "已清除：服务器上现在没有保留你的任何结果。",
    # --- generation.py --------------------------------------------------------------------------------------------
    "Prompt": "提示",
    "Type the beginning of a text; the model continues it.": "输入一段文本的开头，模型会接着写下去。",
    "Sampling settings": "采样设置",
    "Max new tokens": "最多生成的新词元数",
    "Temperature": "温度（Temperature）",
    "0 = greedy (always the most likely token)": "0 = 贪心解码（总是选概率最高的词元）",
    "Top-k": "Top-k",
    "0 = no top-k filtering": "0 = 不做 top-k 过滤",
    "Top-p": "Top-p",
    "1 = no nucleus filtering": "1 = 不做核采样（nucleus）过滤",
    "Seed": "随机种子",
    "same seed + settings = same text": "相同的随机种子 + 相同的设置 = 相同的文本",
    "Stop": "停止",
    "Continuation": "续写结果",
    "Result (JSON)": "结果（JSON）",
    "Examples (English and Chinese)": "示例（英文和中文）",
    "Examples": "示例",
    "Stopping… the attention view for the text written so far appears here in a moment.":
        "正在停止……已生成文本的注意力视图稍后会显示在这里。",
    "Nothing is being generated now, so there is nothing to stop.": "当前没有正在进行的生成，无需停止。",
    "**Step by step.** Slide through the generated tokens: for each one, the candidates the model weighed (recorded "
    "while it generated, not by running it again) and what the position that predicted it attended to.":
        "**逐步查看。** 拖动滑块浏览生成的词元：对每个词元，显示模型权衡过的候选词元（在生成时记录，而非重新运行模型），"
        "以及预测出它的那个位置关注了什么。",
    "Step (generated token)": "步骤（生成的词元）",
    "Layer (token strip)": "层（词元条）",
    "Head": "头",
    "mean over heads": "所有头的平均",
    # --- attention_panel.py ---------------------------------------------------------------------------------------
    "Run the model to see its attention here.": "运行模型后，这里会显示它的注意力。",
    "Running… the attention view appears here when the run completes.": "运行中……运行完成后，注意力视图会显示在这里。",
    "No attention to show: the run did not complete (the error message says why).":
        "没有可显示的注意力：本次运行未完成（原因见错误信息）。",
    "No result is kept for this tab: it expired (results are kept for a while per session) or the last run did not "
    "complete. Run the model again.":
        "此标签页没有保留的结果：结果已过期（每个会话的结果只保留一段时间），或上次运行未完成。请重新运行模型。",
    "Prompt sent to the model": "发送给模型的提示",
    "Exact prompt text": "完整的提示文本",
    "View": "视图",
    "Side": "侧",
    "Statistic": "统计量",
    "Layer": "层",
    "Query token": "查询词元",
    "Positions (≤ 64)": "位置（≤ 64 个）",
    "last positions": "最后几个位置",
    "Block (queries × keys)": "区块（查询 × 键）",
    "queries × keys": "查询 × 键",
    "Open this head's heatmap": "打开这个头的热力图",
    "Attention": "注意力",
    "encoder": "编码器",
    "decoder": "解码器",
    "encoder-decoder": "编码器-解码器",
    "decoder-only": "仅解码器",
    "encoder-only": "仅编码器",
    # the View menu (attention_panel.VIEWS)
    "Answer focus: your text (mean over heads)": "答案关注点：你的文本（所有头的平均）",
    "Answer focus: your text (one head)": "答案关注点：你的文本（单个头）",
    "Attention by segment, every layer (mean over heads)": "各片段获得的注意力，逐层（所有头的平均）",
    "Attention by segment, every layer (one head)": "各片段获得的注意力，逐层（单个头）",
    "Layer: every head": "单层：所有头",
    "Layer: one head": "单层：单个头",
    "Layer: mean over heads": "单层：所有头的平均",
    "Model overview (all layers × heads)": "模型总览（所有层 × 头）",
    "Head summary (one number per head)": "注意力头汇总（每个头一个数值）",
    "Token strip (what one token looks at)": "词元条（一个词元看向哪里）",
    "Attention rollout (through this layer)": "注意力展开（Attention Rollout，累积到本层）",
    "Zoom: a block of queries × keys (mean over heads)": "放大：查询 × 键的一个区块（所有头的平均）",
    "Zoom: a block of queries × keys (one head)": "放大：查询 × 键的一个区块（单个头）",
    "Cross-attention (target × source)": "交叉注意力（目标 × 源）",
    "Source alignment (decoder-only analogue of cross-attention)": "源对齐（仅解码器模型中与交叉注意力相当的视图）",
    "bertviz head view (short inputs)": "bertviz 头视图（仅限短输入）",
    "Logit lens (top token after each layer)": "Logit 透镜（每层之后概率最高的词元）",
    "Head roles (induction probe)": "注意力头角色（归纳头探测）",
    # the Statistic menu (viz.head_stats.STATISTICS)
    "Attention entropy": "注意力熵",
    "Mean attention distance": "平均注意力距离",
    "Attention on the first token (sink)": "首个词元上的注意力（注意力汇聚点）",
    "Previous-token score": "前一词元得分",
    # probes.py: the lens span labels
    "the generated tokens": "生成的词元",
    "the last generated tokens": "最后生成的词元",
    "positions": "位置",
    # prompt segments (the prompt's legend): service/tasks/*
    "instruction": "指令",
    "format": "格式",
    "text": "文本",
    "context": "上下文",
    "question": "问题",
    "source": "源文本",
    "answer": "答案",
    "prompt": "提示",
    "generated": "生成部分",
    "translation": "译文",
    "first token": "首个词元",
    "classifier token": "分类词元",
    # validation field names (service/validation.py callers)
    "text to translate": "待翻译的文本",
    "text to classify": "待分类的文本",
    "max_new_tokens": "max_new_tokens（最多生成的新词元数）",
    "temperature": "temperature（温度）",
    "top_k": "top_k（top-k 采样）",
    "top_p": "top_p（核采样阈值）",
    "seed": "seed（随机种子）",
    "layer": "层号（layer）",
    "head": "头编号（head）",
    "position": "位置（position）",
    "task": "任务",
    "translation direction": "翻译方向",
    # --- export.py ------------------------------------------------------------------------------------------------
    "Export this view": "导出此视图",
    "Download this view (HTML, works offline)": "下载此视图（HTML，可离线打开）",
    "Download the shown result (JSON)": "下载当前显示的结果（JSON）",
    "Log in to this Attention Atlas first (open its page), then press the export link again.":
        "请先登录这个 Attention Atlas（打开它的页面），然后再次点击导出链接。",
    "Nothing to export yet: run the model first.": "暂时没有可导出的内容：请先运行模型。",
    "This view is still being computed: wait until it shows, then export it.": "此视图仍在计算中：请等它显示出来后再导出。",
    # --- links.py -------------------------------------------------------------------------------------------------
    "Copy link": "复制链接",
    "Link to this view (tab, inputs, view, layer, head)": "此视图的链接（标签页、输入、视图、层、头）",
    "**This link had values that could not be used**, so the defaults stand for them:":
        "**此链接中有无法使用的值**，这些值已改用默认值：",
    # --- qa.py, translation.py, sentiment.py ----------------------------------------------------------------------
    "Context": "上下文",
    "A paragraph that contains the answer.": "一段包含答案的文字。",
    "Question": "问题",
    "Answer": "回答",
    "Answer:": "答案：",
    "(no answer)": "（没有答案）",
    "Text": "文本",
    "English or Chinese text": "英文或中文文本",
    "Direction": "方向",
    "Detect automatically": "自动检测",
    "English → Chinese": "英文 → 中文",
    "Chinese → English": "中文 → 英文",
    "Translation": "译文",
    "A review or a sentence, English or Chinese": "一条评论或一句话，英文或中文均可",
    "Classify": "分类",
    # --- shots.py -------------------------------------------------------------------------------------------------
    "Run it again without the demonstrations (zero-shot) and compare": "去掉示范样例再运行一次（零样本）并比较",
    "Runs the model once more on the same input with the demonstrations left out (the instruction and the format "
    "words stay), then shows both answers and where the attention went in each run.":
        "对同一输入再运行一次模型，这次去掉示范样例（保留指令和格式词），然后显示两次的答案，以及每次运行中注意力的去向。",
    "No result is kept for this tab (it expired, or the last run did not complete). Run the task first.":
        "此标签页没有保留的结果（已过期，或上次运行未完成）。请先运行该任务。",
    "The text in the boxes changed since the last run, so there is nothing to compare it with. Run the task again on "
    "this text first, then compare.":
        "自上次运行以来输入框中的文本已经改变，因此没有可比较的对象。请先用这段文本重新运行该任务，再进行比较。",
    "This result's prompt has no demonstrations to leave out: the model read your text alone. Zero-shot vs few-shot "
    "applies to the few-shot prompts of the embedded profile.":
        "这个结果的提示中没有可以去掉的示范样例：模型只读了你的文本。零样本与少样本的比较只适用于 embedded 配置的少样本提示。",
    "Zero-shot: no demonstrations": "零样本：没有示范样例",
    "Score": "得分",
    "Attention on your text (mean over layers)": "你的文本上的注意力（所有层的平均）",
    "Both prompts gave the same answer.": "两种提示给出了相同的答案。",
    "The answers differ: the demonstrations changed what the model produced.": "答案不同：示范样例改变了模型的输出。",
    # --- explain.py (the tab's own texts) -------------------------------------------------------------------------
    "Type a sentence, pick a model, a layer, a head and a query token, and follow one attention head through the "
    "model's **real numbers**. The last step checks the hand computation against the attention the model itself "
    "returned.":
        "输入一个句子，选择模型、层、头和查询词元，用模型的 **真实数值** 一步步跟踪一个注意力头的计算。"
        "最后一步把手工计算的结果与模型自身返回的注意力进行核对。",
    "Sentence": "句子",
    "Model": "模型",
    "the range is set by the model on the first run": "取值范围在首次运行时由模型确定",
    "Query token (position)": "查询词元（位置）",
    "index of the query token (−1 = the last token)": "查询词元的索引（−1 = 最后一个词元）",
    "Architecture card (from the loaded config)": "架构卡片（来自已加载的配置）",
    "Default: this profile's generation model": "默认：当前配置的生成模型",
    "MiniLM-L6 (BERT encoder, bidirectional)": "MiniLM-L6（BERT 编码器，双向）",
    "Type a sentence to explain: the text is empty.": "请输入要讲解的句子：文本为空。",
    "The text produced no tokens; type a sentence to explain.": "这段文本没有产生任何词元；请输入要讲解的句子。",
    # --- the Explain tab's outputs (viz/explain.py, service/explain/) ---------------------------------------------
    "Tokens → ids → embeddings → the layer's input": "词元 → id → 嵌入 → 该层的输入",
    "Queries, keys and values of one head": "一个注意力头的查询、键和值",
    "Scores, mask and softmax → the attention row": "打分、掩码与 softmax → 注意力行",
    "Weighted sum of values → output, W_O, residual and norm": "值的加权和 → 输出、W_O、残差与归一化",
    "Verified against the model": "与模型核对",
    "Family": "模型系列",
    "Type": "类型",
    "Layers": "层数",
    "Query heads": "查询头数",
    "Key/value heads": "键/值头数",
    "Head size": "每个头的维度",
    "Hidden size": "隐藏层维度",
    "FFN size": "前馈层（FFN）维度",
    "Vocabulary": "词表大小",
    "Positions": "位置编码",
    "Normalisation": "归一化",
    "Embedding scale": "嵌入缩放",
    "Parameters": "参数量",
    "learned": "可学习的位置嵌入",
    "sinusoidal": "固定的正弦位置编码",
    "rope": "旋转位置编码（RoPE）",
    "pre-norm": "前置归一化（Pre-Norm）",
    "post-norm": "后置归一化（Post-Norm）",
    "pre+post (sandwich)": "前后双重归一化（三明治式）",
    "the causal mask hides later tokens (−∞ before softmax, so weight 0)":
        "因果掩码遮住后面的词元（softmax 之前设为 −∞，因此权重为 0）",
    "this encoder masks nothing, so the token also looks at later tokens": "这个编码器不做任何掩码，因此该词元也会看向后面的词元",
    "softmax turns the scores into weights that sum to 1.": "softmax 把分数变成和为 1 的权重。",
    "(≥ 1e-4): do not trust these steps for this model; please report it.": "（≥ 1e-4）：对这个模型请不要相信这些步骤；请报告此问题。",
    # --- access.py (the login page) -------------------------------------------------------------------------------
    "This Attention Atlas asks for a login: ask whoever runs it for the user name and password.":
        "这个 Attention Atlas 需要登录：请向它的管理者索取用户名和密码。",
    "Model unavailable": "模型不可用",
    # --- service messages -----------------------------------------------------------------------------------------
    "Generation has no demonstrations to leave out. Compare qa, translation or sentiment.":
        "生成任务没有可以去掉的示范样例。请在问答、翻译或情感分析任务上进行比较。",
    "zero_shot must be true or false.": "zero_shot 必须是 true 或 false。",
    "Could not capture the queries and keys of every layer of this model.": "无法捕获该模型每一层的查询和键。",
    "Could not capture the rotary position embeddings (cos, sin) of this model.":
        "无法捕获该模型的旋转位置嵌入（RoPE 的 cos、sin）。",
    "The context has no tokens left to answer from. Give a longer context.":
        "上下文中没有剩余的词元可供作答。请提供更长的上下文。",
    "CUDA was requested but no CUDA GPU is available to PyTorch here. Use --device cpu (or install a CUDA build of "
    "torch on a machine with an NVIDIA GPU).":
        "请求使用 CUDA，但 PyTorch 在这里找不到可用的 CUDA GPU。请使用 --device cpu（或在配有 NVIDIA GPU 的机器上安装 CUDA 版 torch）。",
    # model loading progress (service/models/*)
    "Loading Gemma-3-270M from the local cache…": "正在从本地缓存加载 Gemma-3-270M……",
    "Gemma-3-270M is ready.": "Gemma-3-270M 已就绪。",
    "First use: assembling the Gemma-3-270M GGUF from the installed package…": "首次使用：正在从已安装的包组装 Gemma-3-270M 的 GGUF 文件……",
    "Converting Gemma-3-270M to safetensors (one time, about a minute)…": "正在把 Gemma-3-270M 转换为 safetensors（仅一次，约一分钟）……",
    "Saving the converted weights…": "正在保存转换后的权重……",
    "Building the 262k-token tokenizer (one time, about 25 s)…": "正在构建 262k 词表的分词器（仅一次，约 25 秒）……",
    "Conversion done; moving the cache into place…": "转换完成；正在把缓存移动到位……",
    "Reinstall the requirements (pip install -r requirements.txt) or use --profile hub":
        "请重新安装依赖（pip install -r requirements.txt），或改用 --profile hub",
    "it is not in the local Hugging Face cache and HF_HUB_OFFLINE is set": "它不在本地 Hugging Face 缓存中，且设置了 HF_HUB_OFFLINE",
    # notices (service/text.py:wrong_language_notice)
    "The model gave an empty translation.": "模型给出的译文是空的。",
    "The translation is mostly Chinese, not English: a small model sometimes repeats or continues its input instead "
    "of translating it.": "译文大多是中文而不是英文：小模型有时会重复或续写输入，而不是翻译它。",
    "The translation has no Chinese characters: a small model sometimes repeats or continues its input instead of "
    "translating it.": "译文里没有一个汉字：小模型有时会重复或续写输入，而不是翻译它。",
}

# (regex over the whole English text, Chinese template): named groups are kept as they are, or translated in
# turn when their name starts with "t_"
_N = r"\d[\d,]*"
PATTERNS: list[tuple[str, str]] = [
    # viz/explain.py, step 2: what the family does to q and k (one sentence after "; ")
    (r"(?P<m>[\w .-]+?) then normalises each q and k \(q/k norm\) and rotates them by their position \(RoPE\), so "
     r"q·k depends on the distance between the tokens\.?",
     "{m} 随后对每个 q 和 k 做归一化（q/k 归一化），再按各自的位置旋转它们（RoPE），所以 q·k 取决于词元之间的距离。"),
    (r"(?P<m>[\w .-]+?) then rotates them by their position \(RoPE\), so q·k depends on the distance between the "
     r"tokens\.?", "{m} 随后按各自的位置旋转 q 和 k（RoPE），所以 q·k 取决于词元之间的距离。"),
    (r"(?P<m>[\w .-]+?) then normalises each q and k \(q/k norm\)\.?", "{m} 随后对每个 q 和 k 做归一化（q/k 归一化）。"),

    # --- the panel's info line (attention_panel.info_markdown) -----------------------------------------------------
    (r"\*\*Model:\*\* `(?P<m>[^`\n]+)` \((?P<t_a>[a-z-]+)\) · (?P<l>\d+) layers × (?P<h>\d+) heads · "
     r"(?P<n>\d+) (?P<t_s>encoder|decoder) tokens",
     "**模型：** `{m}`（{t_a}）· {l} 层 × {h} 个头 · {n} 个{t_s}词元"),
    (r"Grouped-query attention: (?P<q>\d+) query heads share (?P<kv>\d+) key/value head\(s\)\.",
     "分组查询注意力（GQA）：{q} 个查询头共享 {kv} 个键/值头。"),
    (r"Time: model (?P<m>[\d.]+) s · attention capture (?P<c>[\d.]+) s", "用时：模型 {m} 秒 · 注意力捕获 {c} 秒"),
    (r"Time: model (?P<m>[\d.]+) s", "用时：模型 {m} 秒"),
    (r"Time: attention capture (?P<c>[\d.]+) s", "用时：注意力捕获 {c} 秒"),
    (r"⚠️ (?P<t_n>[^\n]+)", "⚠️ {t_n}"),
    # notices (service/attention/capture.py, service/tasks/*)
    (r"Attention shows the last (?P<s>\d+) of (?P<t>\d+) tokens; rows no longer sum to 1 where attention went to "
     r"the (?P<h>\d+) earlier tokens that are hidden\.",
     "注意力只显示 {t} 个词元中的最后 {s} 个；注意力流向被隐藏的前 {h} 个词元的行，其权重之和不再为 1。"),
    (r"Input truncated to (?P<n>\d+) tokens\.", "输入已截断为 {n} 个词元。"),
    (r"Translation stopped at (?P<n>\d+) tokens\.", "翻译在 {n} 个词元处停止。"),
    (r"Stopped on request after (?P<k>\d+) of (?P<n>\d+) new tokens; the attention shown is for the text written so "
     r"far\.", "应请求在生成 {k}/{n} 个新词元后停止；显示的是已生成文本的注意力。"),
    # the prompt panel (attention_panel.prompt_html)
    (r"(?P<n>\d+) tokens", "{n} 个词元"),
    (r"(?P<n>\d+) tokens:", "{n} 个词元："),
    (r"demonstration (?P<n>\d+)", "示范样例 {n}"),
    (r"similarity (?P<s>[\d.]+) \((?P<p>[^()\n]+) #(?P<i>\d+)\)", "相似度 {s}（{p} #{i}）"),
    # probes.py / zoom.py choice labels
    (r"last (?P<n>\d+) positions", "最后 {n} 个位置"),
    (r"last (?P<n>\d+) positions \((?P<a>\d+)–(?P<b>\d+)\)", "最后 {n} 个位置（{a}–{b}）"),
    (r"the generated tokens \((?P<a>\d+)–(?P<b>\d+)\)", "生成的词元（{a}–{b}）"),
    (r"the last generated tokens \((?P<a>\d+)–(?P<b>\d+)\)", "最后生成的词元（{a}–{b}）"),
    (r"positions (?P<a>\d+)–(?P<b>\d+)", "位置 {a}–{b}"),
    (r"queries (?P<a>\d+)–(?P<b>\d+) × keys (?P<c>\d+)–(?P<d>\d+)", "查询 {a}–{b} × 键 {c}–{d}"),
    (r"⏳ Computing the logit lens for positions (?P<a>\d+)–(?P<b>\d+): the model runs once for this range \(a few "
     r"seconds on a laptop CPU, longer for 64 positions\); switching back to it is instant\.",
     "⏳ 正在计算位置 {a}–{b} 的 logit 透镜：模型会针对这个范围运行一次（在笔记本电脑 CPU 上需要几秒，64 个位置更久）；"
     "之后切换回来会立即显示。"),
    # generation.py step view
    (r"head (?P<n>\d+)", "头 {n}"),
    # qa.py answer
    (r"\(score (?P<s>[\d.]+)\)", "（得分 {s}）"),
    # shots.py comparison
    (r"Few-shot: (?P<n>\d+) demonstrations", "少样本：{n} 个示范样例"),
    (r"Same input, two prompts: where the answers differ, the demonstrations changed what this model produced\. The "
     r"share of attention on your text says where the produced tokens looked, not why the model answered\. Score: as "
     r"the task's JSON reports it \(for Sentiment, the probability of the label\)\.",
     "同一输入，两种提示：答案不同之处，说明示范样例改变了这个模型的输出。你的文本上的注意力占比说明生成的词元看向哪里，"
     "而不是模型为什么这样回答。得分：与该任务 JSON 中报告的一致（情感分析为该标签的概率）。"),
    # privacy.py
    (r"\*\*What this server keeps about you:\*\* the results of your last runs \(each tab's answer and its attention, "
     r"so the view can redraw\), in memory only, for at most (?P<m>\d+) minutes, and what this page shows while it is "
     r"open\. Nothing you type or get back is written to disk or to the server's logs\. Closing the tab drops it; so "
     r"does \*\*Forget my results\*\*\.",
     "**服务器会保留你的哪些数据：** 你最近几次运行的结果（每个标签页的答案及其注意力，以便重新绘制视图），只保存在内存中，"
     "最多 {m} 分钟，以及本页面打开期间显示的内容。你输入的内容和得到的结果都不会写入磁盘或服务器日志。"
     "关闭标签页即会丢弃这些数据；点击 **清除我的结果** 也一样。"),
    # turns.py
    (r"You already have (?P<n>\d+) requests waiting or running\. Wait until one of them has answered \(or stop it\), "
     r"then try again: everyone gets turns this way\.",
     "你已经有 {n} 个请求正在等待或运行。请等其中一个返回结果（或停止它）后再试：这样每个人都能轮到。"),
    # export.py
    (r"Each link works once, for (?P<m>\d+) minutes; the files come from this server's memory, never its disk\. PNG "
     r"\(1600×900\): the figure's camera button; the HTML file has PNG and SVG buttons\.",
     "每个链接只能使用一次，有效期 {m} 分钟；文件来自服务器内存，从不写入磁盘。PNG（1600×900）：点击图表的相机按钮；"
     "HTML 文件中有 PNG 和 SVG 按钮。"),
    (r"This export link is unknown, already used or expired \(links work once, for (?P<m>\d+) minutes, while your "
     r"result is kept\)\. Press “Export this view” under the attention view again\.",
     "这个导出链接无效、已被使用或已过期（链接只能使用一次，有效期 {m} 分钟，且需你的结果仍被保留）。"
     "请在注意力视图下方再次点击“导出此视图”。"),
    # links.py problems
    (r"- the tab is not one of (?P<l>[a-z, ]+), so the page opens on (?P<t_d>\w+) and ignores the link(?:'|&#x27;)s other "
     r"values\.", "- 标签页不是 {l} 之一，因此页面打开“{t_d}”标签页，并忽略链接中的其他值。"),
    (r"- the direction is not one of (?P<l>[a-z, -]+); using (?P<d>[a-z-]+)\.", "- 方向不是 {l} 之一；改用 {d}。"),
    (r"- the (?P<t_p>\w+) is (?P<n>\d+) characters long; the limit is (?P<m>\d+), so it was left out\.",
     "- {t_p}长 {n} 个字符，超过上限 {m}，因此已忽略。"),
    (r"- the view is not one of (?P<l>[a-z_, ]+); the panel opens on its usual view\.",
     "- 视图不是 {l} 之一；面板打开默认视图。"),
    (r"- the (?P<t_p>layer|head) must be a whole number from 0 to (?P<m>\d+); using the default\.",
     "- {t_p}必须是 0 到 {m} 之间的整数；改用默认值。"),
    # explain.py
    (r"index of the query token, 0–(?P<n>\d+) \(−1 = the last token\)", "查询词元的索引，0–{n}（−1 = 最后一个词元）"),
    (r"Default: this profile's generation model \((?P<m>[^()\n]+)\)", "默认：当前配置的生成模型（{m}）"),
    (r"(?P<t_f>\w+) must be a whole number, got text\.", "{t_f}必须是整数，而不是文本。"),
    (r"The text has (?P<n>\d+) characters; the limit is (?P<m>\d+)\.", "文本有 {n} 个字符；上限为 {m}。"),
    # --- the Explain tab's outputs --------------------------------------------------------------------------------
    (r"### (?P<n>\d+)\. (?P<t_t>[^\n]+)", "### {n}. {t_t}"),
    (r"✓ matches the model \(max \|Δ\| = (?P<d>[^\n()]+) (?P<lt><|&lt;) 1e-4\)", "✓ 与模型一致（最大 |Δ| = {d} {lt} 1e-4）"),
    (r"✗ differs from the model \(max \|Δ\| = (?P<d>[^\n()]+) ≥ 1e-4\)", "✗ 与模型不一致（最大 |Δ| = {d} ≥ 1e-4）"),
    (r"\*\*(?P<t_v>[✓✗][^\n*]+)\*\* — (?P<m>[^\n,]+), layer (?P<l>\d+) \(full\), head (?P<h>\d+), "
     r"query token (?P<p>\d+)", "**{t_v}** — {m}，第 {l} 层（因果全注意力），头 {h}，查询词元 {p}"),
    (r"\*\*(?P<t_v>[✓✗][^\n*]+)\*\* — (?P<m>[^\n,]+), layer (?P<l>\d+) \(bidirectional\), head (?P<h>\d+), "
     r"query token (?P<p>\d+)", "**{t_v}** — {m}，第 {l} 层（双向注意力），头 {h}，查询词元 {p}"),
    (r"\*\*(?P<t_v>[✓✗][^\n*]+)\*\* — (?P<m>[^\n,]+), layer (?P<l>\d+) \(sliding:(?P<w>\d+)\), "
     r"head (?P<h>\d+), query token (?P<p>\d+)", "**{t_v}** — {m}，第 {l} 层（滑动窗口 {w}），头 {h}，查询词元 {p}"),
    (r"\*\*(?P<t_v>[✓✗][^\n*]+)\*\* — (?P<m>[^\n,]+), layer (?P<l>\d+) \((?P<k>[^\n()]+)\), head (?P<h>\d+), "
     r"query token (?P<p>\d+)", "**{t_v}** — {m}，第 {l} 层（{k}），头 {h}，查询词元 {p}"),
    (r"✓ The hand computation matches the attention the model itself returned \(eager, output_attentions\) to "
     r"(?P<d>[^\n:]+): these are the model's real numbers\.",
     "✓ 手工计算与模型自身返回的注意力（eager 模式，output_attentions）一致，误差在 {d} 以内：这些就是模型的真实数值。"),
    (r"✗ The recomputed row differs from the model's own attention by (?P<d>[^\n ]+) \(≥ 1e-4\): do not trust these "
     r"steps for this model; please report it\.",
     "✗ 重新计算的注意力行与模型自身的注意力相差 {d}（≥ 1e-4）：对这个模型请不要相信这些步骤；请报告此问题。"),
    (r"Token (?P<p>\d+) scores every key by the dot product of its query with the key, times (?P<s>[^\n;]+)",
     "词元 {p} 用它的查询向量与每个键向量做点积来给每个键打分，再乘以 {s}"),
    (r"the causal mask hides later tokens and this sliding-window layer also hides keys more than (?P<w>\d+) tokens "
     r"back", "因果掩码遮住后面的词元，这个滑动窗口层还会遮住 {w} 个词元之前的键"),
    (r"Each of the (?P<n>\d+) token ids picks a row of the embedding table", "{n} 个词元 id 各自从嵌入表中取出一行"),
    (r"Each of the (?P<n>\d+) token ids picks a row of the embedding table and (?P<m>[^\n;]+) multiplies it by "
     r"√(?P<d>\d+)", "{n} 个词元 id 各自从嵌入表中取出一行，{m} 再把它乘以 √{d}"),
    (r"(?P<m>[^\n;]+) adds a learned position vector", "{m} 加上一个可学习的位置向量"),
    (r"(?P<m>[^\n;]+) adds a fixed sinusoidal position vector", "{m} 加上一个固定的正弦位置向量"),
    (r"(?P<m>[^\n;]+) adds a learned position vector and a segment vector", "{m} 加上一个可学习的位置向量和一个片段向量"),
    (r"(?P<m>[^\n;]+) adds a (?P<k>learned|fixed sinusoidal) position vector and applies (?P<n>\w+)",
     "{m} 加上一个位置向量（{k}），并应用 {n}"),
    (r"layer (?P<l>\d+) normalises the residual stream with (?P<n>\w+) before attention \(pre-norm\)\.",
     "第 {l} 层在注意力之前用 {n} 对残差流做归一化（前置归一化，pre-norm）。"),
    (r"layer (?P<l>\d+) reads the stream as it is, because this post-norm model already normalised it at the end of "
     r"the previous sublayer\.", "第 {l} 层直接读取残差流，因为这个后置归一化（post-norm）模型已在上一个子层末尾做过归一化。"),
    (r"Head (?P<h>\d+) projects X to queries, keys and values of (?P<d>\d+) numbers per token",
     "头 {h} 把 X 投影为查询、键和值，每个词元各 {d} 个数"),
    (r"with grouped-query attention (?P<g>\d+) query heads share one key/value head, so head (?P<h>\d+) uses "
     r"key/value head (?P<k>\d+) = (?P<f>⌊[^\n;⌋]+⌋)",
     "在分组查询注意力（GQA）中，{g} 个查询头共享一个键/值头，因此头 {h} 使用键/值头 {k} = {f}"),
    (r"(?P<m>[^\n;]+) computes Q, K and V in one fused matrix and splits it\.?",
     "{m} 用一个融合矩阵一次算出 Q、K 和 V，再把它拆开。"),
    (r"The weights mix the value vectors into head (?P<h>\d+)'s output of (?P<d>\d+) numbers",
     "这些权重把值向量混合成头 {h} 的输出（{d} 个数）"),
    (r"the (?P<n>\d+) heads' outputs are concatenated \((?P<f>[^\n()]+)\) and projected by W_O back to (?P<d>\d+)",
     "{n} 个头的输出被拼接起来（{f}），再由 W_O 投影回 {d} 维"),
    (r"(?P<m>[^\n;]+) adds it to the residual stream \(the next (?P<n>\w+) comes before the MLP\)\.?",
     "{m} 把它加到残差流上（下一个 {n} 位于 MLP 之前）。"),
    (r"(?P<m>[^\n;]+) normalises the attention output \((?P<n>[^\n()]+)\) and adds it to the residual stream\.?",
     "{m} 对注意力输出做归一化（{n}），再把它加到残差流上。"),
    (r"this post-norm model adds it to the residual stream and then applies (?P<n>\w+)\.?",
     "这个后置归一化模型先把它加到残差流上，再应用 {n}。"),
    (r"(?P<m>[^\n]+) multiplies every embedding row by (?P<f>[^\n]+)\.", "{m} 把每个嵌入行乘以 {f}。"),
    (r"Layer (?P<l>\d+) uses a sliding window of (?P<w>\d+): token (?P<p>\d+) sees keys (?P<a>\d+)–(?P<b>\d+)\.",
     "第 {l} 层使用大小为 {w} 的滑动窗口：词元 {p} 只能看到键 {a}–{b}。"),
    (r"Grouped-query attention: (?P<g>\d+) query heads share each key/value head; head (?P<h>\d+) uses key/value "
     r"head (?P<k>\d+)\.", "分组查询注意力（GQA）：每 {g} 个查询头共享一个键/值头；头 {h} 使用键/值头 {k}。"),
    (r"The text was cut to its first (?P<n>\d+) tokens \(of (?P<m>\d+)\) for this explanation\.",
     "为了讲解，这段文本被截断为前 {n} 个词元（共 {m} 个）。"),
    # --- validation errors (service/validation.py) ----------------------------------------------------------------
    (r"The (?P<t_f>[a-z ]+) must be text, not (?P<k>\w+)\.", "{t_f}必须是文本，而不是 {k}。"),
    (r"The (?P<t_f>[a-z ]+) is empty\. Type some text and try again\.", "{t_f}为空。请输入一些文本后重试。"),
    (r"The (?P<t_f>[a-z ]+) is (?P<n>\d+) characters long; the limit is (?P<m>\d+)\. Shorten it and try again\.",
     "{t_f}长 {n} 个字符，超过上限 {m}。请缩短后重试。"),
    (r"(?P<t_e>\w+ must be in [\[(][^\]\n]*\], got [^\n]+?\.) (?P<t_c>(?:The|Each) [^\n]+)", "{t_e}{t_c}"),
    (r"(?P<t_f>\w+) must be a whole number, not (?P<v>[^\n]+)\.", "{t_f}必须是整数，而不是 {v}。"),
    (r"(?P<t_f>\w+) must be a number, not (?P<v>[^\n]+)\.", "{t_f}必须是数字，而不是 {v}。"),
    (r"(?P<t_f>\w+) must be a finite number, not (?P<v>[^\n]+)\.", "{t_f}必须是有限的数字，而不是 {v}。"),
    (r"(?P<t_f>\w+) must be in (?P<r>[\[(][^\]\n]*\]), got a number too large\.", "{t_f}必须在 {r} 范围内，但给出的数字太大。"),
    (r"(?P<t_f>\w+) must be in (?P<r>[\[(][^\]\n]*\]), got (?P<v>[^\n]+?)\.", "{t_f}必须在 {r} 范围内，实际为 {v}。"),
    (r"The model has (?P<n>\d+) layers\.", "该模型有 {n} 层。"),
    (r"Each layer has (?P<n>\d+) heads\.", "每层有 {n} 个头。"),
    (r"The text has (?P<n>\d+) tokens \(−1 is the last one\)\.", "这段文本有 {n} 个词元（−1 表示最后一个）。"),
    (r"Unsupported (?P<t_f>[a-z ]+) (?P<v>[^\n;]+); choose one of: (?P<l>[^\n]+)\.", "不支持的{t_f} {v}；请从以下选项中选择：{l}。"),
    (r"There is no (?P<t_f>[a-z ]+) to choose from\.", "没有可供选择的{t_f}。"),
    (r"The inputs of (?P<t>\w+) must be an object with the fields (?P<l>[^\n]+)\.", "{t} 的输入必须是包含字段 {l} 的对象。"),
    (r"(?P<t>\w+) has no input named (?P<v>[^\n;]+); it takes (?P<l>[^\n]+)\.", "{t} 没有名为 {v} 的输入；它接受 {l}。"),
    (r"(?P<t>\w+) needs (?P<l>[^\n:]+): add (?:it|them) to the inputs\.", "{t} 需要 {l}：请把它们加入输入。"),
    # --- other service errors --------------------------------------------------------------------------------------
    (r"The prompt is (?P<n>\d+) tokens; (?P<m>[^\n;]+) reads at most (?P<k>\d+) tokens including the (?P<j>\d+) new "
     r"ones\. Shorten the prompt or ask for fewer new tokens\.",
     "提示有 {n} 个词元；{m} 最多读取 {k} 个词元（包括 {j} 个新词元）。请缩短提示，或减少要生成的新词元数。"),
    (r"The question is (?P<n>\d+) tokens, which leaves no room for the context within (?P<b>\d+) tokens\. Shorten the "
     r"question\.", "问题有 {n} 个词元，在 {b} 个词元的上限内已没有留给上下文的空间。请缩短问题。"),
    (r"The lens range (?P<a>\d+)\.\.(?P<b>\d+) must lie inside the (?P<n>\d+) tokens\.",
     "透镜范围 {a}..{b} 必须位于这 {n} 个词元之内。"),
    (r"The lens shows at most (?P<m>\d+) positions at a time; (?P<a>\d+)\.\.(?P<b>\d+) is (?P<n>\d+)\. Choose a "
     r"shorter range\.", "透镜一次最多显示 {m} 个位置；{a}..{b} 有 {n} 个。请选择更短的范围。"),
    (r"The logit lens reads (?P<m>[^\n,;]+), a decoder; this result comes from (?P<r>[^\n()]+) \((?P<t_a>[a-z-]+)\)\.",
     "logit 透镜读取的是解码器模型 {m}；这个结果来自 {r}（{t_a}）。"),
    (r"The (?P<p>[\w-]+) profile runs fine-tuned task models that read no demonstrations, so there is no zero-shot "
     r"version to compare\. Use the embedded profile \(few-shot prompting\) for this\.",
     "{p} 配置运行的是微调过的任务模型，它们不读取示范样例，因此没有可比较的零样本版本。请使用 embedded 配置（少样本提示）。"),
    (r"(?P<m>[^\n]+) cannot rebuild its queries and keys for on-demand attention\.", "{m} 无法为按需计算的注意力重建查询和键。"),
    (r"(?P<m>[^\n]+) returned no attention weights even in eager mode\.", "{m} 即使在 eager 模式下也没有返回注意力权重。"),
    (r"Could not capture (?P<w>[^\n]+) from this model's forward pass\.", "无法从该模型的前向计算中捕获 {w}。"),
    (r"Explain supports (?P<l>[^\n;]+); (?P<f>[\w-]+) is not supported\.(?P<why>[^\n]*?) Pick one of those models in "
     r"the Explain tab\.", "讲解支持 {l}；不支持 {f}。{why} 请在讲解标签页中选择上述模型之一。"),
    (r"Could not load (?P<m>[^\n:]+): (?P<t_r>[^\n]+?)\. (?P<t_f>[^\n]+)", "无法加载 {m}：{t_r}。{t_f}"),
    (r"Something went wrong inside the app \((?P<e>\w+)\)\. Try again; if it keeps happening, restart the app and "
     r"report the steps that led here\.",
     "应用内部出错（{e}）。请重试；如果反复出现，请重启应用，并报告导致出错的操作步骤。"),
    (r"Building (?P<m>[^\n]+)", "正在构建 {m}"),
    (r"Built (?P<m>[^\n]+)", "已构建 {m}"),
    (r"the package (?P<p>[\w.-]+) is not installed \((?P<e>[^\n]+)\)", "未安装 {p} 包（{e}）"),
    (r"the (?P<p>[\w.-]+) package is not installed", "未安装 {p} 包"),
    (r"Run `pip install (?P<p>[^`]+)`\.", "请运行 `pip install {p}`。"),
]

CATALOGS["zh"].add(PHRASES, PATTERNS)
