"""`python -m comfy_chaos.harness.cli` is `comfy-chaos`."""
import sys

from comfy_chaos.harness.cli import main

sys.exit(main())
