"""Indexes for QIDO-RS study searches (imaging/dicomweb/qido.py); see bench/README.md for the figures.

* ``imaging_study_date_desc_qido`` on (study_date DESC, id DESC): QIDO answers
  newest first. The visibility filter (own institutions OR an active grant) is
  an OR, so the (institution, -study_date) index cannot serve it; with this one
  PostgreSQL walks studies newest first and stops at ``limit``, for date
  ranges and for any search whose matches are not rare.
* ``imaging_patient_name_trgm`` (PostgreSQL only): a pg_trgm GIN index on
  Patient.name_search. PatientName matching looks at each of the three
  component groups (``…=…=홍^길동``), a regular expression a B-tree cannot
  serve; trigrams let a selective name skip the patient table scan.

Written as SQL run per database vendor rather than Meta.indexes, because a
trigram index and the extension exist only on PostgreSQL. If the database user
may not create the pg_trgm extension, the trigram index is left out (searches
stay correct, only slower) and a warning says so.
"""

from __future__ import annotations

import logging

from django.db import migrations, transaction

logger = logging.getLogger(__name__)

DATE_INDEX = "imaging_study_date_desc_qido"
NAME_INDEX = "imaging_patient_name_trgm"


def create(apps, schema_editor):
    connection = schema_editor.connection
    with connection.cursor() as cursor:
        cursor.execute(f"CREATE INDEX IF NOT EXISTS {DATE_INDEX} ON imaging_study (study_date DESC, id DESC)")
    if connection.vendor != "postgresql":
        return
    try:
        with transaction.atomic(using=connection.alias), connection.cursor() as cursor:
            cursor.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
            cursor.execute(
                f"CREATE INDEX IF NOT EXISTS {NAME_INDEX} ON imaging_patient USING gin (name_search gin_trgm_ops)"
            )
    except Exception as exc:  # noqa: BLE001  (no extension privilege: searches work without the index)
        logger.warning("pg_trgm is not available (%s); patient-name searches will scan the patient table", exc)


def drop(apps, schema_editor):
    with schema_editor.connection.cursor() as cursor:
        cursor.execute(f"DROP INDEX IF EXISTS {DATE_INDEX}")
        cursor.execute(f"DROP INDEX IF EXISTS {NAME_INDEX}")


class Migration(migrations.Migration):
    dependencies = [("imaging", "0001_initial")]

    operations = [migrations.RunPython(create, drop, elidable=False)]
