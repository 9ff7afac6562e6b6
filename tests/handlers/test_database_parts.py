"""Revision 0003 on a database at 0002 that holds contributions: each becomes part 0 of 1, and the
contributions' source key holds the part."""

from __future__ import annotations

import pytest
from handler_support import at_revision
from sqlalchemy import create_engine, text
from sqlalchemy.exc import IntegrityError

from handlers import database

SECOND_PART = (
    "INSERT INTO pipeline_contributions (setting_key, rel_key, sequence_key, rel, sequencer, object_key,"
    " content_sha256, groups, records, part) VALUES"
    " ('s', 'r', 'q', 'x', '0065A1', 'aggregates/x/0065A1.p00001.json', 'h', 1, 1, 1)"
)


def test_revision_0003_makes_every_contribution_part_0_of_1_and_keys_sources_by_part(
    empty_database: str,
) -> None:
    # GIVEN a database at revision 0002 holding one contribution
    with at_revision(empty_database, "0002") as conn:
        conn.execute(
            text(
                "INSERT INTO pipeline_contributions (setting_key, rel_key, sequence_key, rel, sequencer,"
                " object_key, content_sha256, groups, records) VALUES"
                " ('s', 'r', 'q', 'x', '0065A1', 'aggregates/x/0065A1.json', 'h', 1, 1)"
            )
        )
    # WHEN it is migrated to the head
    assert database.migrate(empty_database) == database.HEAD
    # THEN the contribution is part 0 of 1, and another part of the same version can be stored beside it
    engine = create_engine(empty_database)
    with engine.begin() as conn:
        assert conn.execute(text("SELECT part, parts FROM pipeline_contributions")).all() == [(0, 1)]
        conn.execute(text(SECOND_PART))
        assert conn.execute(text("SELECT COUNT(*) FROM pipeline_contributions")).scalar() == 2
    # AND the same part of the same version cannot be stored twice
    with pytest.raises(IntegrityError), engine.begin() as conn:
        conn.execute(text(SECOND_PART))
    engine.dispose()
