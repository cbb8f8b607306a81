"""Where models come from: the embedded package files, the Hub, tiny models built in code; loading and devices."""
