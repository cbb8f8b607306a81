"""The Lesson tab's prose, in English and 简体中文: nine steps, each a short text and a "predict, then reveal" question.

Every statement here must hold for the models the app runs (Gemma 3, GPT-2, BERT/MiniLM, DistilBERT, Marian); what
depends on the model (sizes, counts, the answer to a question) is not written here but measured on the class's
sentence (demos/lesson.py). The English texts are also registered as phrases of the Chinese catalog
(demos/i18n/zh_lesson.py), so a page opened in 中文 shows them in Chinese.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Said:
    """One text in both interface languages."""

    en: str
    zh: str

    def in_language(self, language: str) -> str:
        return self.zh if language == "zh" else self.en


@dataclass(frozen=True)
class Step:
    """One step of the lesson: its title, its prose (Markdown), its question and the question's choices."""

    key: str
    title: Said
    prose: Said
    question: Said
    choices: tuple[tuple[str, Said], ...] = ()     # (value, label); empty = the choices come from the sentence


STEPS: tuple[Step, ...] = (
    Step(
        "tokens",
        Said("Text → tokens → ids", "文本 → 词元 → 编号"),
        Said("A language model never sees letters. A **tokenizer** cuts the text into pieces from a fixed "
             "vocabulary and replaces each piece by its number (its **id**); the model only ever receives the ids. "
             "Below, three tokenizers read the same sentence: Gemma's **SentencePiece**, the **WordPiece** of "
             "BERT-style encoders such as MiniLM, and a GPT-2-style **byte-level BPE**, which works on the UTF-8 "
             "bytes of the text, so it can write anything, but may need several pieces for one Chinese character. "
             "The small number under each token is its id.",
             "语言模型从不直接看到字母。**分词器**把文本切成固定词表里的片段，再把每个片段换成它的编号"
             "（**id**）；模型收到的只有这些编号。下面三个分词器读同一句话：Gemma 的 **SentencePiece**、MiniLM 这类 "
             "BERT 式编码器的 **WordPiece**，以及 GPT-2 式的**字节级 BPE**：它处理文本的 UTF-8 字节，所以什么都能写，"
             "但一个汉字可能要用好几个片段。每个词元下面的小数字就是它的编号。"),
        Said("Predict: which tokenizer cuts your sentence into the most tokens?",
             "先猜一猜：哪个分词器把你的句子切成的词元最多？"),
    ),
    Step(
        "embeddings",
        Said("Embeddings: one vector per token", "嵌入：每个词元一个向量"),
        Said("Each id picks one row of the model's **embedding table**: a vector of a few hundred numbers "
             "(Gemma multiplies it by √D, D being the vector's length). This is a table lookup: the same token gets "
             "the same vector wherever it stands. Where a token stands enters later: Gemma rotates queries and keys "
             "inside attention (**RoPE**, rotary position embedding); GPT-2 and BERT add a learned position vector "
             "instead. The heatmap shows how alike the vectors of your tokens are (cosine); the table lists the "
             "vocabulary entries whose vectors are nearest to each token's.",
             "每个编号选中模型**嵌入表**里的一行：一个几百个数的向量（Gemma 还会乘以 √D，D 是向量长度）。这只是查表："
             "同一个词元不论出现在哪里，得到的向量都一样。位置信息是后来才加入的：Gemma 在注意力内部旋转查询和键"
             "（**RoPE**，旋转位置编码）；GPT-2 和 BERT 则加上一个学到的位置向量。热力图显示你的词元向量彼此有多像"
             "（余弦相似度）；表格列出嵌入表中与每个词元向量最接近的条目。"),
        Said("Predict: before the first layer runs, does a token's vector depend on the words around it?",
             "先猜一猜：在第一层运行之前，一个词元的向量会受周围的词影响吗？"),
        (("yes", Said("Yes, it already depends on its neighbours", "会，它已经受邻居影响")),
         ("no", Said("No, it is the same wherever the token stands", "不会，词元在哪里向量都一样"))),
    ),
    Step(
        "qkv",
        Said("Q, K, V and one head's scores", "Q、K、V 与一个注意力头的分数"),
        Said("In every layer each token's vector is projected three ways: a **query** (what this token looks "
             "for), a **key** (what it offers to be found by) and a **value** (what it passes on). One head scores "
             "the query of a token against the keys of every token it may see, q·k times a scale, turns the scores "
             "into weights with **softmax**, and mixes the values with those weights. Below: one head of one layer "
             "for the last token of your sentence, recomputed by hand from the model's own weights and checked "
             "against the attention the model itself computed.",
             "在每一层里，每个词元的向量被投影成三份：**查询**（Q，这个词元在找什么）、**键**（K，它能被什么找到）和"
             "**值**（V，它要传递的内容）。一个注意力头把某个词元的查询与它能看到的每个词元的键相乘（q·k 再乘一个缩放），"
             "用 **softmax** 把分数变成权重，再用这些权重把值加权混合。下面是你句子最后一个词元在某一层某个头里的计算："
             "用模型自己的权重手工重算，并与模型自己算出的注意力核对。"),
        Said("Predict: which token will the last token of your sentence attend to most in this head?",
             "先猜一猜：在这个头里，你句子的最后一个词元最关注哪个词元？"),
    ),
    Step(
        "softmax",
        Said("Softmax and temperature", "softmax 与温度"),
        Said("Softmax turns any list of scores into weights that are positive and sum to 1: "
             "pᵢ = exp(sᵢ / T) / Σⱼ exp(sⱼ / T). The **temperature** T sharpens the weights (T < 1) or flattens them "
             "(T > 1); the order never changes. Attention itself uses T = 1 (its scale factor is already inside the "
             "scores); when a model writes text, T is a setting of the sampling. Move the slider: on the left one "
             "real attention row (the head of step 3), on the right the model's real distribution over its whole "
             "vocabulary for the token after your sentence.",
             "softmax 把任意一组分数变成为正、且总和为 1 的权重：pᵢ = exp(sᵢ / T) / Σⱼ exp(sⱼ / T)。**温度** T "
             "让权重更尖锐（T < 1）或更平缓（T > 1），但排序永远不变。注意力本身用 T = 1（缩放因子已经在分数里）；"
             "模型写文本时，T 是采样的一个设置。拖动滑块：左边是一行真实的注意力（第 3 步的那个头），右边是模型对"
             "你句子之后那个词元、在整个词表上的真实概率分布。"),
        Said("Predict: if the temperature goes from 1 down to 0.5, the probability of the top next token will…",
             "先猜一猜：温度从 1 降到 0.5 时，排第一的下一个词元的概率会……"),
        (("rise", Said("rise", "变大")), ("fall", Said("fall", "变小")), ("same", Said("stay the same", "不变"))),
    ),
    Step(
        "heads",
        Said("Multi-head attention: heads differ", "多头注意力：每个头各不相同"),
        Said("A layer has several **heads**, each with its own query, key and value projections, so each can look "
             "for something different; their outputs are joined and projected back to one vector per token. "
             "The heatmaps show every head of one layer on your sentence (rows: the token looking; columns: the "
             "token looked at). The role map comes from a probe, a random token sequence repeated twice: "
             "*previous-token* heads look one token back, *induction* heads find the earlier copy of the current "
             "token and look at what followed it, *sink* heads rest on the first token. Gemma uses **grouped-query "
             "attention**: its query heads share fewer key/value heads.",
             "一层里有好几个**注意力头**，每个头有自己的查询、键、值投影，所以各自可以找不同的东西；它们的输出拼接起来，"
             "再投影回每个词元一个向量。热力图显示某一层所有头在你句子上的注意力（行：正在看的词元；列：被看的词元）。"
             "角色图来自一个探针：一段随机词元序列重复两次。*前一词元*头看前一个词元，*归纳*头找到当前词元之前出现的那次，"
             "去看它后面跟着什么，*汇聚*头停在第一个词元上。Gemma 使用**分组查询注意力**（GQA）：多个查询头共享较少的"
             "键/值头。"),
        Said("Predict: do all heads of this layer attend the same way?", "先猜一猜：这一层的所有头注意的方式都一样吗？"),
        (("same", Said("Yes, they look at the same tokens", "一样，它们看相同的词元")),
         ("differ", Said("No, they look at different tokens", "不一样，它们看不同的词元"))),
    ),
    Step(
        "residual",
        Said("Feed-forward, residual stream and norm", "前馈网络、残差流与归一化"),
        Said("Every token carries one vector through the whole model, the **residual stream**. Each layer adds to "
             "it twice: h ← h + Attention(Norm(h)), where tokens exchange information, then h ← h + FFN(Norm(h)), "
             "where a **feed-forward network** (an MLP) works on each token alone. **Norm** rescales the vector "
             "first (Gemma and other modern models: RMSNorm; GPT-2 and BERT: LayerNorm). That is the pre-norm "
             "layout of GPT-2 and Gemma; Gemma also normalises what each sub-layer adds, while BERT and the original "
             "Transformer normalise after the addition. The bars are measured on your sentence: the size of what each sub-layer adds, "
             "relative to the stream it read.",
             "每个词元带着一个向量贯穿整个模型，这就是**残差流**。每一层给它加两次：h ← h + 注意力(归一化(h))，"
             "词元之间在这里交换信息；然后 h ← h + 前馈网络(归一化(h))，**前馈网络**（一个 MLP）在这里单独处理每个词元。"
             "**归一化**先把向量重新缩放（Gemma 等现代模型用 RMSNorm；GPT-2 和 BERT 用 LayerNorm）。这是 GPT-2 "
             "和 Gemma 的前置归一化结构；Gemma 还会把每个子层加上去的部分也归一化，而 BERT 和最初的 "
             "Transformer 是在相加之后再归一化。柱子是在你的句子上测得的：每个子层加上去的部分的大小，"
             "相对于它读到的残差流的大小。"),
        Said("Predict: over all layers, which sub-layer changes the residual stream more on average?",
             "先猜一猜：平均到所有层，哪个子层对残差流的改变更大？"),
        (("attention", Said("attention", "注意力")), ("ffn", Said("feed-forward", "前馈网络")),
         ("equal", Said("about the same", "差不多"))),
    ),
    Step(
        "architectures",
        Said("Decoder, encoder, encoder-decoder", "解码器、编码器、编码器-解码器"),
        Said("**Decoder-only** models (GPT-style models, Gemma) let each token see only itself and the tokens "
             "before it (a causal mask), so they can write text one token at a time. **Encoder-only** models "
             "(BERT, MiniLM) let every token see every token, in both directions: suited to understanding a whole "
             "text (classifying it, searching with it), not to writing. **Encoder-decoder** models (the original "
             "Transformer, T5, the Marian translation models) read the source with an encoder in both directions; "
             "a decoder writes the output causally and, through **cross-attention**, looks at the encoder's tokens "
             "at every step. The two heatmaps: the same sentence in a decoder and in an encoder, mean over all "
             "layers and heads.",
             "**仅解码器**模型（GPT 式模型、Gemma）只让每个词元看到它自己和它之前的词元（因果掩码），所以能一个词元"
             "一个词元地写文本。**仅编码器**模型（BERT、MiniLM）让每个词元看到所有词元，前后两个方向都可以：适合理解"
             "整段文本（分类、检索），不适合写作。**编码器-解码器**模型（最初的 Transformer、T5、Marian 翻译模型）用"
             "编码器双向读源文本；解码器按因果方式写输出，并在每一步通过**交叉注意力**查看编码器的词元。两张热力图："
             "同一句话在解码器和编码器中的注意力，对所有层和头取平均。"),
        Said("Predict: in which model can the first token of your sentence look at the last one?",
             "先猜一猜：在哪个模型里，你句子的第一个词元能看到最后一个词元？"),
        (("decoder", Said("the decoder (Gemma)", "解码器（Gemma）")), ("encoder", Said("the encoder", "编码器")),
         ("both", Said("both", "两个都能")), ("neither", Said("neither", "都不能"))),
    ),
    Step(
        "fewshot",
        Said("Few-shot prompting", "少样本提示"),
        Said("A base model was trained only to continue text. Put a few worked examples (**demonstrations**) in the "
             "prompt and it continues the pattern: that is **few-shot prompting**, and no weight changes. Press the "
             "button: the model translates your sentence twice, with the app's demonstrations and without them "
             "(zero-shot), and the bars show how much attention the translation gives to each part of the prompt.",
             "基础模型只被训练来续写文本。在提示里放几个做好的例子（**示范**），它就会照着这个模式续写：这就是"
             "**少样本提示**，模型的权重一点也没有改变。按下按钮：模型把你的句子翻译两次，一次带着应用的示范，一次不带"
             "（零样本），柱状图显示译文把多少注意力给了提示的各个部分。"),
        Said("Predict: will the translation be the same without the demonstrations?",
             "先猜一猜：去掉示范以后，译文会一样吗？"),
        (("same", Said("the same", "一样")), ("different", Said("different", "不一样"))),
    ),
    Step(
        "generation",
        Said("Generation, one token at a time", "生成：一次一个词元"),
        Said("To write, the model scores every entry of its vocabulary, picks one (greedy decoding: the highest), "
             "appends it to the input and runs again. Press the button: the model continues your sentence; move "
             "the step slider to see the candidates it weighed at each step. The **logit lens** decodes the "
             "residual stream after every layer as if that layer were the last: it shows at which depth the final "
             "prediction appears.",
             "写作时，模型给词表中的每个条目打分，挑出一个（贪心解码：取最高分），把它接到输入后面，再运行一次。按下按钮："
             "模型续写你的句子；拖动步骤滑块，看看每一步它权衡过哪些候选词元。**logit 透镜**把每一层之后的残差流当作"
             "最后一层来解码：它显示最终的预测在多深的地方出现。"),
        Said("Predict: from which part of the model on does the logit lens keep showing the model's final next token?",
             "先猜一猜：logit 透镜从模型的哪一部分开始，一直显示模型最终的下一个词元？"),
        (("early", Said("the first third of the layers", "前三分之一的层")),
         ("middle", Said("the middle third", "中间三分之一")),
         ("late", Said("the last third", "最后三分之一"))),
    ),
)

