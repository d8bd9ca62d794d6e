"""ROS-free parts of the live views: decimating stream buffers, the skeleton of a biorbd model,
JSON framing for browsers and the HTTP / Server-Sent Events server with the page's assets."""
