"""Extra model passes that look inside a model: the logit lens and the head-role probe (service.analysis needs none)."""
