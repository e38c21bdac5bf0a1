"""Local mode: an in-process Kubernetes API emulator and the helpers around it."""
