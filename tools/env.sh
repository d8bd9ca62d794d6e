# Source me: activates the venv and the colcon install space of biosig_ros.
_biosig_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck disable=SC1091
. "$_biosig_root/.venv/bin/activate"
export AMENT_PREFIX_PATH="$_biosig_root/.venv${AMENT_PREFIX_PATH:+:$AMENT_PREFIX_PATH}"
# shellcheck disable=SC1091
. "$_biosig_root/install/setup.bash"
# The package's executables and tools (bio_check, bio_convert, assist_enable, the nodes) as
# commands, as in a pip install; `ros2 run biosig_ros NAME` runs the same files.
case ":$PATH:" in
  *":$_biosig_root/install/biosig_ros/lib/biosig_ros:"*) ;;
  *) export PATH="$_biosig_root/install/biosig_ros/lib/biosig_ros:$PATH" ;;
esac
unset _biosig_root
