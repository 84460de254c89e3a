#!/usr/bin/env bash
# Installs what the `mpi` feature (data-parallel training under mpirun/srun) needs, from
# Debian's packages: Open MPI (openmpi-bin, libopenmpi-dev) and libclang with clang's built-in
# headers (libclang-dev), which the `mpi` crate's bindings generator (bindgen) loads at build
# time. Does nothing when they are there already. Needs root (or sudo) and apt; on a cluster,
# load its MPI module instead (docs/distributed.md). Safe to run twice at once: a second run
# waits for the first and then finds everything in place.
set -euo pipefail
shopt -s nullglob
if command -v flock >/dev/null; then
    exec 9<"$0"
    flock 9
fi

# A 64-bit ELF file (clang-sys refuses any other).
elf64() {
    [ -f "$1" ] && [ -r "$1" ] && [ "$(head -c 5 "$1" | od -An -tx1 | tr -d ' \n')" = 7f454c4602 ]
}

# A libclang in $1 as bindgen's loader (clang-sys, runtime linking) looks for it: libclang.so,
# libclang-*.so, libclang.so.* or libclang-*.so.*, but not libclang-cpp.so*, the C++ library
# that LLVM's packages (and Open MPI's through them) bring without libclang itself.
libclang_in() {
    local f
    for f in "$1"/libclang.so "$1"/libclang-*.so "$1"/libclang.so.* "$1"/libclang-*.so.*; do
        case ${f##*/} in *-cpp.*) continue ;; esac
        if elf64 "$f"; then return 0; fi
    done
    return 1
}

# The places clang-sys searches, in its order: only LIBCLANG_PATH (a folder or the file) when it
# is set; otherwise `llvm-config --prefix`'s bin/lib/lib64, LD_LIBRARY_PATH, LIBRARY_PATH and
# the usual library folders.
have_libclang() {
    local d prefix
    if [ -n "${LIBCLANG_PATH:-}" ]; then
        if [ -f "$LIBCLANG_PATH" ]; then
            case ${LIBCLANG_PATH##*/} in *-cpp.*) return 1 ;; esac
            elf64 "$LIBCLANG_PATH"
            return
        fi
        libclang_in "$LIBCLANG_PATH"
        return
    fi
    if prefix=$("${LLVM_CONFIG_PATH:-llvm-config}" --prefix 2>/dev/null); then
        for d in "$prefix/bin" "$prefix/lib" "$prefix/lib64"; do
            if libclang_in "$d"; then return 0; fi
        done
    fi
    local dirs=()
    IFS=: read -ra dirs <<<"${LD_LIBRARY_PATH:-}:${LIBRARY_PATH:-}"
    for d in "${dirs[@]}"; do
        if [ -n "$d" ] && libclang_in "$d"; then return 0; fi
    done
    for d in /usr/local/llvm*/lib* /usr/local/lib*/*/* /usr/local/lib*/* /usr/local/lib* \
        /usr/lib*/*/* /usr/lib*/* /usr/lib*; do
        if [ -d "$d" ] && libclang_in "$d"; then return 0; fi
    done
    return 1
}

# clang's built-in headers (stddef.h and the like), which libclang needs to parse mpi.h: from
# libclang-common-*-dev, which a bare libclang1-* package does not bring.
have_clang_headers() {
    [ -n "${LIBCLANG_PATH:-}" ] && return 0 # a hand-set libclang: trust its installation
    local headers=(/usr/lib/llvm-*/lib/clang/*/include/stddef.h /usr/lib/clang/*/include/stddef.h
        /usr/local/lib/clang/*/include/stddef.h /usr/local/llvm*/lib/clang/*/include/stddef.h)
    [ ${#headers[@]} -gt 0 ]
}

have() {
    command -v mpirun >/dev/null && command -v mpicc >/dev/null && have_libclang && have_clang_headers
}

if ! have; then
    sudo=""
    if [ "$(id -u)" != 0 ]; then sudo=sudo; fi
    export DEBIAN_FRONTEND=noninteractive
    $sudo apt-get update -qq >&2
    $sudo apt-get install -y -qq --no-install-recommends openmpi-bin libopenmpi-dev libclang-dev >&2
    if ! have; then
        echo "install-mpi.sh: Open MPI, or a libclang where bindgen looks for it, still missing (LIBCLANG_PATH=${LIBCLANG_PATH:-unset})" >&2
        exit 1
    fi
fi
mpirun --version | head -1
