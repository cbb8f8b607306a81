"""Lesson tab: a guided path through one sentence in nine steps, each a short text, a live figure from the real
model and a "predict, then reveal" question whose answer is measured on that sentence.

One input at the top (the class's sentence) serves every step. "Start the lesson" runs what steps 1–7 need in one
go (service.lesson: tokenizers, embeddings, next-token logits, residual changes, decoder and encoder attention;
service.explain: one head recomputed by hand; service.head_roles); steps 8 (few-shot) and 9 (generation) run the
model when asked, since they are whole tasks. Everything is kept in the result store under the session, so moving
between steps, the temperature slider and the generation step redraw without running the model.
The prose and the questions live in demos/lesson_text.py, in English and Chinese.
"""

from __future__ import annotations

import html
from dataclasses import dataclass, field
from typing import Any

import gradio as gr
import numpy as np

from demos import MODEL_EVENT, VIEW_EVENT, load_model, run_alone, session_id, user_errors
from demos.i18n import language_of, translate
from demos.lesson_text import (EXPIRED, GENERATION_STEP_LABEL, INTRO, NEXT, NOT_STARTED, PICK_FIRST, PREVIOUS,
                               REVEAL, RIGHT, RUN_FIRST, RUN_STEP, SENTENCE_LABEL, START, STEP_LABEL, STEPS,
                               TEMPERATURE_LABEL, WRONG, YOUR_GUESS, Said, plain, step_markdown, step_title)
from demos.shots import comparison_html
from demos.store import DEFAULT_STORE, ResultStore
from service import limits
from service.validation import check_number, check_text
from viz.cross_view import plot_cross_attention
from viz.focus import plot_shot_comparison
from viz.layer_view import plot_attention_heads
from viz.lens import plot_logit_lens
from viz.lesson import (TEMPERATURE_RANGE, neighbours_html, plot_embedding_similarity, plot_sublayer_changes,
                        plot_temperature, softmax_with_temperature, tokenizations_html, visibility_summary)
from viz.roles import plot_head_roles, short_role_grid
from viz.steps import has_steps, plot_step_candidates, step_count
from viz.explain import explain_steps, verdict

TASK = "lesson"
STORE_KEY = "lesson"
DEFAULT_SENTENCE = "The cat sat on the mat because it was tired."
EXAMPLES = [[DEFAULT_SENTENCE], ["机器学习正在改变世界。"], ["Attention lets every token look at every earlier token."]]
GENERATED_TOKENS = 8             # step 9: a short greedy continuation
HEADS_DIFFER = 0.15              # step 5: mean total-variation distance between two heads' rows above which they differ
SAME_CHANGE = 0.10               # step 6: relative gap below which attention and feed-forward count as "about the same"
STEP_KEYS = [step.key for step in STEPS]


@dataclass
class LessonRun:
    """What one session's lesson keeps: the sentence's data, the head of step 3, the roles, and the runs of
    steps 8 and 9 once made."""

    text: str
    lesson: Any                      # service.lesson.LessonData
    explain: Any                     # service.explain ExplainResult (one head, last token)
    roles: list[Any]                 # service.probes.head_roles.HeadRole, every head of the generation model
    layer: int                       # the layer of steps 3 and 5
    few_shot: Any | None = None      # step 8: AttentionResult with demonstrations
    zero_shot: Any | None = None     #         and without
    generated: Any | None = None     # step 9: AttentionResult of the continuation
    lens: Any | None = None          #         the logit lens of the sentence
    translated: Any | None = None    # step 7: the encoder-decoder's translation (profiles that have one, e.g. Marian)

    def kept_bytes(self) -> int:
        """Bytes of the arrays kept (the result store's budget counts them)."""
        arrays = [self.lesson.decoder_attention, getattr(self.lesson, "encoder_attention", None),
                  self.lesson.next_token_logits]
        for result in (self.few_shot, self.zero_shot, self.generated, self.translated):
            if result is not None:
                arrays += [result.decoder_attention, result.encoder_attention, result.cross_attention]
        return sum(int(getattr(array, "nbytes", 0)) for array in arrays if array is not None)


