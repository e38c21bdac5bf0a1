"""Pure reconcile logic: typed spec + observed state -> desired manifests and status patches.

Nothing here talks to Kubernetes or imports kopf (an import-linter contract enforces it),
so every decision is unit-testable.
"""
