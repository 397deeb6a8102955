# shellcheck shell=bash
# Shared setup for scripts/test and scripts/bench. Source it; it only defines
# variables and functions (nothing runs on load).
#
#   REPO                   the repository root (absolute)
#   banner TEXT            prints a step banner
#   die TEXT               prints an error and exits 1
#   ensure_system_packages [PKG...]
#                          installs the missing Debian packages the tests need (all of
#                          SYSTEM_PACKAGES, or the named ones) when root with apt-get, or
#                          names them and exits 1
#   setup_python_venv      creates/updates $REPO/.venv from scripts/requirements-test.txt
#                          and exports SCANBIND_PYTHON
#   export_tool_paths      exports PG_BIN_DIR, CHROMIUM, CHROMEDRIVER

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

banner() {
    printf '\n==== %s ====\n' "$*"
}

die() {
    printf 'error: %s\n' "$*" >&2
    exit 1
}

# The Debian packages the test suite needs. This is the one list; `package_present`
# says how each one is detected.
SYSTEM_PACKAGES=(
    dbus-daemon      # dbus-daemon, dbus-run-session: a private session bus
    dbus-bin         # dbus-send: bus probes
    gnome-keyring    # Secret Service for keyring tests
    libsecret-tools  # secret-tool: Secret Service smoke check
    openssl          # key generation and cross-checks
    python3-venv     # the venv holding the official Python SDK
    postgresql       # initdb/pg_ctl for throwaway databases
    chromium         # browser tests
    chromium-driver  # chromedriver for selenium
    zbar-tools       # zbarimg: decoding the QR codes we render
    systemd          # busctl (another app in the daemon tests), systemd-analyze, systemd-sysusers,
                     # systemd-tmpfiles, systemd-creds (the system-mode packaging test)
    passwd           # useradd, groupadd, usermod: the system-mode tests' users
    util-linux       # setpriv: the system-mode tests drop to those users; unshare, mount:
                     # polkitd with the test's actions and rules in its own mount namespace
    polkitd          # polkitd: the management interface's authorization (daemon/tests/manage.rs)
    dpkg-dev         # dpkg-shlibdeps: .deb dependencies
    binutils         # strip for the packages
    man-db           # man: rendering the packaged man pages
    gcc              # cc: the C library example
    pkgconf          # pkg-config: the C example against the installed package
    faketime         # libfaketime: the device clock skew cells of the reliability suite
    xvfb             # Xvfb: the window display agent's screenshot tests
    xdotool          # synthetic key presses for the window agent
    libgl1-mesa-dri  # Mesa's software OpenGL (swrast) under Xvfb
    libgl1           # the window agent's OpenGL (glow) and X11 libraries
    libglx-mesa0
    libegl1
    libegl-mesa0
    libxkbcommon-x11-0
    libx11-xcb1
    libxcursor1
    libxrandr2
    libxi6
)

# The Python interpreter the venv is made from: Debian's, the one python3-venv equips.
system_python() {
    if [[ -x /usr/bin/python3 ]]; then
        echo /usr/bin/python3
    else
        command -v python3 || true
    fi
}

# The newest PostgreSQL server bin dir (Debian keeps them under /usr/lib/postgresql/N/bin).
find_pg_bin_dir() {
    local dir
    if [[ -n "${PG_BIN_DIR:-}" && -x "${PG_BIN_DIR}/initdb" && -x "${PG_BIN_DIR}/pg_ctl" ]]; then
        echo "$PG_BIN_DIR"
        return 0
    fi
    dir="$(find /usr/lib/postgresql -mindepth 2 -maxdepth 2 -type d -name bin 2>/dev/null | sort -V | tail -n 1)"
    if [[ -n "$dir" && -x "$dir/initdb" && -x "$dir/pg_ctl" && -x "$dir/postgres" ]]; then
        echo "$dir"
        return 0
    fi
    if command -v initdb >/dev/null 2>&1 && command -v pg_ctl >/dev/null 2>&1; then
        dirname "$(command -v initdb)"
        return 0
    fi
    return 1
}