# --- running ------------------------------------------------------------------------------------------------
def start_lesson(service: Any, store: ResultStore, text: Any, request: gr.Request | None, progress: Any) -> LessonRun:
    """Check the sentence, compute steps 1–7's data on it, keep it for the session."""
    with user_errors():
        text = check_text(text, "sentence")
        load_model(service, "generation", progress)
        lesson = service.lesson(text)
        roles = service.head_roles()
        layer = most_varied_layer(roles, lesson.num_layers)
        explain = service.explain(text, layer, 0, -1)
        translated = None
        if lesson.encoder_decoder_model:   # real cross-attention for step 7
            load_model(service, "translation", progress)
            translated = service.translate(text)
    run = LessonRun(text=text, lesson=lesson, explain=explain, roles=roles, layer=layer, translated=translated)
    store.put(session_id(request), STORE_KEY, run)
    return run


def most_varied_layer(roles: list[Any], num_layers: int) -> int:
    """The layer whose heads have the most different roles on the probe (the first such layer): where "heads
    differ" shows best. Without roles, the middle layer."""
    kinds: dict[int, set[str]] = {}
    for role in roles:
        kinds.setdefault(int(role.layer), set()).add(str(role.role))
    if not kinds:
        return num_layers // 2
    return max(sorted(kinds), key=lambda layer: len(kinds[layer]))


def run_step_model(service: Any, store: ResultStore, step: int, request: gr.Request | None, progress: Any) -> LessonRun:
    """Steps 8 and 9 run a task on the kept sentence: few-shot vs zero-shot translation; a short continuation and
    the logit lens."""
    run = kept_run(store, request)
    with user_errors():
        if STEP_KEYS[step] == "fewshot":
            load_model(service, "translation", progress)
            run.few_shot, run.zero_shot = service.compare_shots("translation", {"text": run.text})
        elif STEP_KEYS[step] == "generation":
            run.generated = service.generate(run.text, max_new_tokens=GENERATED_TOKENS, min_new_tokens=1)
            run.lens = service.logit_lens(run.text)
    store.put(session_id(request), STORE_KEY, run)   # its size changed: the store counts it again
    return run


def kept_run(store: ResultStore, request: gr.Request | None) -> LessonRun:
    run = store.get(session_id(request), STORE_KEY)
    if not isinstance(run, LessonRun):
        raise gr.Error(EXPIRED.in_language(language_of(request)))
    return run


# --- what each step shows -------------------------------------------------------------------------------------
@dataclass
class StepView:
    """The step's components, as values: prose, HTML, up to two figures, which sliders show, the question."""

    prose: str
    html: str = ""
    figure: Any = None
    second_figure: Any = None
    third_figure: Any = None
    temperature: bool = False
    generation_steps: int = 0        # > 0: the generation slider shows, 0 … this − 1
    run_button: bool = False
    question: str = ""
    choices: list[tuple[str, str]] = field(default_factory=list)


