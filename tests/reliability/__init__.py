"""Helpers for the reliability tests: a real app server in a subprocess, request outcomes, a guarded browser."""
