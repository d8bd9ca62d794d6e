"""Qt classes for the panel: through python_qt_binding when it is there (inside rqt, which
chose the binding), else PyQt5 (the wheels' environment). pyqtgraph uses the binding already
imported."""
from __future__ import annotations

try:
    from python_qt_binding.QtCore import Qt, QTimer  # noqa: F401
    from python_qt_binding.QtGui import QColor, QFont, QTransform  # noqa: F401
    from python_qt_binding.QtWidgets import (  # noqa: F401
        QApplication, QComboBox, QDoubleSpinBox, QGraphicsItem, QGridLayout, QGroupBox,
        QHBoxLayout,
        QHeaderView, QLabel, QLineEdit, QMessageBox, QPlainTextEdit, QPushButton, QSizePolicy,
        QSplitter, QTableWidget, QTableWidgetItem, QVBoxLayout, QWidget)
    BINDING = "python_qt_binding"
except ImportError:
    from PyQt5.QtCore import Qt, QTimer  # noqa: F401
    from PyQt5.QtGui import QColor, QFont, QTransform  # noqa: F401
    from PyQt5.QtWidgets import (  # noqa: F401
        QApplication, QComboBox, QDoubleSpinBox, QGraphicsItem, QGridLayout, QGroupBox,
        QHBoxLayout,
        QHeaderView, QLabel, QLineEdit, QMessageBox, QPlainTextEdit, QPushButton, QSizePolicy,
        QSplitter, QTableWidget, QTableWidgetItem, QVBoxLayout, QWidget)
    BINDING = "PyQt5"

import pyqtgraph  # noqa: E402  (after the binding: pyqtgraph follows it)

pyqtgraph.setConfigOptions(antialias=False, background="w", foreground="k")