def step_view(run: LessonRun | None, step: int, language: str, temperature: float = 1.0,
              generation_step: int = 0) -> StepView:
    """What step `step` (0–8) shows for `run` (None: the lesson has not started)."""
    spec = STEPS[step]
    view = StepView(prose=step_markdown(step, language),
                    question=spec.question.in_language(language),
                    choices=[(label.in_language(language), value) for value, label in spec.choices])
    view.run_button = spec.key in ("fewshot", "generation")
    if run is None:
        view.html = f"<p>{html.escape(plain(NOT_STARTED.in_language(language)))}</p>"
        return view
    lesson = run.lesson
    if spec.key == "tokens":
        view.html = tokenizations_html(lesson.tokenizations)
        view.choices = [(tokenization.name, str(index)) for index, tokenization in enumerate(lesson.tokenizations)]
    elif spec.key == "embeddings":
        view.figure = plot_embedding_similarity(lesson.tokens, lesson.embedding_cosine, special=_special(lesson),
                                                model_name=lesson.model_name, hidden_size=lesson.hidden_size)
        view.html = neighbours_html(lesson.tokens, lesson.neighbours, _special(lesson))
    elif spec.key == "qkv":
        steps = explain_steps(run.explain)
        view.figure = steps[2].figure            # the scores, the mask and the softmax of this head's row
        view.second_figure = steps[-1].figure    # recomputed row beside the model's own
        view.html = f"<p><b>{html.escape(verdict(run.explain))}</b></p>"
        view.choices = _token_choices(run.explain.tokens)
    elif spec.key == "softmax":
        view.temperature = True
        view.figure = temperature_figure(run, temperature)
    elif spec.key == "heads":
        view.figure = _heads_figure(run)
        view.second_figure = plot_head_roles(run.roles, selected=(run.layer, 0), model_name=lesson.model_name,
                                             slider_hint=False)
    elif spec.key == "residual":
        view.figure = plot_sublayer_changes(lesson.attention_change, lesson.ffn_change, model_name=lesson.model_name)
    elif spec.key == "architectures":
        view.figure, view.second_figure, view.html = _architecture_views(lesson, language)
        if run.translated is not None and run.translated.cross_attention is not None:
            view.third_figure = plot_cross_attention(run.translated)
            translation = str(run.translated.prediction.get("translation", ""))
            said = Said(f"Encoder-decoder: {run.translated.model_name} translated your sentence as “{translation}”. "
                        "The third heatmap is its real cross-attention: each translated token (row) looking at "
                        "the encoder's tokens of your sentence (columns), mean over layers and heads.",
                        f"编码器-解码器：{run.translated.model_name} 把你的句子译成“{translation}”。第三张热力图是它真实"
                        "的交叉注意力：每个译出的词元（行）看向编码器中你句子的词元（列），对所有层和头取平均。")
            view.html = f"<p>{html.escape(said.in_language(language))}</p>"
    elif spec.key == "fewshot" and run.few_shot is not None:
        view.figure = plot_shot_comparison(run.few_shot, run.zero_shot)
        view.html = comparison_html("translation", run.few_shot, run.zero_shot)
    elif spec.key == "generation" and run.generated is not None:
        if has_steps(run.generated):
            view.generation_steps = step_count(run.generated)
            view.figure = plot_step_candidates(run.generated, generation_step)
        view.second_figure = plot_logit_lens(run.lens, title=f"{lesson.model_name} · logit lens")
        continuation = str(run.generated.prediction.get("text", ""))
        view.html = (f'<p style="white-space:pre-wrap">{html.escape(run.text)}<span class="atlas-content" '
                     f'style="background:#fde68a">{html.escape(continuation)}</span></p>')
    return view


def temperature_figure(run: LessonRun, temperature: float) -> Any:
    """Step 4's figure: the head of step 3's attention row and the next-token distribution at `temperature`."""
    explain, lesson = run.explain, run.lesson
    return plot_temperature(explain.scores_masked, explain.tokens, lesson.next_token_logits, lesson.top_next_ids,
                            lesson.top_next_tokens, temperature, query_token=explain.tokens[explain.position],
                            where=f"layer {explain.layer}, head {explain.head}")


def _special(lesson: Any) -> list[bool] | None:
    special = getattr(lesson, "special", None)
    return list(special) if special is not None and len(special) == len(lesson.tokens) else None


def _token_choices(tokens: list[str]) -> list[tuple[str, str]]:
    """(label, position) per token of the sentence: "#2 ␣cat"."""
    return [(f"#{position} {token}", str(position)) for position, token in enumerate(tokens)]


