"""Micro-batching: concurrent requests coalesced into one predictor call.

Requests queued while the model was busy join the next batch at once; then the batch waits at most
`max_wait_ms` for more company (0: never wait). A batch holds at most `max_batch_documents`
documents; the queue is bounded and a full queue is refused at once (the route answers 503 with
Retry-After) instead of letting waits grow without bound. All model work runs on one worker thread,
so the event loop keeps serving health checks and the predictor never runs twice at once.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from stancelens.model.annotation import DocumentAnnotation
from stancelens.model.predictor import DocumentInput, Predictor


class QueueFull(Exception):
    pass


@dataclass
class _Job:
    documents: list[DocumentInput]
    tasks: tuple[str, ...]
    actors: frozenset[str] | None
    future: asyncio.Future = field(repr=False)


class MicroBatcher:
    def __init__(self, predictor: Predictor, max_batch_documents: int = 32, max_wait_ms: float = 5.0,
                 queue_size: int = 256, enabled: bool = True, on_batch: Callable[[int], None] | None = None):
        self.predictor = predictor
        self.max_batch = max_batch_documents
        self.max_wait = max_wait_ms / 1000.0
        self.enabled = enabled
        self.queue: asyncio.Queue[_Job] = asyncio.Queue(maxsize=queue_size)
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="stancelens-model")
        self.on_batch = on_batch
        self._task: asyncio.Task | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._loop())

    async def stop(self) -> None:
        """Finish queued work, then stop (graceful shutdown)."""
        while not self.queue.empty():
            await asyncio.sleep(0.01)
        if self._task:
            self._task.cancel()
        self.executor.shutdown(wait=True)

    @property
    def depth(self) -> int:
        return self.queue.qsize()

    async def annotate(self, documents: Sequence[DocumentInput], tasks: Sequence[str],
                       actors: set[str] | None) -> list[DocumentAnnotation]:
        future = asyncio.get_running_loop().create_future()
        job = _Job(list(documents), tuple(tasks), frozenset(actors) if actors is not None else None, future)
        try:
            self.queue.put_nowait(job)
        except asyncio.QueueFull as exc:
            raise QueueFull from exc
        return await future

    async def run(self, fn: Callable, *args):
        """Run other model work (e.g. /v1/stance) on the model thread."""
        return await asyncio.get_running_loop().run_in_executor(self.executor, fn, *args)

    async def _loop(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            job = await self.queue.get()
            jobs = [job]
            if self.enabled:
                size = len(job.documents)
                # Whatever queued up while the model was busy goes in at once; only then wait for company.
                while size < self.max_batch and not self.queue.empty():
                    nxt = self.queue.get_nowait()
                    jobs.append(nxt)
                    size += len(nxt.documents)
                deadline = time.monotonic() + self.max_wait
                while size < self.max_batch:
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        break
                    try:
                        nxt = await asyncio.wait_for(self.queue.get(), remaining)
                    except TimeoutError:
                        break
                    jobs.append(nxt)
                    size += len(nxt.documents)
            groups: dict[tuple, list[_Job]] = {}
            for j in jobs:
                groups.setdefault((j.tasks, j.actors), []).append(j)
            for (tasks, actors), members in groups.items():
                docs = [d for j in members for d in j.documents]
                try:
                    wanted = set(actors) if actors is not None else None
                    results = await loop.run_in_executor(self.executor, self.predictor.annotate, docs, tasks, wanted)
                except Exception as exc:  # the error belongs to the requests, not to the loop
                    for j in members:
                        if not j.future.done():
                            j.future.set_exception(exc)
                    continue
                if self.on_batch:
                    self.on_batch(len(docs))
                pos = 0
                for j in members:
                    if not j.future.done():
                        j.future.set_result(results[pos : pos + len(j.documents)])
                    pos += len(j.documents)
