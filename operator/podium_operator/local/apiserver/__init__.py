"""The local API server: kmock's Kubernetes emulator with real-cluster semantics, served over HTTP."""
