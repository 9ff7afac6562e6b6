"""`SharedLayer`: the Lambda layer every stage loads (handlers' third-party dependencies)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pulumi
from pulumi_aws import lambda_

from components.component import Component, Opts


@dataclass(frozen=True)
class SharedLayerArgs:
    """Inputs of a `SharedLayer`."""

    layer_name: str
    """The physical layer name."""

    archive: Path
    """The layer zip (python/ at its root); must exist."""

    runtime: str
    """The one runtime the functions use."""

    architecture: str
    """The one architecture the functions use."""


class SharedLayer(Component):
    """One `lambda_.LayerVersion`; a changed zip publishes a new version."""

    TYPE = "data-pipeline:layer:SharedLayer"

    layer_version: lambda_.LayerVersion
    arn: pulumi.Output[str]

    def __init__(self, name: str, args: SharedLayerArgs, opts: Opts = None) -> None:
        super().__init__(name, opts)
        self.layer_version = lambda_.LayerVersion(
            f"{name}-version",
            layer_name=args.layer_name,
            description="Third-party dependencies of the data-pipeline handlers",
            code=pulumi.FileArchive(str(args.archive)),
            compatible_runtimes=[args.runtime],
            compatible_architectures=[args.architecture],
            opts=self.child_opts,
        )
        self.arn = self.layer_version.arn
        self.register_outputs({"arn": self.arn})
