# Source me: activates the venv and the colcon install space of biosig_ros.
_biosig_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck disable=SC1091
. "$_biosig_root/.venv/bin/activate"
export AMENT_PREFIX_PATH="$_biosig_root/.venv${AMENT_PREFIX_PATH:+:$AMENT_PREFIX_PATH}"
# shellcheck disable=SC1091
. "$_biosig_root/install/setup.bash"
unset _biosig_root
