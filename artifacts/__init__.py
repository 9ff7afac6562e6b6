"""Reproducible build artefacts: the function code archive and the zip writer the layer shares."""
