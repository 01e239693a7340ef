"""The built-in tasks: one folder each (task.yaml, description.md, prepare.py, leaderboard.csv)."""
