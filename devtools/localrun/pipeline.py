"""The local run: the declared pipeline on moto, each handler in its own Lambda-like process.

``LocalPipeline(spec, layer_archive=..., ...).run(files) -> RunResult`` checks what AWS would refuse at
deploy time (:func:`devtools.localrun.preflight.preflight`), then, on a fresh :class:`AwsEmulator`:

1. :mod:`~devtools.localrun.provision` creates what the stack declares (buckets with their notification
   configurations, failure queues, the database secret, one IAM role per stage with exactly its declared
   inline policies), prepares each function's Lambda-like image and migrates the database;
2. :mod:`~devtools.localrun.uploads` uploads the files under the raw bucket's input prefix, and
   :mod:`~devtools.localrun.delivery` delivers moto's S3 events to the stages with Lambda's
   asynchronous-invocation semantics until the chain is idle;
3. :mod:`~devtools.localrun.collect` gathers what the chain left: objects, reports, quarantine, failure
   queues, the database, into a :class:`RunResult`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TypeVar

from devtools.localrun.collect import collect
from devtools.localrun.delivery import Dispatcher
from devtools.localrun.emulator import AwsEmulator
from devtools.localrun.errors import LocalRunError
from devtools.localrun.lambda_runtime import Interpreter
from devtools.localrun.preflight import preflight
from devtools.localrun.provision import Deployment, migrate, prepare_images, provision
from devtools.localrun.results import RunResult
from devtools.localrun.spec import PipelineSpec
from devtools.localrun.uploads import collect_uploads, upload

Printer = Callable[[str], None]
T = TypeVar("T")
AfterIdle = Callable[[AwsEmulator, Deployment, Dispatcher, Callable[[], RunResult]], T]


def _quiet(_: str) -> None:
    return None


class LocalPipeline:
    """Runs a declared pipeline (:class:`PipelineSpec`) on moto; one :meth:`run` per instance."""

    def __init__(
        self,
        spec: PipelineSpec,
        *,
        layer_archive: Path,
        interpreter: Interpreter,
        work_dir: Path,
        database_url: str,
        cache_dir: Path | None = None,
        duplicate_deliveries: bool = False,
        concurrency: int = 2,
        idle_timeout: float = 300.0,
        migrate_database: bool = True,
        cpu_scaling: bool = True,
        echo: Printer = _quiet,
    ) -> None:
        self.spec = spec
        self.layer_archive = layer_archive
        self.interpreter = interpreter
        self.work_dir = work_dir
        self.database_url = database_url
        self.cache_dir = cache_dir or work_dir.parent / "cache"
        self.duplicate_deliveries = duplicate_deliveries
        self.concurrency = max(1, concurrency)
        self.idle_timeout = idle_timeout
        # False plays a stack whose migration has not run: analytics then meets the database as it is.
        self.migrate_database = migrate_database
        # False: CPU time is measured but neither scaled to the memory's CPU share nor held to the timeout.
        self.cpu_scaling = cpu_scaling
        self.echo = echo

    def run(self, files: Sequence[Path]) -> RunResult:
        return self.run_then(files, lambda _aws, _deployment, _dispatcher, result: result())

    def run_then(self, files: Sequence[Path], then: AfterIdle[T]) -> T:
        """Provision, migrate, upload ``files`` and wait until the chain is idle; then return what
        ``then(aws, deployment, dispatcher, result)`` returns, ``result()`` collecting the run so far,
        while the emulator and the functions still exist (a replay runs there)."""
        problems = preflight(self.spec)
        if problems:
            raise LocalRunError("the declared stack would not deploy:\n  - " + "\n  - ".join(problems))
        uploads = collect_uploads(files)
        started = time.monotonic()
        dispatcher = Dispatcher(
            self.spec,
            duplicate_deliveries=self.duplicate_deliveries,
            concurrency=self.concurrency,
            echo=self.echo,
        )
        deployment: Deployment | None = None
        with AwsEmulator(self.spec.region, dispatcher.on_s3_event) as aws:
            try:
                deployment = provision(aws, self.spec)
                prepare_images(
                    deployment,
                    aws,
                    layer_archive=self.layer_archive,
                    interpreter=self.interpreter,
                    work_dir=self.work_dir,
                    cache_dir=self.cache_dir,
                    cpu_scaling=self.cpu_scaling,
                )
                if self.migrate_database:
                    migrate(deployment, self.echo)
                dispatcher.start(deployment, aws)
                uploaded = upload(aws, self.spec, uploads, self.echo)
                dispatcher.wait_idle(self.idle_timeout)
                ready = deployment

                def result() -> RunResult:
                    return collect(
                        aws,
                        ready,
                        dispatcher,
                        uploads=uploaded,
                        elapsed=time.monotonic() - started,
                        interpreter=self.interpreter,
                        layer_archive=self.layer_archive,
                        database_url=self.database_url,
                    )

                return then(aws, deployment, dispatcher, result)
            finally:
                dispatcher.stop()
                if deployment is not None:
                    deployment.close()
