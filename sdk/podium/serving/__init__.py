"""The predictor: Podium submission artifacts served by KServe's model server (V1, V2, metrics)."""