def _heads_figure(run: LessonRun) -> Any:
    lesson = run.lesson
    layer = run.layer
    kind = lesson.decoder_layer_types[layer]
    window = int(kind.split(":", 1)[1]) if kind.startswith("sliding:") else None
    roles = short_role_grid(run.roles)
    labels = [f"head {head} · {roles[layer][head]}" if layer < len(roles) and head < len(roles[layer])
              else f"head {head}" for head in range(lesson.decoder_attention.shape[1])]
    return plot_attention_heads(lesson.decoder_attention[layer], lesson.tokens, causal=True, window=window,
                                head_labels=labels, query_special=_special(lesson), key_special=_special(lesson),
                                title=f"{lesson.model_name} · every head of layer {layer} on your sentence")


def _architecture_views(lesson: Any, language: str) -> tuple[Any, Any, str]:
    decoder = plot_attention_heads(lesson.decoder_attention.mean(axis=(0, 1)), lesson.tokens, causal=True,
                                   query_special=_special(lesson), key_special=_special(lesson),
                                   title=f"decoder-only · {lesson.model_name} · mean over layers and heads")
    encoder = None
    if lesson.encoder_attention is not None:
        encoder = plot_attention_heads(lesson.encoder_attention.mean(axis=(0, 1)), lesson.encoder_tokens,
                                       title=f"encoder-only · {lesson.encoder_model_name} · mean over layers and heads")
    if lesson.encoder_decoder_model:
        said = Said(f"Encoder-decoder: this profile translates with {lesson.encoder_decoder_model}, which has "
                    "real cross-attention: run your sentence in the Translate tab and open the cross-attention view.",
                    f"编码器-解码器：这个配置用 {lesson.encoder_decoder_model} 翻译，它有真正的交叉注意力：在“翻译”"
                    "标签页运行你的句子，再打开交叉注意力视图。")
    else:
        said = Said("Encoder-decoder: this profile has no encoder-decoder model (its translations come from the "
                    "decoder-only model, prompted with examples), so there is no cross-attention to show here. The "
                    "hub profile translates with Marian models, whose cross-attention the Translate tab shows.",
                    "编码器-解码器：这个配置里没有编码器-解码器模型（它的翻译来自仅解码器模型，靠示例提示完成），所以这里"
                    "没有交叉注意力可看。“hub” 配置用 Marian 模型翻译，“翻译”标签页会显示它的交叉注意力。")
    return decoder, encoder, f"<p>{html.escape(said.in_language(language))}</p>"


