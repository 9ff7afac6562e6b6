"""The local run: the declared stack recreated on moto, each handler in a Lambda-like process.

    command.py         ``python -m devtools run``: prepare (layer, interpreter, declared stack), run, print
    graph.py, spec.py  the declared stack (from ``devtools.harness``) read into a frozen ``PipelineSpec``
    preflight.py       what AWS would refuse at deploy time, checked on the declared stack before a run
    pipeline.py        ``LocalPipeline``: preflight, then provision, deliver, collect on one emulator
    provision.py       the declared resources created on moto; one Lambda-like image per stage
    uploads.py         the input files, uploaded under the raw bucket's input prefix
    delivery.py        S3 events to the stages with Lambda's asynchronous semantics (retries, failure queue)
    collect.py         what the chain left (objects, reports, quarantine, queues, database) as a RunResult
    results.py         ``RunResult`` and its parts; report.py: its human summary
    emulator.py        moto as a local AWS with IAM enforced; _moto_internals.py: moto's private hooks
    lambda_runtime.py  interpreter, layout and warm containers; _bootstrap.py runs inside each container
    errors.py          ``LocalRunError``

Use it from Python as docs/local-run.md shows: ``prepare(stack)`` then ``LocalPipeline(...).run(files)``.
"""

from devtools.localrun.command import Prepared, prepare
from devtools.localrun.errors import LocalRunError
from devtools.localrun.pipeline import LocalPipeline
from devtools.localrun.results import RunResult

__all__ = ["LocalPipeline", "LocalRunError", "Prepared", "RunResult", "prepare"]
