"""Local mode: a fake cluster on 127.0.0.1 (API server, object store, job runner) that runs the real operator."""
