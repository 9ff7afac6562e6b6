"""The pipeline's data plane: three Lambda handlers shipped as one code archive.

Entry points: ``handlers.ingestion_handler.handler``, ``handlers.processing_handler.handler``,
``handlers.analytics_handler.handler`` (the stage table, ``components/stage_table.py``, names them). The
cores are modules of one job each (docs/architecture.md, "The handlers"); the names they share with the
program and the tools are in ``handlers.contract``. Everything here imports only the standard library,
boto3/botocore (present in the Lambda runtime) and the shared layer's packages; only
``handlers.analytics_handler`` (through ``handlers.database``) imports SQLAlchemy, and only ingestion
imports jsonschema-rs, so the other stages keep a small cold start.
"""
