"""Podium: the Kubernetes operator (kopf handlers, builders, local cluster)."""
