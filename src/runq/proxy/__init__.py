"""The runq proxy: the container process on the host that runs QEMU."""
