"""The pipeline's data plane: three Lambda handlers shipped as one code archive.

Entry points: ``handlers.ingestion.handler``, ``handlers.processing.handler``,
``handlers.analytics.handler``. Everything here imports only the standard library, boto3/botocore
(present in the Lambda runtime) and the shared layer's packages; only ``handlers.analytics`` (through
``handlers.database``) imports SQLAlchemy, so the other two stages keep a small cold start.
"""
