"""Podium: Kubernetes-native playgrounds, evaluated submissions, leaderboards and deployments."""

__version__ = "0.1.0"
