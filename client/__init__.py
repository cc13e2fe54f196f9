"""Reference ComfyUI client: reports every finished prompt exactly once, whatever the connection does.

```python
from comfy_chaos.client import ComfyClient, ClientConfig
async with ComfyClient("http://127.0.0.1:8188", config=ClientConfig.reference()) as comfy:
    handle = await comfy.submit(workflow, on_progress=print)
    outcome = await handle.result()
```
"""
from comfy_chaos.client.comfy import ComfyClient, TaskHandle
from comfy_chaos.client.config import ClientConfig
from comfy_chaos.client.errors import ComfyError, ComfyUnavailable, PromptRejected
from comfy_chaos.client.stats import ClientStats
from comfy_chaos.client.types import Outcome, ProgressEvent

__all__ = [
    "ClientConfig",
    "ClientStats",
    "ComfyClient",
    "ComfyError",
    "ComfyUnavailable",
    "Outcome",
    "ProgressEvent",
    "PromptRejected",
    "TaskHandle",
]