# --- the answers, measured ---------------------------------------------------------------------------------------
def reveal(run: LessonRun | None, step: int, guess: Any, language: str) -> str:
    """The answer to step `step`'s question, measured on the run, and whether `guess` (a choice value) was right."""
    if run is None:
        return NOT_STARTED.in_language(language)
    key = STEPS[step].key
    if guess in (None, ""):
        return PICK_FIRST.in_language(language)
    guess = str(guess)
    lesson = run.lesson
    if key == "tokens":
        counts = [len(tokenization.ids) for tokenization in lesson.tokenizations]
        most = max(counts)
        right = {str(index) for index, count in enumerate(counts) if count == most}
        listing = ", ".join(f"{translate(t.name, language)}: {len(t.ids)}" for t in lesson.tokenizations)
        said = Said(f"Token counts: {listing}. The more of a language a vocabulary covers with whole pieces, the "
                    "fewer tokens it needs.",
                    f"词元数量：{listing}。一个词表用整块片段覆盖某种语言越多，需要的词元就越少。")
    elif key == "embeddings":
        right = {"no"}
        positional = str(run.explain.facts.get("positional", ""))
        repeated = _repeated_pair(lesson)
        if positional == "rope":
            evidence = Said("In this model the vector entering layer 0 is the table row times a constant; positions "
                            "enter later, inside attention (RoPE).",
                            "在这个模型里，进入第 0 层的向量就是表中的那一行乘以一个常数；位置要到后面在注意力内部（RoPE）"
                            "才加入。")
        else:
            evidence = Said("In this model a learned position vector is added to the row, so the vector depends on "
                            "where the token stands, but still not on its neighbours.",
                            "在这个模型里，表中的那一行还要加上一个学到的位置向量，所以向量取决于词元的位置，但仍然与它的"
                            "邻居无关。")
        if repeated is not None:
            first, second, cosine = repeated
            evidence = Said(evidence.en + f" Your sentence shows it: tokens #{first} and #{second} are the same "
                            f"token, and their vectors have cosine {cosine:.3f}.",
                            evidence.zh + f"你的句子就能说明：#{first} 和 #{second} 是同一个词元，它们向量的余弦是 "
                            f"{cosine:.3f}。")
        said = Said("No: an embedding is a table lookup. " + evidence.en,
                    "不会：嵌入就是查表。" + evidence.zh)
    elif key == "qkv":
        row = np.asarray(run.explain.model_row, dtype=np.float64)
        top = int(np.argmax(row))
        right = {str(top)}
        token = run.explain.tokens[top]
        note = ""
        note_zh = ""
        if top == 0:
            note = (" Many heads put most of their weight on the first token when nothing else is relevant: an "
                    "“attention sink”.")
            note_zh = "当没有别的相关词元时，很多头把大部分权重放在第一个词元上：这叫“注意力汇聚”（attention sink）。"
        said = Said(f"This head (layer {run.explain.layer}, head {run.explain.head}) gives {row[top]:.0%} of the "
                    f"last token's attention to #{top} “{token}”.{note}",
                    f"这个头（第 {run.explain.layer} 层，第 {run.explain.head} 个头）把最后一个词元 {row[top]:.0%} 的"
                    f"注意力给了 #{top}“{token}”。{note_zh}")
    elif key == "softmax":
        logits = np.asarray(lesson.next_token_logits)
        top_id = int(lesson.top_next_ids[0])
        at_one = float(softmax_with_temperature(logits, 1.0)[top_id])
        at_half = float(softmax_with_temperature(logits, 0.5)[top_id])
        right = {"rise" if at_half > at_one else "same" if at_half == at_one else "fall"}
        token = lesson.top_next_tokens[0]
        said = Said(f"The top next token “{token}” has probability {at_one:.1%} at T = 1 and {at_half:.1%} at "
                    "T = 0.5: a lower temperature moves weight to the entries that were already ahead.",
                    f"排第一的下一个词元“{token}”在 T = 1 时概率为 {at_one:.1%}，在 T = 0.5 时为 {at_half:.1%}："
                    "温度越低，权重越集中到本来就领先的条目上。")
    elif key == "heads":
        distance = _mean_head_distance(lesson.decoder_attention[run.layer])
        right = {"differ" if distance > HEADS_DIFFER else "same"}
        tops = _heads_top_tokens(lesson, run.layer)
        said = Said(f"On your sentence the heads of layer {run.layer} differ by {distance:.0%} on average (half the "
                    f"summed difference of two heads' rows: 0% = identical, 100% = no overlap). The last token's "
                    f"favourite in each head: {tops}.",
                    f"在你的句子上，第 {run.layer} 层的各个头平均相差 {distance:.0%}（两个头的注意力行之差的总和的一半："
                    f"0% 表示完全相同，100% 表示毫无重叠）。最后一个词元在每个头里最关注的：{tops}。")
    elif key == "residual":
        attention = float(np.mean(lesson.attention_change))
        ffn = float(np.mean(lesson.ffn_change))
        middle_attention = float(np.median(lesson.attention_change))
        middle_ffn = float(np.median(lesson.ffn_change))
        gap = abs(attention - ffn) / max(attention, ffn, 1e-12)
        right = {"equal" if gap < SAME_CHANGE else "attention" if attention > ffn else "ffn"}
        said = Said(f"Averaged over the layers, attention adds {attention:.0%} of the stream's size and the "
                    f"feed-forward network {ffn:.0%}. A few layers can dominate that mean (the chart's scale is "
                    f"logarithmic): the median layer adds {middle_attention:.0%} through attention and "
                    f"{middle_ffn:.0%} through the feed-forward network.",
                    f"平均到各层，注意力加上的部分是残差流大小的 {attention:.0%}，前馈网络是 {ffn:.0%}。少数几层可能主导"
                    f"这个平均值（图的纵轴是对数刻度）：中位数那一层通过注意力加上 {middle_attention:.0%}，通过前馈网络"
                    f"加上 {middle_ffn:.0%}。")
    elif key == "architectures":
        decoder = visibility_summary(lesson.decoder_attention)
        encoder = visibility_summary(lesson.encoder_attention) if lesson.encoder_attention is not None else None
        # without an encoder in this profile, what an encoder does is its definition, said as such below
        sees = {"decoder": decoder["first_to_last"] > 0,
                "encoder": encoder is None or encoder["first_to_last"] > 0}
        right = {"both" if all(sees.values()) else "decoder" if sees["decoder"] else
                 "encoder" if sees["encoder"] else "neither"}
        encoder_part = (f"; in the encoder it gives it {encoder['first_to_last']:.1%} and {encoder['later_share']:.0%} "
                        "of all attention goes to later tokens" if encoder else
                        "; this profile has no encoder to measure, but in an encoder every token sees every token")
        encoder_part_zh = (f"；在编码器里它给了 {encoder['first_to_last']:.1%}，而且全部注意力中有 "
                           f"{encoder['later_share']:.0%} 给了后面的词元" if encoder else
                           "；这个配置里没有可以测量的编码器，但在编码器里每个词元都能看到所有词元")
        said = Said(f"In the decoder the first token gives the last one {decoder['first_to_last']:.1%} of its "
                    f"attention (the causal mask forbids it){encoder_part}.",
                    f"在解码器里，第一个词元给最后一个词元的注意力是 {decoder['first_to_last']:.1%}（因果掩码不允许）"
                    f"{encoder_part_zh}。")
    elif key == "fewshot":
        if run.few_shot is None:
            return RUN_FIRST.in_language(language)
        few = str(run.few_shot.prediction.get("translation", "")).strip()
        zero = str(run.zero_shot.prediction.get("translation", "")).strip()
        right = {"same" if few == zero else "different"}
        said = Said(f"With demonstrations: “{few}”. Without: “{zero}”.",
                    f"有示范：“{few}”。没有示范：“{zero}”。")
    else:  # generation
        if run.lens is None:
            return RUN_FIRST.in_language(language)
        settled = _lens_settles(run.lens)
        layers = run.lens.num_layers
        third = "early" if settled < layers / 3 else "middle" if settled < 2 * layers / 3 else "late"
        right = {third}
        final = run.lens.layers[-1][-1][0]["token"]
        said = Said(f"At the last position the lens shows the final prediction “{final}” from layer {settled} of "
                    f"{layers} on (layers 0–{layers - 1}).",
                    f"在最后一个位置，透镜从第 {settled} 层起（共 {layers} 层，编号 0–{layers - 1}）就显示出最终预测"
                    f"“{final}”。")
    verdict_text = (RIGHT if guess in right else WRONG).in_language(language)
    return f"**{verdict_text}** {html.escape(said.in_language(language))}"


