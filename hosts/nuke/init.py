# Ultimate Rotoscopy: Nuke startup. Adds the gizmo and helper folders of a checkout; never breaks Nuke.
import os

import nuke

try:
    for _d in list(nuke.pluginPath()):
        if os.path.isfile(os.path.join(_d, "roto_nuke.py")):
            for _sub in (os.path.join("..", "common"), os.path.join("..", "..", "gizmos")):
                _p = os.path.normpath(os.path.join(_d, _sub))
                if os.path.isdir(_p):  # a checkout (roto install-host nuke --link); a copy is flat
                    nuke.pluginAddPath(_p)
            break
except Exception as _exc:  # farm Nuke must still render
    print("Ultimate Rotoscopy: not initialised: %s" % _exc)
