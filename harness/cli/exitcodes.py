"""The exit codes every comfy-chaos command shares (a module of its own so the dispatcher
can name them without importing the commands' dependencies)."""
EXIT_PASS, EXIT_FAIL, EXIT_INCONCLUSIVE, EXIT_USAGE = 0, 1, 2, 3
