"""Kernel module dependency resolution from modules.dep / modules.builtin (as written by depmod)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass


class ModuleError(Exception):
    pass


def modname(path: str) -> str:
    """Canonical module name of a module path: basename without .ko[.xz|.zst|.gz], '-' -> '_'."""
    base = os.path.basename(path)
    for suffix in (".xz", ".zst", ".gz"):
        if base.endswith(suffix):
            base = base[: -len(suffix)]
    if base.endswith(".ko"):
        base = base[:-3]
    return base.replace("-", "_")


@dataclass
class ModuleDB:
    paths: dict[str, str]          # name -> path relative to the module tree
    deps: dict[str, list[str]]     # name -> names it depends on
    builtin: set[str]

    @classmethod
    def parse(cls, modules_dep: str, modules_builtin: str = "") -> ModuleDB:
        paths: dict[str, str] = {}
        deps: dict[str, list[str]] = {}
        for line in modules_dep.splitlines():
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            mod, _, rest = line.partition(":")
            name = modname(mod)
            paths[name] = mod
            deps[name] = [modname(d) for d in rest.split()]
        builtin = {modname(line.strip()) for line in modules_builtin.splitlines() if line.strip()}
        return cls(paths, deps, builtin)

    @classmethod
    def load(cls, tree: str) -> ModuleDB:
        """Read <tree>/modules.dep and (if present) <tree>/modules.builtin."""
        try:
            dep = open(os.path.join(tree, "modules.dep")).read()
        except FileNotFoundError as e:
            raise ModuleError(f"{tree}/modules.dep missing (run depmod)") from e
        try:
            builtin = open(os.path.join(tree, "modules.builtin")).read()
        except FileNotFoundError:
            builtin = ""
        return cls.parse(dep, builtin)

    def load_order(self, required: Sequence[str], optional: Sequence[str] = ()) -> list[str]:
        """Module names to insmod, dependencies first, built-ins skipped, each once.

        Raises ModuleError for a required module that is neither a module nor built in, or a dependency cycle.
        """
        order: list[str] = []
        done: set[str] = set()
        active: list[str] = []

        def visit(name: str) -> None:
            if name in done or name in self.builtin:
                return
            if name in active:
                raise ModuleError("dependency cycle: " + " -> ".join(active + [name]))
            if name not in self.paths:
                raise ModuleError(f"kernel module {name!r} not found in modules.dep")
            active.append(name)
            for dep in self.deps.get(name, []):
                visit(dep)
            active.pop()
            done.add(name)
            order.append(name)

        for name in required:
            visit(modname(name))
        for name in optional:
            n = modname(name)
            if n in self.paths or n in self.builtin:
                visit(n)
        return order


SIG_MAGIC = b"~Module signature appended~\n"
_SIG_INFO_LEN = 12  # struct module_signature: algo, hash, id_type, signer_len, key_id_len, pad[3], be32 sig_len


def strip_signature(data: bytes) -> bytes:
    """The module without its appended signature.

    The guest kernel then loads it without verifying an RSA signature, which costs ~20 ms per module under TCG
    (it only taints itself; module.sig_enforce is off). Unsigned input comes back unchanged.
    """
    if not data.endswith(SIG_MAGIC):
        return data
    end = len(data) - len(SIG_MAGIC)
    info = data[end - _SIG_INFO_LEN:end]
    signer_len, key_id_len = info[3], info[4]
    sig_len = int.from_bytes(info[8:12], "big")
    cut = end - _SIG_INFO_LEN - sig_len - signer_len - key_id_len
    if cut <= 0:
        raise ValueError("corrupt module signature trailer")
    return data[:cut]
