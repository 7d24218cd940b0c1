"""Tests of the `nbx` command line as a whole: its one error path and its JSON outputs."""