INTRO = Said(
    "## Lesson: how a transformer reads one sentence\n"
    "Type the class's sentence once, press **Start the lesson**, and walk the nine steps. Every figure is computed "
    "from the real model on that sentence. Each step asks you to **predict first**, then **reveal** what the model "
    "did.",
    "## 课程：Transformer 怎样读一句话\n"
    "输入全班共用的一句话，按**开始课程**，然后依次走完九个步骤。每张图都是真实模型在这句话上算出来的。"
    "每一步都先请你**猜一猜**，再**揭晓**模型实际做了什么。")
START = Said("Start the lesson", "开始课程")
REVEAL = Said("Reveal", "揭晓")
PREVIOUS = Said("◀ Previous step", "◀ 上一步")
NEXT = Said("Next step ▶", "下一步 ▶")
RUN_STEP = Said("Run the model for this step", "为这一步运行模型")
SENTENCE_LABEL = Said("The class's sentence", "全班的句子")
STEP_LABEL = Said("Step", "步骤")
YOUR_GUESS = Said("Your prediction", "你的预测")
TEMPERATURE_LABEL = Said("Temperature T", "温度 T")
GENERATION_STEP_LABEL = Said("Generation step", "生成步骤")
NOT_STARTED = Said("Type a sentence and press **Start the lesson**: every step is computed on it.",
                   "输入一句话并按**开始课程**：每一步都在这句话上计算。")
