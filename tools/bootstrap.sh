#!/usr/bin/env bash
# Set up everything biosig_ros needs on a Debian/Ubuntu machine with Python 3.11 or 3.12:
# a virtual environment with pinned ROS 2 (kilted) wheels, the patch the wheels need, and a
# colcon build of the package (messages + Python). Idempotent: a second run takes seconds.
# Usage: tools/bootstrap.sh            (prints where things are; source tools/env.sh afterwards)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# The venv lives outside the source tree: CMake refuses exported include dirs (numpy's) that
# sit inside the package's source directory, and the repository root is the package.
PYTHON_TAG_CMD='import sys; print(f"py{sys.version_info[0]}.{sys.version_info[1]}")'
cd "$ROOT"

log() { printf '[bootstrap] %s\n' "$*" >&2; }

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

pick_python() {
  for candidate in python3.11 python3.12 python3; do
    if command -v "$candidate" >/dev/null 2>&1 &&
       "$candidate" -c 'import sys; sys.exit(0 if sys.version_info[:2] in ((3, 11), (3, 12)) else 1)'; then
      echo "$candidate"; return 0
    fi
  done
  log "error: the ROS 2 wheels exist for Python 3.11 and 3.12 only; install one of them"; exit 1
}

ensure_system_tools() {
  # cmake and a C/C++ compiler build the message type support; venv/ensurepip make the venv.
  local missing=()
  command -v cmake >/dev/null 2>&1 || missing+=(cmake)
  command -v g++ >/dev/null 2>&1 || missing+=(g++)
  command -v make >/dev/null 2>&1 || missing+=(make)
  "$PYTHON" -c 'import ensurepip, venv' >/dev/null 2>&1 || missing+=("$(basename "$PYTHON")-venv")
  if [ "${#missing[@]}" -gt 0 ]; then
    log "installing system packages: ${missing[*]}"
    as_root apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  fi
}

ensure_venv() {
  if [ ! -x "$VENV/bin/python" ]; then
    mkdir -p "$(dirname "$VENV")"
    log "creating $VENV with $PYTHON"
    "$PYTHON" -m venv "$VENV"
  fi
  local stamp="$VENV/.requirements.sha256" want
  want="$(sha256sum requirements.txt | cut -d' ' -f1)"
  # flock: checkouts sharing this venv (worktrees, parallel CI runs) must not pip at once.
  (
    flock 8
    if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
      log "installing pinned Python dependencies (ROS 2 wheels, numpy, scipy, biorbd, ezc3d, ...)"
      "$VENV/bin/python" -m pip install -q --upgrade pip >/dev/null
      "$VENV/bin/python" -m pip install -q -r requirements.txt
      echo "$want" > "$stamp"
      rm -f "$VENV/.cmake-patched"
    fi
  ) 8>"$VENV.pip.lock"
}

patch_wheel_cmake_paths() {
  # The wheels' exported CMake files name the include and site-packages dirs of the machine
  # that built them; point them at this interpreter and venv (see shared recipe).
  [ -f "$VENV/.cmake-patched" ] && return 0
  local include site
  include="$("$VENV/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["include"])')"
  site="$("$VENV/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
  { grep -rlZ '/opt/python/cp3' "$VENV/share" --include='*.cmake' 2>/dev/null || true; } |
    xargs -0 -r sed -i -E \
      -e "s#/opt/python/cp3[0-9]+-cp3[0-9]+/include/python3\.[0-9]+#${include}#g" \
      -e "s#/opt/python/cp3[0-9]+-cp3[0-9]+/lib/python3\.[0-9]+/site-packages#${site}#g"
  touch "$VENV/.cmake-patched"
}

build_package() {
  # Symlinked install: edits to Python files apply without a rebuild; new files need one.
  # flock: concurrent test runs must not build into the same directories at once.
  export AMENT_PREFIX_PATH="$VENV" CMAKE_PREFIX_PATH="$VENV"
  (
    flock 9
    # file(GLOB) in CMakeLists.txt is evaluated at configure time: reconfigure when the set of
    # installed files (executables, messages, launch, config) changes.
    local layout force=() extra_paths=()
    # tf2_msgs (for /tf) has no wheel: build the one-message copy in tools/tf2_msgs beside the
    # package, unless the environment has its own (a ROS 2 install). It is named explicitly:
    # colcon does not look inside a package (the repository root), and tools/ is COLCON_IGNOREd.
    if [ -d "$ROOT/install/tf2_msgs" ] || ! "$VENV/bin/python" -c 'import tf2_msgs' 2>/dev/null; then
      extra_paths=("$ROOT/tools/tf2_msgs")
    fi
    layout="$(cd "$ROOT" && ls scripts msg srv launch config data 2>/dev/null | sha256sum | cut -d' ' -f1)"
    if [ "$(cat "$ROOT/build/.layout.sha256" 2>/dev/null)" != "$layout" ]; then
      force=(--cmake-force-configure)
    fi
    "$VENV/bin/colcon" --log-base "$ROOT/log" build --base-paths "$ROOT" "${extra_paths[@]}" \
      --build-base "$ROOT/build" --install-base "$ROOT/install" --symlink-install \
      --event-handlers console_cohesion- status- summary- terminal_title- \
      "${force[@]}" --cmake-args -DPython3_EXECUTABLE="$VENV/bin/python" -DBUILD_TESTING=OFF \
      >"$ROOT/log/bootstrap-build.log" 2>&1 ||
      { cat "$ROOT/log/bootstrap-build.log" >&2; log "error: colcon build failed (log above)"; exit 1; }
    echo "$layout" > "$ROOT/build/.layout.sha256"
  ) 9>"$VENV/.build.lock"
}

