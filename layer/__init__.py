"""The shared Lambda layer: its requirements (``layer/requirements.txt``) and its build (``layer.build``)."""
