#!/usr/bin/env bash
# Installs what the `mpi` feature (data-parallel training under mpirun/srun) needs, from
# Debian's packages: Open MPI (openmpi-bin, libopenmpi-dev) and libclang, which the `mpi`
# crate's bindings generator uses. Does nothing when they are there already. Needs root (or
# sudo) and apt; on a cluster, load its MPI module instead (docs/distributed.md).
set -euo pipefail
have() {
    command -v mpirun >/dev/null && command -v mpicc >/dev/null &&
        ls /usr/lib/x86_64-linux-gnu/libclang*.so* /usr/lib/llvm-*/lib/libclang*.so* >/dev/null 2>&1
}
if ! have; then
    sudo=""
    if [ "$(id -u)" != 0 ]; then sudo=sudo; fi
    export DEBIAN_FRONTEND=noninteractive
    $sudo apt-get update -qq >&2
    $sudo apt-get install -y -qq --no-install-recommends openmpi-bin libopenmpi-dev libclang-dev >&2
fi
mpirun --version | head -1
