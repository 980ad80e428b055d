# Ultimate Rotoscopy: Flame Python hooks (this folder on DL_PYTHON_HOOK_PATH). Never breaks Flame.
import os
import sys

_HERE = os.path.dirname(os.path.abspath(__file__))
for _p in (_HERE, os.path.normpath(os.path.join(_HERE, "..", "common"))):
    if os.path.isdir(_p) and _p not in sys.path:
        sys.path.insert(0, _p)


def get_media_panel_custom_ui_actions():
    try:
        import roto_flame

        return roto_flame.menu("media_panel")
    except Exception as exc:
        print("Ultimate Rotoscopy: media panel menu not installed: %s" % exc)
        return []


def get_batch_custom_ui_actions():
    try:
        import roto_flame

        return roto_flame.menu("batch")
    except Exception as exc:
        print("Ultimate Rotoscopy: batch menu not installed: %s" % exc)
        return []
