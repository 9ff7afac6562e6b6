"""`DataPipeline`: the whole pipeline of one stack, declared from its validated config and the stage table.

Three buckets (raw -> processed -> analytics), the shared layer, one `PipelineStage` per row of the stage
table (`components.stage_table`), one notification per triggering bucket, the database secret and schema
migration when the stack has a database, and the alarms and dashboard. The chain is checked for loops before
anything is declared.

Existing stacks declared these components at the stack's root, before `DataPipeline` existed: each one carries
the alias `Alias(parent=ROOT_STACK_RESOURCE)`, and its children inherit it, so every resource's old URN is an
alias of its new one and `pulumi up` moves the resources under `DataPipeline` instead of replacing them
(tests/components/test_components_urns.py checks it against the URNs the old program declared).

One job per module:

- `resources`: `DataPipeline` and its args; the stages, notifications, migration and alarms;
- `storage`: the buckets and the suffix they share;
- `vpc`: the VPC the stack creates, the IDs looked up, the service endpoints;
- `database`: the database secret or the managed instance, and what names the database to migrate;
- `options`: the root aliases of existing stacks' components, and the secrecy of `--secret` keys.
"""

from components.pipeline.resources import DataPipeline, DataPipelineArgs

__all__ = ["DataPipeline", "DataPipelineArgs"]
