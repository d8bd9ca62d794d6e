"""The operator panel (rqt plugin and `biosig_ros_panel` window): ROS-free model and buffers
(model.py, actions.py), Qt widgets (qt.py, plots.py, widget.py). The ROS side lives in
biosig_ros/ros/panel_adapter.py; the entry points in biosig_ros/nodes/panel_app.py."""
