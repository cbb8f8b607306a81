"""How attention is captured (eager passes, rows kept while generating) and how tokens are shown."""
