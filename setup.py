"""pip-installable ROS-free core of biosig_ros, for biosiglive users without ROS 2.

    pip install .            -> biosig_ros.io (.bio/.c3d files, replay), biosig_ros.devices
                                (Trigno protocol and simulator, Vicon adapter and wire-protocol
                                simulator), biosig_ros.processing
                                (EMG filters, MVC), biosig_ros.bridge (legacy TCP server, .bio
                                recorder, converter), biosig_ros.tools; commands bio_convert,
                                trigno_sim, vicon_wire_sim, bio_check
    pip install ".[ik]"      -> + biorbd: inverse kinematics (bio_check's IK residuals); biorbd
                                has no aarch64 wheel, hence an extra
    pip install ".[mcap]"    -> + MCAP files (replay of .mcap, bio_convert to .mcap)
    pip install ".[all]"     -> all of the above

colcon ignores this file: package.xml declares ament_cmake, which builds the messages and
installs the whole package (nodes included) in a ROS 2 workspace.
"""
from glob import glob

from setuptools import find_packages, setup

MCAP = ["mcap", "mcap-ros2-support"]
ROS_ONLY = ["biosig_ros.ros", "biosig_ros.ros.*", "biosig_ros.nodes", "biosig_ros.nodes.*",
            "biosig_ros.panel", "biosig_ros.panel.*"]  # the panel: Qt, and useless without ROS

setup(
    name="biosig-ros-core",
    version="0.1.0",
    description="ROS-free core of biosig_ros: EMG processing, biorbd IK, Trigno/Vicon I/O, "
                "biosiglive-compatible .bio files and TCP server",
    license="MIT",
    python_requires=">=3.10",
    packages=find_packages(include=["biosig_ros", "biosig_ros.*"], exclude=ROS_ONLY),
    # The live view's page and scripts; the standard message types the core writes to MCAP.
    package_data={"biosig_ros.viewers": ["static/*"],
                  "biosig_ros.bridge": ["interfaces/*/*.msg"]},
    # biosig_ros's messages where the MCAP schemas look them up (<prefix>/share/<pkg>/msg).
    data_files=[("share/biosig_ros/msg", sorted(glob("msg/*.msg")))],
    install_requires=["numpy", "scipy", "numba", "PyYAML", "ezc3d"],
    extras_require={"ik": ["biorbd"], "mcap": MCAP, "all": ["biorbd", *MCAP]},
    entry_points={"console_scripts": [
        "trigno_sim=biosig_ros.devices.trigno_simulator:main",
        "vicon_wire_sim=biosig_ros.devices.vicon_wire.cli:main",
        "bio_convert=biosig_ros.bridge.bio_convert:main",
        "bio_check=biosig_ros.tools.bio_check:main",
    ]},
)
