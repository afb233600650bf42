"""clinicnet.lib.startup: long-running processes load their views, then freeze start-up objects."""

from __future__ import annotations

import gc
import sys

from clinicnet.lib.startup import freeze_start_up_objects


def test_views_are_loaded_and_start_up_objects_frozen() -> None:
    freeze_start_up_objects()
    assert gc.get_freeze_count() > 10_000  # Django and the apps: far more than a handful
    assert "imaging.dicomweb.wado" in sys.modules  # a view module the URLconf names
    assert "consult.views" in sys.modules
