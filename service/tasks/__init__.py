"""How tasks run: one runner per task (preprocess → forward → postprocess), few-shot prompts, shared helpers."""
