"""The service on a GPU (`--device cuda`, bfloat16): every task answers on the tiny models of each profile, Ask
requests asked together share the decoding loop there, and a long result keeps its queries and keys on the GPU,
each layer a view asks for equal to the model's own attention.

Skipped where PyTorch sees no CUDA device (CI has none). On a GPU machine: `python -m pytest tests/test_cuda.py`;
it imports neither gradio nor plotly, so the service's own packages are enough.
"""

from __future__ import annotations

import threading
from typing import Any

import numpy as np
import pytest
import torch

from service import ModelService
from service.attention import capture, on_demand

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")

# every task, English and Chinese
CALLS = [
    ("generation", {"prompt": "The quick brown fox", "max_new_tokens": 6}),
    ("generation", {"prompt": "机器学习正在", "max_new_tokens": 6}),
    ("qa", {"context": "Richard Feynman won the Nobel Prize in Physics in 1965.", "question": "When did he win?"}),
    ("qa", {"context": "北京是中国的首都。", "question": "中国的首都是哪里？"}),
    ("translation", {"text": "Good morning, how are you today?"}),
    ("translation", {"text": "今天天气很好。"}),
    ("sentiment", {"text": "I loved this movie, the acting was wonderful."}),
    ("sentiment", {"text": "这部电影很无聊。"}),
]
# ~1,500 characters: ~900 tokens with the few-shot prompt on the tiny tokenizer, past the whole-matrix cap (256)
# and inside the 1,024 kept, so one eager pass over the result's tokens is the reference
LONG_CONTEXT = " ".join(["Where did the scientist work? He worked at Caltech in Pasadena."] * 24)


@pytest.fixture(scope="module", params=["tiny", "tiny-fewshot"])
def service(request: Any) -> ModelService:
    return ModelService(request.param, device="cuda")


def _sides(result: Any) -> list[np.ndarray]:
    arrays = [result.encoder_attention, result.decoder_attention, result.cross_attention]
    return [np.asarray(array) for array in arrays if array is not None]


@pytest.mark.parametrize("task,inputs", CALLS, ids=[f"{task}-{index}" for index, (task, _) in enumerate(CALLS)])
def test_every_task_answers_on_the_gpu_with_attention_rows_that_are_distributions(service, task, inputs) -> None:
    result = service.run_task(task, inputs)
    assert result.prediction
    for attention in _sides(result):
        assert np.isfinite(attention).all()
        sums = attention.sum(axis=-1)                                     # (layer, head, query): each row a softmax
        assert sums.max() < 1.02 and sums.min() > 0.5                     # bfloat16 weights; cut rows sum below 1
    model = service.backend.model(service.backend.task_keys(task)[0]).model
    assert next(model.parameters()).device.type == "cuda"


def test_a_long_answer_keeps_queries_and_keys_on_the_gpu_equal_to_the_models_attention() -> None:
    service = ModelService("tiny-fewshot", device="cuda")
    result = service.answer(LONG_CONTEXT, "Where did he work?")
    attention = result.decoder_attention
    assert isinstance(attention, on_demand.OnDemandAttention)
    assert attention.queries[0].device.type == "cuda" and attention.shape[-1] > on_demand.WHOLE_MATRIX_TOKENS
    loaded = service.backend.model(service.backend.task_keys("qa")[0])
    assert not result.notices                                             # nothing cut: the whole prompt is kept
    with loaded.lock, torch.inference_mode():
        reference = capture.decoder_attention(loaded.model, torch.tensor([result.decoder_token_ids], device="cuda"))
    for layer in range(attention.shape[0]):
        shown = attention.layer(layer)                                    # (head, N, N) on the host, computed there
        assert isinstance(shown, np.ndarray)
        assert np.abs(shown - reference[layer]).max() < 2e-2             # bfloat16 projections on both sides


def test_ask_requests_asked_together_on_the_gpu_all_get_their_own_answers() -> None:
    service = ModelService("tiny-fewshot", device="cuda")
    questions = [CALLS[2][1], CALLS[3][1],
                 {"context": "今天天气很好，我们去公园散步吧。", "question": "去哪里？"},
                 {"context": "", "question": "Where?"}]                  # the last one is bad input: fails alone
    outcomes: list[Any] = [None] * len(questions)

    def ask(index: int) -> None:
        try:
            outcomes[index] = service.answer(**questions[index])
        except Exception as error:  # noqa: BLE001 (the outcome under test)
            outcomes[index] = error

    threads = [threading.Thread(target=ask, args=(index,)) for index in range(len(questions))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    from service.errors import InvalidInputError

    assert isinstance(outcomes[-1], InvalidInputError)
    for outcome, question in zip(outcomes[:-1], questions):
        assert not isinstance(outcome, BaseException), outcome
        assert outcome.prediction["answer"] in question["context"]       # a span of its own context
