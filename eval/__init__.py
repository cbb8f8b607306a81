"""Accuracy of the embedded few-shot tasks on the dev and test splits: `python -m eval` (eval/README.md)."""
