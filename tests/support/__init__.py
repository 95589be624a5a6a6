"""What the tests share: launching the real CLI, gloo worlds, run fixtures, paths."""
