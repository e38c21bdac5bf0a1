"""AutoML for training submissions: search spaces, Optuna HPO, dataset meta-features, recommendations."""