package_present() {
    case "$1" in
        dbus-daemon) command -v dbus-daemon >/dev/null && command -v dbus-run-session >/dev/null ;;
        dbus-bin) command -v dbus-send >/dev/null ;;
        gnome-keyring) command -v gnome-keyring-daemon >/dev/null ;;
        libsecret-tools) command -v secret-tool >/dev/null ;;
        openssl) command -v openssl >/dev/null ;;
        python3-venv)
            local py
            py="$(system_python)"
            [[ -n "$py" ]] && "$py" -c 'import venv, ensurepip, sys; sys.exit(0 if ensurepip.version() else 1)' >/dev/null 2>&1
            ;;
        postgresql) find_pg_bin_dir >/dev/null ;;
        chromium) [[ -x /usr/bin/chromium ]] ;;
        chromium-driver) [[ -x /usr/bin/chromedriver ]] ;;
        zbar-tools) command -v zbarimg >/dev/null ;;
        systemd) command -v busctl >/dev/null && command -v systemd-analyze >/dev/null && command -v systemd-sysusers >/dev/null && command -v systemd-tmpfiles >/dev/null && command -v systemd-creds >/dev/null ;;
        passwd) command -v useradd >/dev/null && command -v groupadd >/dev/null && command -v usermod >/dev/null ;;
        util-linux) command -v setpriv >/dev/null && command -v unshare >/dev/null && command -v mount >/dev/null ;;
        polkitd) [[ -x /usr/lib/polkit-1/polkitd ]] ;;
        dpkg-dev) command -v dpkg-shlibdeps >/dev/null ;;
        binutils) command -v strip >/dev/null ;;
        man-db) command -v man >/dev/null ;;
        gcc) command -v cc >/dev/null ;;
        pkgconf) command -v pkg-config >/dev/null ;;
        faketime) [[ -e "/usr/lib/$(uname -m)-linux-gnu/faketime/libfaketime.so.1" ]] ;;
        xvfb) command -v Xvfb >/dev/null ;;
        xdotool) command -v xdotool >/dev/null ;;
        libgl1-mesa-dri | libgl1 | libglx-mesa0 | libegl1 | libegl-mesa0 | libxkbcommon-x11-0 | libx11-xcb1 | libxcursor1 | libxrandr2 | libxi6)
            dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'
            ;;
        *) die "package_present: unknown package $1" ;;
    esac
}

missing_system_packages() {
    local pkg
    for pkg in "$@"; do
        package_present "$pkg" || printf '%s\n' "$pkg"
    done
}

# ensure_system_packages [PKG...]: the named packages from SYSTEM_PACKAGES, or all of them.
ensure_system_packages() {
    banner "system packages"
    local wanted=("$@")
    ((${#wanted[@]} > 0)) || wanted=("${SYSTEM_PACKAGES[@]}")
    local missing=()
    mapfile -t missing < <(missing_system_packages "${wanted[@]}")
    if ((${#missing[@]} == 0)); then
        echo "all present: ${wanted[*]}"
        return 0
    fi
    echo "missing: ${missing[*]}"
    if [[ "$(id -u)" -ne 0 ]] || ! command -v apt-get >/dev/null 2>&1; then
        {
            echo "Install these Debian packages, then rerun scripts/test:"
            echo "  sudo apt-get update && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends ${missing[*]}"
        } >&2
        exit 1
    fi
    apt-get update </dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}" </dev/null
    mapfile -t missing < <(missing_system_packages "${wanted[@]}")
    if ((${#missing[@]} != 0)); then
        die "still missing after apt-get install: ${missing[*]}"
    fi
}

setup_python_venv() {
    banner "python venv (.venv)"
    local venv="$REPO/.venv"
    local req="$REPO/scripts/requirements-test.txt"
    local stamp="$venv/.scanbind-requirements.sha256"
    local py want
    py="$(system_python)"
    [[ -n "$py" ]] || die "no python3 found (install python3-venv)"
    want="$( (sha256sum <"$req"; "$py" -c 'import sys; print(sys.version)') | sha256sum | cut -d' ' -f1)"
    if [[ -x "$venv/bin/python" && -f "$stamp" && "$(cat "$stamp")" == "$want" ]] &&
        "$venv/bin/python" -c 'import sys' >/dev/null 2>&1; then
        echo "up to date ($(cut -c1-12 <"$stamp"))"
    else
        # Remake the venv when it is broken or was made from another interpreter.
        if [[ "$("$venv/bin/python" -c 'import sys; print(sys.version)' 2>/dev/null)" != \
            "$("$py" -c 'import sys; print(sys.version)')" ]]; then
            rm -rf "$venv"
            "$py" -m venv "$venv"
        fi
        rm -f "$stamp"
        "$venv/bin/python" -m pip install --no-input --quiet --disable-pip-version-check -r "$req"
        echo "$want" >"$stamp"
        echo "installed from scripts/requirements-test.txt"
    fi
    export SCANBIND_PYTHON="$venv/bin/python"
    echo "SCANBIND_PYTHON=$SCANBIND_PYTHON"
}

export_tool_paths() {
    PG_BIN_DIR="$(find_pg_bin_dir)" || die "no PostgreSQL server binaries (initdb, pg_ctl) found"
    export PG_BIN_DIR
    export CHROMIUM="${CHROMIUM:-/usr/bin/chromium}"
    export CHROMEDRIVER="${CHROMEDRIVER:-/usr/bin/chromedriver}"
    echo "PG_BIN_DIR=$PG_BIN_DIR CHROMIUM=$CHROMIUM CHROMEDRIVER=$CHROMEDRIVER"
}
