"""I/O sequences per resource (playground, submission, leaderboard): read, decide with reconcile/, write."""
