"""The Flame prompt dialog: a frame from the engine; click = object point, right-click (or Alt+click)
= background point, Shift+drag = box. Standard library + PySide (as shipped in Flame) only.

:class:`PromptModel` holds the logic (widget pixels → plate pixels, the prompt list) and is tested
without Qt; :func:`collect_prompts` is the thin Qt shell around it.
"""


class PromptModel(object):
    """Prompts for one object on one frame, in plate pixels (top-left origin)."""

    def __init__(self, plate_width, plate_height, frame, first, last, name="matte"):
        self.plate_width = int(plate_width)
        self.plate_height = int(plate_height)
        self.first = int(first)
        self.last = int(last)
        self.frame = min(max(int(frame), self.first), self.last)
        self.name = name
        self.shown_width = self.plate_width  # the width the frame is drawn at
        self.points = []
        self.box = None

    @property
    def scale(self):
        return float(self.plate_width) / max(1, self.shown_width)

    def to_plate(self, wx, wy):
        s = self.scale
        x = min(max(wx * s, 0.0), self.plate_width - 0.01)
        y = min(max(wy * s, 0.0), self.plate_height - 0.01)
        return x, y

    def click(self, wx, wy, background=False):
        x, y = self.to_plate(wx, wy)
        self.points.append((x, y, 0 if background else 1))

    def drag(self, wx0, wy0, wx1, wy1):
        x0, y0 = self.to_plate(wx0, wy0)
        x1, y1 = self.to_plate(wx1, wy1)
        self.box = (min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1))

    def set_frame(self, frame):
        frame = min(max(int(frame), self.first), self.last)
        if frame != self.frame:
            self.frame = frame
            self.points = []  # prompts belong to one frame
            self.box = None

    def clear(self):
        self.points = []
        self.box = None

    def ready(self):
        return any(p[2] == 1 for p in self.points) or self.box is not None

    def result(self):
        return [{"object": self.name or "matte", "frame": self.frame, "points": list(self.points), "box": self.box}]


def _qt():
    try:
        from PySide6 import QtCore, QtGui, QtWidgets  # Flame 2025+
    except ImportError:
        from PySide2 import QtCore, QtGui, QtWidgets  # earlier Flame
    return QtCore, QtGui, QtWidgets


def collect_prompts(client, session, source, parent=None):  # pragma: no cover - needs Qt and a display
    """Show the dialog (modal); returns the prompts, or None when the artist cancels."""
    QtCore, QtGui, QtWidgets = _qt()
    lo, hi = session["range"]
    model = PromptModel(session["width"], session["height"], lo, lo, hi, name="matte")
    sid = session["session"]

    dialog = QtWidgets.QDialog(parent)
    dialog.setWindowTitle("Ultimate Rotoscopy: %s" % source.get("shot", ""))
    layout = QtWidgets.QVBoxLayout(dialog)
    image = QtWidgets.QLabel()
    image.setAlignment(QtCore.Qt.AlignLeft | QtCore.Qt.AlignTop)
    layout.addWidget(image)
    row = QtWidgets.QHBoxLayout()
    frame = QtWidgets.QSpinBox()
    frame.setRange(lo, hi)
    name = QtWidgets.QLineEdit("matte")
    clear = QtWidgets.QPushButton("Clear")
    row.addWidget(QtWidgets.QLabel("frame"))
    row.addWidget(frame)
    row.addWidget(QtWidgets.QLabel("object"))
    row.addWidget(name)
    row.addWidget(clear)
    layout.addLayout(row)
    layout.addWidget(QtWidgets.QLabel("click: object   right-click / Alt+click: background   Shift+drag: box"))
    buttons = QtWidgets.QDialogButtonBox(QtWidgets.QDialogButtonBox.Ok | QtWidgets.QDialogButtonBox.Cancel)
    layout.addWidget(buttons)
    state = {"pixmap": None, "press": None}

    def redraw():
        png = client.preview(sid, model.frame, max_size=1280)
        pix = QtGui.QPixmap()
        pix.loadFromData(png)
        model.shown_width = pix.width()
        painter = QtGui.QPainter(pix)
        for x, y, label in model.points:
            painter.setPen(QtGui.QColor(60, 220, 60) if label else QtGui.QColor(230, 60, 60))
            wx, wy = x / model.scale, y / model.scale
            painter.drawEllipse(QtCore.QPointF(wx, wy), 5, 5)
        if model.box:
            x0, y0, x1, y1 = (v / model.scale for v in model.box)
            painter.setPen(QtGui.QColor(240, 200, 40))
            painter.drawRect(QtCore.QRectF(x0, y0, x1 - x0, y1 - y0))
        painter.end()
        image.setPixmap(pix)

    def pressed(event):
        state["press"] = (event.position().x(), event.position().y()) if hasattr(event, "position") else (event.x(), event.y())

    def released(event):
        pos = (event.position().x(), event.position().y()) if hasattr(event, "position") else (event.x(), event.y())
        start = state["press"] or pos
        mods = event.modifiers()
        if mods & QtCore.Qt.ShiftModifier:
            model.drag(start[0], start[1], pos[0], pos[1])
        else:
            background = event.button() == QtCore.Qt.RightButton or bool(mods & QtCore.Qt.AltModifier)
            model.click(pos[0], pos[1], background=background)
        redraw()

    image.mousePressEvent = pressed
    image.mouseReleaseEvent = released
    frame.valueChanged.connect(lambda v: (model.set_frame(v), redraw()))
    name.textChanged.connect(lambda t: setattr(model, "name", t.strip()))
    clear.clicked.connect(lambda: (model.clear(), redraw()))
    buttons.accepted.connect(dialog.accept)
    buttons.rejected.connect(dialog.reject)
    redraw()
    run = dialog.exec() if hasattr(dialog, "exec") else dialog.exec_()
    if not run:
        return None
    if not model.ready():
        return None
    return model.result()
