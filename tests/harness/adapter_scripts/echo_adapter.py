"""An in-process adapter for tests: reports every task as a success without a server."""
from comfy_chaos.harness.adapters.base import AdapterSession


class EchoAdapter:
    name = "echo"
    scalable = True

    async def run(self, session: AdapterSession) -> None:
        session.ready("echo", "1")
        async for task in session.tasks():
            session.submitted(task.task_id, f"p-{task.task_id}")
            session.result(task.task_id, "success", outputs={}, prompt_id=f"p-{task.task_id}")
        session.stats({"tasks": 1})
        session.done()
