"""Detect runs started from the workbench: one at a time, in a background thread.

The job runs `cibwatch.pipeline.detect` on its own cursor of the server's workspace and
reports which stage it is in; pages and the API poll `JobManager.get`.
"""

from __future__ import annotations

import threading
import time
import traceback
import uuid
from dataclasses import asdict, dataclass, field
from types import SimpleNamespace
from typing import TYPE_CHECKING

from cibwatch import audit

if TYPE_CHECKING:
    from cibwatch.web.store import Store

# The stages pipeline.detect announces, in order; progress is the share already passed.
STAGES = ("signals", "graph", "clusters", "operations", "characterise", "results")


@dataclass
class Job:
    job_id: str
    kind: str
    user: str
    state: str = "queued"  # queued | running | done | failed
    stage: str | None = None
    progress: float = 0.0
    started_at: float = field(default_factory=time.time)
    finished_at: float | None = None
    result: dict | None = None
    error: str | None = None

    def to_dict(self) -> dict:
        return asdict(self)


class JobBusy(Exception):
    """A detect run is already going."""


class JobManager:
    def __init__(self, store: Store):
        self.store = store
        self._jobs: dict[str, Job] = {}
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def start_detect(self, user: str, reason: str | None = None) -> Job:
        with self._lock:
            if self._thread is not None and self._thread.is_alive():
                raise JobBusy("a detect run is already in progress")
            job = Job(job_id=uuid.uuid4().hex[:12], kind="detect", user=user)
            self._jobs[job.job_id] = job
            with self.store.write() as con:
                audit.record(con, "detect.start", f"job:{job.job_id}", reason, user)
            self._thread = threading.Thread(
                target=self._run_detect, args=(job,), name=f"detect-{job.job_id}", daemon=True
            )
            self._thread.start()
            return job

    def _run_detect(self, job: Job) -> None:
        from cibwatch.pipeline import detect

        job.state = "running"

        def progress(stage: str) -> None:
            self.store.bump()  # the previous stage rewrote result tables
            job.stage = stage
            if stage in STAGES:
                job.progress = STAGES.index(stage) / len(STAGES)

        con = self.store.new_cursor()
        try:
            ws = SimpleNamespace(con=con, path=self.store.path)
            result = detect(ws, out=None, config=self.store.config, progress=progress)
            job.result = {
                "run_id": result.run_id,
                "flagged_assets": int(result.flagged_assets),
                "operations": int(result.operations),
                "seconds": result.seconds,
            }
            job.state, job.progress = "done", 1.0
        except Exception as exc:  # a failed run is reported on the job, not raised
            job.state = "failed"
            job.error = f"{type(exc).__name__}: {exc}"
            traceback.print_exc()
        finally:
            con.close()
            job.finished_at = time.time()
            self.store.bump()
        detail = job.error if job.state == "failed" else str(job.result)
        with self.store.write() as wcon:
            audit.record(wcon, f"detect.{job.state}", f"job:{job.job_id}", detail, job.user)

    def get(self, job_id: str) -> Job | None:
        return self._jobs.get(job_id)

    def all(self) -> list[Job]:
        return sorted(self._jobs.values(), key=lambda j: -j.started_at)

    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def wait(self, timeout: float | None = None) -> None:
        if self._thread is not None:
            self._thread.join(timeout)
