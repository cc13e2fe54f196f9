"""Reference ComfyUI client: reports every finished prompt exactly once, whatever the connection does.

```python
from client import ComfyClient, ClientConfig
async with ComfyClient("http://127.0.0.1:8188", config=ClientConfig.reference()) as comfy:
    handle = await comfy.submit(workflow, on_progress=print)
    outcome = await handle.result()
```
"""
from client.comfy import ComfyClient, TaskHandle
from client.config import ClientConfig
from client.errors import ComfyError, ComfyUnavailable, PromptRejected
from client.stats import ClientStats
from client.types import Outcome, ProgressEvent

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
