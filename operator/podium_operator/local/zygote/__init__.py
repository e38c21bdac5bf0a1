"""The warm interpreter: forks Podium's trusted job steps from a process that has imported them already."""
