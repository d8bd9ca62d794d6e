"""The operator panel as an rqt plugin ("biosig_ros panel" in rqt's Plugins menu, or
`rqt --standalone biosig_ros.nodes.panel_plugin.PanelPlugin`); registered by plugin.xml,
exported from package.xml. rqt has initialised rclpy: the panel's node joins its context."""
from __future__ import annotations

from rqt_gui_py.plugin import Plugin

from biosig_ros.panel.model import PanelModel
from biosig_ros.panel.widget import PanelWidget
from biosig_ros.ros.panel_adapter import PanelAdapter


class PanelPlugin(Plugin):
    def __init__(self, context):
        super().__init__(context)
        self.setObjectName("BiosigRosPanel")
        serial = context.serial_number()
        self._adapter = PanelAdapter(PanelModel(), node_name=f"biosig_ros_panel_{serial}",
                                     context=context.node.context)
        self._widget = PanelWidget(self._adapter)
        if serial > 1:
            self._widget.setWindowTitle(f"{self._widget.windowTitle()} ({serial})")
        context.add_widget(self._widget)

    def shutdown_plugin(self):
        self._widget.close_panel()
        self._adapter.close()

    def save_settings(self, plugin_settings, instance_settings):
        if not self._widget.follow_graph:
            instance_settings.set_value("namespace", self._widget.namespace)

    def restore_settings(self, plugin_settings, instance_settings):
        namespace = instance_settings.value("namespace")
        if namespace:
            self._widget.set_namespace(str(namespace))
