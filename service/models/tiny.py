"""Tiny random models of the real families (GPT-2, DistilBERT, Marian, Gemma-3) with tokenizers trained in code.

They make every code path of the service run offline in seconds; their predictions are random.
Each model and tokenizer is built once per process (cached), with a fixed seed, so results repeat.
"""

from __future__ import annotations

import json
import threading
from functools import lru_cache
from typing import Any

from service.models.loading import LoadedModel, prepare_model
from service.result import Architecture

# A few English and Chinese sentences: enough for every tokenizer to learn words of both languages.
CORPUS = [
    "The quick brown fox jumps over the lazy dog.",
    "Attention lets every token look at the tokens before it.",
    "Machine learning is changing the world.",
    "I loved this movie, the acting was wonderful and the story was moving.",
    "This film was boring and far too long; I would not watch it again.",
    "Richard Feynman won the Nobel Prize in Physics in 1965.",
    "Where did the scientist work? He worked at Caltech in Pasadena.",
    "Translate English to Chinese: good morning, how are you today?",
    "Once upon a time there was a small robot who wanted to learn.",
    "机器学习正在改变世界。",
    "我喜欢这部电影，演员的表演非常精彩。",
    "这部电影很无聊，我不会再看了。",
    "今天天气很好，我们去公园散步吧。",
    "注意力机制让每个词都能看到其他词。",
    "北京是中国的首都。",
]
# Characters the Gemma-like tokenizer never sees in training: they reach the model as UTF-8 byte tokens.
BYTE_FALLBACK_EXCLUDED = "京首都"

TINY_NAMES = {
    "generation": "tiny-gpt2",
    "qa": "tiny-distilbert-qa",
    "sentiment": "tiny-distilbert-sst2",
    "translation.en-zh": "tiny-marian-en-zh",
    "translation.zh-en": "tiny-marian-zh-en",
    "fewshot": "tiny-gemma3",
}
_LOCK = threading.Lock()


