"""runq: a hypervisor-based OCI runtime (host side and guest side share this package)."""

__version__ = "0.1.0"
