"""Example inputs for every tab, in English and Chinese (plain data: each row matches the tab's inputs)."""

from __future__ import annotations

# generate(prompt, max_new_tokens, temperature, top_k, top_p, seed)
GENERATION_EXAMPLES: list[list[object]] = [
    ["今天天气很好，我想去公园散步。", 30, 0.0, 0, 1.0, 0],
    ["写一个关于冬天的美景的小故事：", 40, 0.8, 40, 0.95, 7],
    ["Once upon a time, in a small village by the sea,", 30, 0.0, 0, 1.0, 0],
    ["The three most important ideas in machine learning are", 30, 0.7, 50, 0.9, 42],
]

# answer(context, question)
QA_EXAMPLES: list[list[str]] = [
    [
        "量子计算是一种利用量子力学原理进行信息处理的计算方式。它使用量子比特，可以同时处于多种状态。",
        "什么是量子计算？",
    ],
    [
        "The Great Wall of China is over 21,000 kilometres long. Most of the existing wall was built during "
        "the Ming dynasty.",
        "When was most of the existing wall built?",
    ],
    [
        "Richard Feynman shared the 1965 Nobel Prize in Physics for his work on quantum electrodynamics.",
        "Who won the Nobel Prize for work on quantum electrodynamics?",
    ],
    [
        "北京是中华人民共和国的首都，也是全国的政治和文化中心。",
        "中国的首都是哪里？",
    ],
]

# translate(text, direction)
TRANSLATION_EXAMPLES: list[list[str]] = [
    ["Today is a beautiful day.", "en-zh"],
    ["机器学习正在改变世界。", "zh-en"],
    ["I would like a cup of tea, please.", "auto"],
    ["我们明天早上八点在火车站见面。", "auto"],
]

# classify(text)
SENTIMENT_EXAMPLES: list[list[str]] = [
    ["这部电影非常感人，我忍不住哭了。"],
    ["The food was cold and the service was terribly slow."],
    ["What a wonderful performance, I loved every minute of it!"],
    ["这家餐厅的菜太难吃了，我再也不会来了。"],
]
