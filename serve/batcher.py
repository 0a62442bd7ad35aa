"""Micro-batching: concurrent requests coalesced into one predictor call.

Requests queued while the model was busy join the next batch at once; then the batch waits at most
`max_wait_ms` for more company (0: never wait). A batch holds at most `max_batch_documents`
documents. Every piece of model work — analyze batches and the other routes' calls (`run`) — goes
through the one bounded queue: a full queue is refused at once (the route answers 503 with
Retry-After) instead of letting waits grow without bound, and work whose caller gave up (a timeout)
is dropped before it runs. All model work runs on one worker thread, so the event loop keeps serving
health checks and the predictor never runs twice at once.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from stancelens.model.annotation import DocumentAnnotation
from stancelens.model.predictor import DocumentInput, Predictor

log = logging.getLogger("stancelens.serve")


class QueueFull(Exception):
    pass


@dataclass
class _Job:
    documents: list[DocumentInput]
    tasks: tuple[str, ...]
    actors: frozenset[str] | None
    future: asyncio.Future = field(repr=False)
    call: Callable | None = field(default=None, repr=False)  # other model work, run alone
    predictor: Predictor | None = field(default=None, repr=False)  # an actor set's predictor; None: the batcher's


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
        self.dropped = 0  # jobs whose caller gave up before they ran
        self._task: asyncio.Task | None = None
        self._busy = False  # a batch taken off the queue is being gathered or run
        self._stopped = False

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._loop())

    @property
    def alive(self) -> bool:
        """False once the batching loop has ended: the service is then not ready."""
        return self._task is not None and not self._task.done()

    async def stop(self) -> None:
        """Finish queued and in-flight work, then stop (graceful shutdown, or a model switch: requests
        that reached this batcher are answered by its model). Work submitted after the stop is refused."""
        while self.alive and (self._busy or not self.queue.empty()):
            await asyncio.sleep(0.01)
        self._stopped = True
        if self._task:
            self._task.cancel()
        while not self.queue.empty():  # only if the loop had died: answer, never leave a caller hanging
            job = self.queue.get_nowait()
            if not job.future.done():
                job.future.set_exception(QueueFull())
        await asyncio.to_thread(self.executor.shutdown, True)

    @property
    def depth(self) -> int:
        return self.queue.qsize()

    def _submit(self, job: _Job):
        if self._stopped:
            raise QueueFull  # the route answers 503 with Retry-After; the next try reaches the new batcher
        try:
            self.queue.put_nowait(job)
        except asyncio.QueueFull as exc:
            raise QueueFull from exc
        return job.future

    async def annotate(self, documents: Sequence[DocumentInput], tasks: Sequence[str],
                       actors: set[str] | None, predictor: Predictor | None = None) -> list[DocumentAnnotation]:
        """`predictor`: the same engine under another actor set; requests are batched per set."""
        future = asyncio.get_running_loop().create_future()
        return await self._submit(_Job(list(documents), tuple(tasks),
                                       frozenset(actors) if actors is not None else None, future,
                                       predictor=predictor))

    async def run(self, fn: Callable, *args):
        """Run other model work (/v1/stance, /v1/evaluate) on the model thread, through the same queue."""
        future = asyncio.get_running_loop().create_future()
        return await self._submit(_Job([], (), None, future, call=lambda: fn(*args)))

    async def _gather(self, first: _Job) -> list[_Job]:
        jobs = [first]
        if not self.enabled or first.call is not None:
            return jobs
        size = len(first.documents)
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
        return jobs

    async def _loop(self) -> None:
        while True:
            first = await self.queue.get()
            self._busy = True
            try:
                jobs = await self._gather(first)
                live = [j for j in jobs if not j.future.done()]
                self.dropped += len(jobs) - len(live)
                await self._execute(live)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # never let one bad batch end the loop
                log.error("model batch failed", extra={"fields": {"error": repr(exc)}})
            finally:
                self._busy = False

    async def _execute(self, jobs: list[_Job]) -> None:
        loop = asyncio.get_running_loop()
        calls = [j for j in jobs if j.call is not None]
        groups: dict[tuple, list[_Job]] = {}
        for j in jobs:
            if j.call is None:
                groups.setdefault((j.tasks, j.actors, id(j.predictor or self.predictor)), []).append(j)
        for j in calls:
            call = j.call
            assert call is not None
            try:
                result = await loop.run_in_executor(self.executor, call)
            except Exception as exc:  # the error belongs to the request, not to the loop
                if not j.future.done():
                    j.future.set_exception(exc)
                continue
            if not j.future.done():
                j.future.set_result(result)
        for (tasks, actors, _), members in groups.items():
            docs = [d for j in members for d in j.documents]
            predictor = members[0].predictor or self.predictor
            try:
                wanted = set(actors) if actors is not None else None
                results = await loop.run_in_executor(self.executor, predictor.annotate, docs, tasks, wanted)
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
