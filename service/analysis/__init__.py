"""Numbers computed from a kept AttentionResult (no model call): segment shares, the answer focus, alignments."""
