"""The layer build's errors: each message says what failed, why, and what to do."""

from __future__ import annotations


class LayerBuildError(RuntimeError):
    """The layer could not be built; the message says what failed, why, and what to do."""


class LayerSpecError(LayerBuildError, ValueError):
    """A LayerSpec names a runtime, architecture or requirements file the build cannot serve."""


class PackageIndexError(LayerBuildError):
    """pip could not get the layer's wheels (index unreachable, or no wheel for the Lambda target)."""


class LayerContentError(LayerBuildError):
    """The installed layer is not what Lambda needs: wrong-architecture binaries, unpinned packages."""


class LayerTooLargeError(LayerBuildError):
    """The layer breaks one of Lambda's size limits."""
