"""Podium's operator: kopf handlers, flows per resource, pure reconcile logic, and local mode."""
