"""The fake-server fixtures of test_subprocess_adapters.py, for every adapter test module here."""
from .test_subprocess_adapters import server, slow_server  # noqa: F401 - fixtures, found by name