def _repeated_pair(lesson: Any) -> tuple[int, int, float] | None:
    seen: dict[int, int] = {}
    for position, token_id in enumerate(lesson.token_ids):
        if token_id in seen:
            first = seen[token_id]
            return first, position, float(lesson.embedding_cosine[first, position])
        seen[token_id] = position
    return None


def _mean_head_distance(layer_attention: np.ndarray) -> float:
    """Mean over pairs of heads and over queries of the total-variation distance of their rows. (head, T, T)."""
    heads = layer_attention.shape[0]
    if heads < 2:
        return 0.0
    distances = [0.5 * np.abs(layer_attention[a] - layer_attention[b]).sum(-1).mean()
                 for a in range(heads) for b in range(a + 1, heads)]
    return float(np.mean(distances))


def _heads_top_tokens(lesson: Any, layer: int) -> str:
    last = lesson.decoder_attention[layer, :, -1]                 # (head, key)
    return ", ".join(f"{head}: “{lesson.tokens[int(np.argmax(row))]}”" for head, row in enumerate(last))


def _lens_settles(lens: Any) -> int:
    """The first layer from which the lens's top token at the last position is the final layer's, to the end."""
    final = lens.layers[-1][-1][0]["token"]
    settled = len(lens.layers) - 1
    for layer in range(len(lens.layers) - 1, -1, -1):
        if lens.layers[layer][-1][0]["token"] != final:
            break
        settled = layer
    return settled


