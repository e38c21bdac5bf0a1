"""Evaluation engine: the untrusted predict step and the trusted score step."""