ensure_browser() {
  # Headless Chromium (Debian's package) for the live view's browser tests, benchmark and
  # screenshots; nothing else needs it. BIOSIG_ROS_NO_BROWSER=1 skips it.
  [ "${BIOSIG_ROS_NO_BROWSER:-0}" = 1 ] && return 0
  command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 && return 0
  if ! command -v apt-get >/dev/null 2>&1; then
    log "warning: no apt-get: install Chromium yourself for the live view's browser tests"
    return 0
  fi
  log "installing chromium (headless browser for the live view's tests)"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
}

ensure_qt_libraries() {
  # The operator panel's Qt (PyQt5-Qt5 wheel) loads the system's GL, font, D-Bus and X
  # libraries: the off-screen platform (tests, screenshots) and the X11 one (a desktop).
  # Installed from Debian only when one of them is missing.
  local qt="$VENV/lib/python$("$VENV/bin/python" -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")')/site-packages/PyQt5/Qt5"
  [ -d "$qt" ] || return 0
  local missing
  missing="$(ldd "$qt/plugins/platforms/libqoffscreen.so" "$qt/plugins/platforms/libqxcb.so" \
             "$qt/lib/libQt5XcbQpa.so.5" "$qt/lib/libQt5Widgets.so.5" 2>&1 | grep "not found" || true)"
  if [ -z "$missing" ] && [ -n "$(fc-list 2>/dev/null || true)" ]; then
    return 0
  fi
  if ! command -v apt-get >/dev/null 2>&1; then
    log "warning: no apt-get: install Qt's X11, GL and font libraries for the operator panel"
    return 0
  fi
  log "installing Qt's system libraries (operator panel)"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libgl1 libglib2.0-0 \
    libfontconfig1 libfreetype6 libdbus-1-3 libx11-6 libxext6 libxcb1 libxkbcommon0 \
    libxkbcommon-x11-0 libxcb-icccm4 libxcb-image0 libxcb-keysyms1 libxcb-randr0 \
    libxcb-render-util0 libxcb-shape0 libxcb-xfixes0 libxcb-xinerama0 libxcb-xkb1 \
    fonts-dejavu-core >/dev/null
}

compile_kernels() {
  # numba compiles the EMG kernels on first use (~5 s) and caches them beside the module it
  # imported: here, so that the first EMG node does not start seconds late. Both the source tree
  # (python -m from the repository) and the install space (installed executables) are warmed,
  # only when the kernels or the dependencies changed.
  local stamp="$ROOT/build/.kernels.sha256" want
  want="$(cat "$ROOT"/biosig_ros/processing/emg_kernels.py "$VENV/.requirements.sha256" |
          sha256sum | cut -d' ' -f1)"
  [ "$(cat "$stamp" 2>/dev/null)" = "$want" ] && return 0
  log "compiling the EMG kernels (numba cache)"
  local warm='from biosig_ros.processing.emg_kernels import warm_up; warm_up()'
  (cd "$ROOT" && "$VENV/bin/python" -c "$warm") &&
    (set +u && . "$ROOT/tools/env.sh" && cd / && python -c "$warm") ||
    { log "error: the EMG kernels did not compile"; exit 1; }
  echo "$want" > "$stamp"
}

VICON_SDK_SDIST="pyvicon-datastream==0.2.4"
VICON_SDK_SDIST_SHA256="ee65a26b53f96f65b65f795c9843116c49347e81c80f88fca14cfe3d3a2622ed"
VICON_SDK_SOURCE_DIR="lib_src/vicondatastream-1.11.0"

ensure_boost() {
  # Debian's Boost for Vicon's DataStream SDK client (the sdist's own build downloads Boost).
  local missing=() package
  for package in libboost-system-dev libboost-thread-dev libboost-chrono-dev; do
    dpkg -s "$package" >/dev/null 2>&1 || missing+=("$package")
  done
  [ "${#missing[@]}" -eq 0 ] && return 0
  command -v apt-get >/dev/null 2>&1 || return 1
  log "installing system packages: ${missing[*]}"
  as_root apt-get update -qq && \
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
}

