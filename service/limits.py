"""Input limits shared by the service and the app, so both validate with the same numbers."""

from __future__ import annotations

MAX_INPUT_CHARS = 2000          # prompt, question, text to translate or classify
MAX_CONTEXT_CHARS = 4000        # QA context
MAX_NEW_TOKENS = 200            # generation length cap
DEFAULT_MAX_NEW_TOKENS = 40
MAX_TRANSLATION_TOKENS = 256    # tokens a translation may generate (also capped by max_attention_tokens)

TEMPERATURE_RANGE = (0.0, 2.0)  # 0 = greedy
TOP_K_RANGE = (0, 1000)         # 0 = no top-k filtering
TOP_P_RANGE = (0.0, 1.0)        # open at 0: (0, 1]
SEED_RANGE = (0, 2**31 - 1)

DEFAULT_MAX_ATTENTION_TOKENS = 1024
WHOLE_MATRIX_TOKENS = 256       # up to this, results keep whole attention matrices; beyond, queries and keys
                                # (service/attention/on_demand.py: memory linear in tokens)
MAX_ATTENTION_TOKENS_RANGE = (2, 4096)

TASKS = ("generation", "qa", "translation", "sentiment")
DIRECTIONS = ("auto", "en-zh", "zh-en")
PROFILES = ("embedded", "hub", "tiny", "tiny-fewshot")
DEVICES = ("cpu", "cuda", "auto")