# --- the tab ------------------------------------------------------------------------------------------------------
def build_tab(service: Any, store: ResultStore | None = None) -> None:
    """The Lesson tab's components and events, built into the current Blocks/Tab context."""
    store = store or DEFAULT_STORE
    gr.Markdown(INTRO.en, elem_id="lesson-intro")
    with gr.Row():
        sentence = gr.Textbox(value=DEFAULT_SENTENCE, label=SENTENCE_LABEL.en, max_length=limits.MAX_INPUT_CHARS,
                              scale=4, elem_id="lesson-text")
        start = gr.Button(START.en, variant="primary", scale=1, elem_id="lesson-start")
    gr.Examples(EXAMPLES, inputs=[sentence], label="Examples", api_visibility="private")
    step = gr.Radio([(step_title(index), index) for index in range(len(STEPS))], value=0, label=STEP_LABEL.en,
                    elem_id="lesson-step")
    first = step_view(None, 0, "en")
    prose = gr.Markdown(first.prose, elem_id="lesson-prose")
    run_model = gr.Button(RUN_STEP.en, visible=False, elem_id="lesson-run")
    temperature = gr.Slider(*TEMPERATURE_RANGE, value=1.0, step=0.1, label=TEMPERATURE_LABEL.en, visible=False,
                            elem_id="lesson-temperature")
    generation_step = gr.Slider(0, 1, value=0, step=1, label=GENERATION_STEP_LABEL.en, visible=False,
                                elem_id="lesson-generation-step")
    shown_html = gr.HTML(first.html, elem_id="lesson-html")
    figure = gr.Plot(visible=False, show_label=False, elem_id="lesson-figure")
    second_figure = gr.Plot(visible=False, show_label=False, elem_id="lesson-second-figure")
    third_figure = gr.Plot(visible=False, show_label=False, elem_id="lesson-third-figure")
    with gr.Group():
        guess = gr.Radio([], label=first.question, info=YOUR_GUESS.en, elem_id="lesson-guess")
        reveal_button = gr.Button(REVEAL.en, elem_id="lesson-reveal")
        answer = gr.Markdown("", elem_id="lesson-answer")
    with gr.Row():
        previous = gr.Button(PREVIOUS.en, elem_id="lesson-previous")
        following = gr.Button(NEXT.en, elem_id="lesson-next")
    step_outputs = [prose, shown_html, figure, second_figure, third_figure, temperature, generation_step, run_model,
                    guess, answer]

    def updates(view: StepView) -> list[Any]:
        """Every step component for `view`; the sliders start again at T = 1 and the first generation step."""
        return [view.prose, view.html,
                gr.update(value=view.figure, visible=view.figure is not None),
                gr.update(value=view.second_figure, visible=view.second_figure is not None),
                gr.update(value=view.third_figure, visible=view.third_figure is not None),
                gr.update(visible=view.temperature, value=1.0),
                gr.update(visible=view.generation_steps > 1, maximum=max(view.generation_steps - 1, 1), value=0),
                gr.update(visible=view.run_button),
                gr.update(choices=view.choices, value=None, label=view.question), ""]

    def begin(text, request: gr.Request, progress=gr.Progress()):  # noqa: B008
        run = start_lesson(service, store, text, request, progress)
        return [gr.update(value=0), *updates(step_view(run, 0, language_of(request)))]

    def show(index, request: gr.Request):
        index = _step_index(index)
        run = store.get(session_id(request), STORE_KEY)
        return updates(step_view(run if isinstance(run, LessonRun) else None, index, language_of(request)))

    # The sliders redraw only their own figure (they fire on the user's moves: `.input`, not the step's resets)
    def redraw_temperature(value, request: gr.Request):
        return temperature_figure(kept_run(store, request), _temperature(value))

    def redraw_generation_step(value, request: gr.Request):
        run = kept_run(store, request)
        if run.generated is None or not has_steps(run.generated):
            raise gr.Error(RUN_FIRST.in_language(language_of(request)))
        return plot_step_candidates(run.generated, _generation_step(value, run))

    def move(index, by: int, request: gr.Request):
        """Previous / next: the step radio and the step it shows, in one update."""
        moved = min(len(STEPS) - 1, max(0, _step_index(index) + by))
        return [moved, *show(moved, request)]

    def run_this_step(index, request: gr.Request, progress=gr.Progress()):  # noqa: B008
        index = _step_index(index)
        run = run_step_model(service, store, index, request, progress)
        return updates(step_view(run, index, language_of(request)))

    def answer_for(index, chosen, request: gr.Request):
        index = _step_index(index)
        run = store.get(session_id(request), STORE_KEY)
        return reveal(run if isinstance(run, LessonRun) else None, index, chosen, language_of(request))

    # `.input` (the visitor's clicks), not `.change`: a step set by Start or by Previous / Next comes with its own
    # components, so it is drawn once
    start.click(begin, inputs=[sentence], outputs=[step, *step_outputs], **MODEL_EVENT)
    step.input(show, inputs=[step], outputs=step_outputs, **VIEW_EVENT)
    temperature.input(redraw_temperature, inputs=[temperature], outputs=[figure], **VIEW_EVENT)
    generation_step.input(redraw_generation_step, inputs=[generation_step], outputs=[figure], **VIEW_EVENT)
    run_model.click(run_this_step, inputs=[step], outputs=step_outputs, **MODEL_EVENT)
    reveal_button.click(answer_for, inputs=[step, guess], outputs=[answer], **VIEW_EVENT)

    def back(index, request: gr.Request):
        return move(index, -1, request)

    def forward(index, request: gr.Request):
        return move(index, 1, request)

    previous.click(back, inputs=[step], outputs=[step, *step_outputs], **VIEW_EVENT)
    following.click(forward, inputs=[step], outputs=[step, *step_outputs], **VIEW_EVENT)


def _step_index(value: Any) -> int:
    """A step from the page (0–8); anything else is a bad request."""
    try:
        index = int(value)
    except (TypeError, ValueError):
        raise gr.Error("Choose a step of the lesson (1–9).") from None
    if not 0 <= index < len(STEPS) or index != value:
        raise gr.Error("Choose a step of the lesson (1–9).")
    return index


def _temperature(value: Any) -> float:
    with user_errors():
        return float(check_number(value, "temperature", *TEMPERATURE_RANGE))


def _generation_step(value: Any, run: LessonRun) -> int:
    steps = step_count(run.generated) if run.generated is not None and has_steps(run.generated) else 1
    with user_errors():
        return int(check_number(value, "step", 0, max(steps - 1, 0), integer=True))


if __name__ == "__main__":
    run_alone(build_tab, "Lesson")