PICK_FIRST = Said("Pick a prediction first, then reveal.", "请先选一个预测，再揭晓。")
RUN_FIRST = Said("Press “Run the model for this step” first: the answer comes from that run.",
                 "请先按“为这一步运行模型”：答案来自这次运行。")
EXPIRED = Said("This lesson's results are no longer kept (they expire after a while, or were forgotten). Press "
               "**Start the lesson** again.",
               "这次课程的结果已不再保留（过一段时间会过期，或已被清除）。请再按一次**开始课程**。")
RIGHT = Said("✓ Right.", "✓ 猜对了。")
WRONG = Said("✗ Not this time.", "✗ 这次没猜中。")


def step_title(index: int, language: str = "en") -> str:
    """ "3 · Q, K, V and one head's scores" (index from 0)."""
    return f"{index + 1} · {STEPS[index].title.in_language(language)}"


def step_markdown(index: int, language: str = "en") -> str:
    """A step's heading and prose, as the tab shows them."""
    return f"### {step_title(index, language)}\n\n{STEPS[index].prose.in_language(language)}"


def plain(text: str) -> str:
    """Markdown's bold marks removed, for a sentence shown inside HTML."""
    return text.replace("**", "")


def all_said() -> list[Said]:
    """Every fixed text of the lesson (for the Chinese catalog)."""
    texts = [INTRO, START, REVEAL, PREVIOUS, NEXT, RUN_STEP, SENTENCE_LABEL, STEP_LABEL, YOUR_GUESS,
             TEMPERATURE_LABEL, GENERATION_STEP_LABEL, NOT_STARTED, PICK_FIRST, RUN_FIRST, EXPIRED, RIGHT, WRONG]
    for step in STEPS:
        texts += [step.title, step.prose, step.question, *(label for _value, label in step.choices)]
    return texts
