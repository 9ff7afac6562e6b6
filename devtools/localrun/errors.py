"""The local run's own error: the declared stack cannot run here."""


class LocalRunError(RuntimeError):
    """The declared stack cannot run (what AWS would refuse at deploy time, or the local set-up failed)."""