build_vicon_sdk() {
  # Vicon's DataStream SDK client library (C API included) and Vicon's sample client, built
  # once from Vicon's MIT-licensed source in the registry's pyvicon-datastream sdist with
  # tools/vicon_sdk/ (CMake file and the project's fix), into $BIOSIG_ROS_VICON_SDK (default:
  # the cache) as lib/ and bin/. The `sdk` backend of the Vicon node loads it. A failed build
  # only warns: the simulator backends do not need it. BIOSIG_ROS_NO_VICON_SDK=1 skips it.
  # Checkouts share the cache: each version of tools/vicon_sdk/ is built once under builds/,
  # and lib/, bin/ get that version's files (switching branches costs a copy, not a build).
  [ "${BIOSIG_ROS_NO_VICON_SDK:-0}" = 1 ] && return 0
  local dir="${BIOSIG_ROS_VICON_SDK:-$HOME/.cache/biosig_ros/vicon-sdk-1.11.0}" recipe
  recipe="$(cat "$ROOT"/tools/vicon_sdk/* <(echo "$VICON_SDK_SDIST_SHA256") |
            sha256sum | cut -c1-16)"
  local build="$dir/builds/$recipe" files=(lib/libViconDataStreamSDK_C.so bin/ViconDataStreamSDK_CPPTest)
  vicon_sdk_current() {
    [ -f "$build/.done" ] || return 1
    local f; for f in "${files[@]}"; do cmp -s "$build/$f" "$dir/$f" || return 1; done
  }
  vicon_sdk_current && return 0
  mkdir -p "$dir"
  # flock: checkouts share the build; the second waits and then finds it done.
  (
    flock 7
    vicon_sdk_warn() { log "warning: Vicon DataStream SDK not built ($1); the Vicon node's sdk backend will be unavailable, the simulator backends still work"; exit 0; }
    if [ ! -f "$build/.done" ]; then
      ensure_boost || vicon_sdk_warn "cannot install libboost-system-dev libboost-thread-dev libboost-chrono-dev"
      local started=$SECONDS sdist
      rm -rf "$build" && mkdir -p "$build/download" "$build/cmake" "$build/lib" "$build/bin"
      log "downloading Vicon's DataStream SDK source ($VICON_SDK_SDIST, sdist)"
      "$VENV/bin/python" -m pip download -q --no-deps "$VICON_SDK_SDIST" -d "$build/download" \
        >"$build/build.log" 2>&1 || vicon_sdk_warn "pip download failed, see $build/build.log"
      sdist="$(ls "$build"/download/pyvicon_datastream-*.tar.gz 2>/dev/null | head -1)"
      [ -n "$sdist" ] || vicon_sdk_warn "the registry gave no sdist, see $build/build.log"
      [ "$(sha256sum "$sdist" | cut -d' ' -f1)" = "$VICON_SDK_SDIST_SHA256" ] ||
        vicon_sdk_warn "$sdist has an unexpected sha256"
      tar -xzf "$sdist" -C "$build/download" &&
        mv "$build/download/$(basename "$sdist" .tar.gz)/$VICON_SDK_SOURCE_DIR" "$build/src" ||
        vicon_sdk_warn "$sdist holds no $VICON_SDK_SOURCE_DIR"
      rm -rf "$build/download"
      log "building Vicon's DataStream SDK client (a few minutes, once; log: $build/build.log)"
      { cmake -S "$ROOT/tools/vicon_sdk" -B "$build/cmake" -DVICON_SDK_SOURCE="$build/src" \
          -DCMAKE_BUILD_TYPE=Release && make -C "$build/cmake" -j2; } >>"$build/build.log" 2>&1 ||
        vicon_sdk_warn "the build failed, see $build/build.log"
      local f
      for f in "${files[@]}"; do cp "$build/cmake/$(basename "$f")" "$build/$f"; done
      touch "$build/.done"
      log "Vicon DataStream SDK built in $((SECONDS - started)) s"
    fi
    # Copy, then rename into place: a process of another checkout may have the old library
    # loaded (overwriting a mapped file in place crashes it; a rename does not).
    mkdir -p "$dir/lib" "$dir/bin"
    local f
    for f in "${files[@]}"; do
      cp "$build/$f" "$dir/$f.new" && mv -f "$dir/$f.new" "$dir/$f" ||
        vicon_sdk_warn "cannot install $dir/$f"
    done
    log "Vicon DataStream SDK ($recipe): $dir/lib, $dir/bin"
  ) 7>"$dir.lock"
}

PYTHON="$(pick_python)"
VENV="${BIOSIG_ROS_VENV:-$HOME/.cache/biosig_ros/venv-$("$PYTHON" -c "$PYTHON_TAG_CMD")}"
ensure_system_tools
ensure_browser
ensure_venv
ensure_qt_libraries
patch_wheel_cmake_paths
mkdir -p "$ROOT/log"
build_package
ln -sfn "$VENV" "$ROOT/.venv"   # a stable name for tools/env.sh and editors
compile_kernels
build_vicon_sdk
log "ready: source tools/env.sh to use the package in this shell"
