# Ultimate Rotoscopy for DaVinci Resolve / Fusion: one menu entry (written by `roto install-host resolve`).
import os
import sys

LIB = "__ROTO_LIB__"
for _p in (LIB, os.path.join(LIB, "..", "common")):
    if os.path.isdir(_p) and _p not in sys.path:
        sys.path.insert(0, os.path.normpath(_p))

import roto_resolve  # noqa: E402

roto_resolve.main("__ROTO_ACTION__", globals())
