"""Local mode's KServe: predictor processes per InferenceService revision behind a traffic-splitting router."""
