#!/bin/sh
# Installs what gpt.c needs to build and test: the stb headers (stb_ds.h, found through
# pkg-config as `stb`), the Check unit-test library and pkg-config itself.
# Called by the Makefile when `pkg-config --exists stb check` fails; safe to run by hand.
set -eu

have() { command -v "$1" >/dev/null 2>&1; }

if have pkg-config && pkg-config --exists stb check; then
    exit 0
fi

if have apt-get; then
    pkgs="libstb-dev check pkg-config"
    if [ "$(id -u)" = 0 ]; then
        sudo=""
    elif have sudo; then
        sudo="sudo"
    else
        echo "error: missing build dependencies; run as root: apt-get install -y $pkgs" >&2
        exit 1
    fi
    echo "setup-deps: installing $pkgs with apt-get" >&2
    export DEBIAN_FRONTEND=noninteractive
    # An old or empty package list cannot find the packages, so refresh it first.
    $sudo apt-get update -q >&2 || true
    $sudo apt-get install -y -q $pkgs >&2
    if pkg-config --exists stb check; then
        exit 0
    fi
    echo "error: installed $pkgs but pkg-config still cannot find 'stb' and 'check'" >&2
    exit 1
fi

case "$(uname -s)" in
    Darwin) hint="brew install check pkg-config libomp, and put stb_ds.h where an stb.pc names it (Homebrew has no stb package)";;
    FreeBSD) hint="pkg install check pkgconf stb";;
    *) hint="install the stb headers (with an stb.pc for pkg-config), the Check library and pkg-config with your package manager";;
esac
echo "error: missing build dependencies (pkg-config packages 'stb' and 'check'); $hint" >&2
exit 1
