"""Frame readers: still images (:mod:`.image`), image sequences (:mod:`.sequence`) and movies
(:mod:`.video`).

Every reader returns float32 ``(H, W, C)`` pixels of the display window, top-left origin, in
the plate's own colourspace, and raises a :class:`engine.errors.MediaError` subclass naming the
file (and frame) when something cannot be read. Importing this package is light: numpy and the
image libraries load with the submodules.
"""