# --- tokenizers -----------------------------------------------------------------------------------
@lru_cache(maxsize=None)
def byte_level_tokenizer() -> Any:
    """GPT-2 style byte-level BPE (spaces as 'Ġ', every byte representable)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    backend = Tokenizer(models.BPE())
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    backend.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=420,
        special_tokens=["<|endoftext|>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    backend.train_from_iterator(CORPUS, trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=backend, bos_token="<|endoftext|>", eos_token="<|endoftext|>", unk_token="<|endoftext|>"
    )


@lru_cache(maxsize=None)
def wordpiece_tokenizer(lowercase: bool) -> Any:
    """BERT style WordPiece ('##' continuations, [CLS] a [SEP] b [SEP])."""
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    backend = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    backend.normalizer = normalizers.BertNormalizer(lowercase=lowercase, handle_chinese_chars=True)
    backend.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    backend.decoder = decoders.WordPiece()
    trainer = trainers.WordPieceTrainer(vocab_size=360, special_tokens=specials, show_progress=False)
    # Leave two Chinese characters out of training so [UNK] shows up in tests.
    backend.train_from_iterator([line.replace("京", "") for line in CORPUS], trainer)
    cls_id, sep_id = backend.token_to_id("[CLS]"), backend.token_to_id("[SEP]")
    backend.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]",
        pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", cls_id), ("[SEP]", sep_id)],
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=backend,
        unk_token="[UNK]",
        pad_token="[PAD]",
        cls_token="[CLS]",
        sep_token="[SEP]",
        mask_token="[MASK]",
    )


@lru_cache(maxsize=None)
def sentencepiece_tokenizer() -> Any:
    """Marian style SentencePiece-like BPE ('▁' for spaces, '</s>' appended)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    backend = Tokenizer(models.BPE(unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.Metaspace(replacement="\u2581", prepend_scheme="always")
    backend.decoder = decoders.Metaspace(replacement="\u2581", prepend_scheme="always")
    trainer = trainers.BpeTrainer(vocab_size=400, special_tokens=["</s>", "<unk>", "<pad>"], show_progress=False)
    backend.train_from_iterator(CORPUS, trainer)
    backend.post_processor = processors.TemplateProcessing(
        single="$A </s>", special_tokens=[("</s>", backend.token_to_id("</s>"))]
    )
    return PreTrainedTokenizerFast(tokenizer_object=backend, eos_token="</s>", unk_token="<unk>", pad_token="<pad>")


@lru_cache(maxsize=None)
def gemma_like_tokenizer() -> Any:
    """Gemma style BPE with byte fallback ('<0xE4>' tokens for unseen characters) and <bos> prepended."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    specials = ["<pad>", "<eos>", "<bos>", "<unk>"]
    backend = Tokenizer(models.BPE(unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.Metaspace(replacement="\u2581", prepend_scheme="never")
    trainer = trainers.BpeTrainer(vocab_size=420, special_tokens=specials, show_progress=False)
    training = ["".join(char for char in line if char not in BYTE_FALLBACK_EXCLUDED) for line in CORPUS]
    backend.train_from_iterator(training, trainer)
    # Add the 256 byte tokens and switch byte fallback on, as SentencePiece models like Gemma's do.
    spec = json.loads(backend.to_str())
    vocab = spec["model"]["vocab"]
    for byte in range(256):
        vocab.setdefault(f"<0x{byte:02X}>", len(vocab))
    spec["model"]["byte_fallback"] = True
    backend = Tokenizer.from_str(json.dumps(spec))
    backend.decoder = decoders.Sequence(
        [decoders.Replace("\u2581", " "), decoders.ByteFallback(), decoders.Fuse()]
    )
    backend.post_processor = processors.TemplateProcessing(
        single="<bos> $A", special_tokens=[("<bos>", backend.token_to_id("<bos>"))]
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=backend, bos_token="<bos>", eos_token="<eos>", unk_token="<unk>", pad_token="<pad>"
    )


# --- models ---------------------------------------------------------------------------------------
def _build(key: str) -> tuple[Any, Any, Architecture]:
    import torch
    import transformers as tf

    torch.manual_seed(1234 + sorted(TINY_NAMES).index(key))
    if key == "generation":
        tokenizer = byte_level_tokenizer()
        eos = tokenizer.eos_token_id
        config = tf.GPT2Config(
            vocab_size=len(tokenizer), n_positions=1024, n_embd=32, n_layer=2, n_head=2,
            bos_token_id=eos, eos_token_id=eos,
        )
        return tf.GPT2LMHeadModel._from_config(config, attn_implementation="sdpa"), tokenizer, "decoder"
    if key in ("qa", "sentiment"):
        tokenizer = wordpiece_tokenizer(lowercase=(key == "sentiment"))
        config = tf.DistilBertConfig(
            vocab_size=len(tokenizer), dim=32, n_layers=2, n_heads=2, hidden_dim=64,
            max_position_embeddings=512, pad_token_id=tokenizer.pad_token_id,
        )
        if key == "qa":
            model = tf.DistilBertForQuestionAnswering._from_config(config, attn_implementation="sdpa")
        else:
            config.id2label = {0: "NEGATIVE", 1: "POSITIVE"}
            config.label2id = {"NEGATIVE": 0, "POSITIVE": 1}
            model = tf.DistilBertForSequenceClassification._from_config(config, attn_implementation="sdpa")
        return model, tokenizer, "encoder"
    if key.startswith("translation."):
        tokenizer = sentencepiece_tokenizer()
        config = tf.MarianConfig(
            vocab_size=len(tokenizer), d_model=32, encoder_layers=2, decoder_layers=2,
            encoder_attention_heads=2, decoder_attention_heads=2, encoder_ffn_dim=64, decoder_ffn_dim=64,
            max_position_embeddings=512, pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id,
            decoder_start_token_id=tokenizer.pad_token_id, forced_eos_token_id=tokenizer.eos_token_id,
        )
        return tf.MarianMTModel._from_config(config, attn_implementation="sdpa"), tokenizer, "encoder-decoder"
    if key == "fewshot":
        tokenizer = gemma_like_tokenizer()
        config = tf.Gemma3TextConfig(
            vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=4,
            num_attention_heads=4, num_key_value_heads=1, head_dim=8, sliding_window=16,
            layer_types=["sliding_attention", "sliding_attention", "sliding_attention", "full_attention"],
            max_position_embeddings=4096, pad_token_id=tokenizer.pad_token_id,
            eos_token_id=tokenizer.eos_token_id, bos_token_id=tokenizer.bos_token_id,
        )
        return tf.Gemma3ForCausalLM._from_config(config, attn_implementation="sdpa"), tokenizer, "decoder"
    raise KeyError(f"no tiny model for {key!r}")


@lru_cache(maxsize=None)
def load_tiny(key: str, device: str = "cpu") -> LoadedModel:
    """The tiny model for `key` (a key of TINY_NAMES); one shared instance (and lock) per process and device."""
    with _LOCK:
        model, tokenizer, architecture = _build(key)
    model = prepare_model(model, device)
    return LoadedModel(model, tokenizer, TINY_NAMES[key], architecture, device)


def save_tiny(key: str, directory: str) -> str:
    """Save a tiny model and its tokenizer as a local, safetensors 'Hub snapshot' (tests of the hub loader)."""
    loaded = load_tiny(key)
    loaded.model.save_pretrained(directory, safe_serialization=True)
    loaded.tokenizer.save_pretrained(directory)
    return directory
