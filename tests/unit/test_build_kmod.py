"""Kernel module load order for the initrd, resolved from depmod's modules.dep / modules.builtin."""

from __future__ import annotations

from pathlib import Path

import pytest

from runq.build.kmod import ModuleDB, ModuleError, modname

# A trimmed copy of the real Debian 6.1 dependency lines (modules.dep lists the full transitive closure).
_V = "kernel/drivers/virtio/"
_DEPS = {
    f"{_V}virtio.ko": [],
    f"{_V}virtio_ring.ko": [],
    f"{_V}virtio_mmio.ko": [f"{_V}virtio.ko", f"{_V}virtio_ring.ko"],
    f"{_V}virtio_pci_modern_dev.ko": [],
    f"{_V}virtio_pci_legacy_dev.ko": [],
    f"{_V}virtio_pci.ko": [f"{_V}virtio_pci_modern_dev.ko", f"{_V}virtio_pci_legacy_dev.ko", f"{_V}virtio_ring.ko",
                           f"{_V}virtio.ko"],
    "kernel/fs/netfs/netfs.ko": [],
    "kernel/fs/fscache/fscache.ko": ["kernel/fs/netfs/netfs.ko"],
    "kernel/net/9p/9pnet.ko": [],
    "kernel/fs/9p/9p.ko": ["kernel/net/9p/9pnet.ko", "kernel/fs/fscache/fscache.ko", "kernel/fs/netfs/netfs.ko"],
    "kernel/net/9p/9pnet_virtio.ko": [f"{_V}virtio_ring.ko", f"{_V}virtio.ko", "kernel/net/9p/9pnet.ko"],
    "kernel/net/core/failover.ko": [],
    "kernel/drivers/net/net_failover.ko": ["kernel/net/core/failover.ko"],
    "kernel/drivers/net/virtio_net.ko": ["kernel/drivers/net/net_failover.ko", "kernel/net/core/failover.ko",
                                         f"{_V}virtio_ring.ko", f"{_V}virtio.ko"],
    "kernel/drivers/char/hw_random/virtio-rng.ko": [f"{_V}virtio_ring.ko", f"{_V}virtio.ko"],
    "kernel/drivers/char/hw_random/rng-core.ko": [],
}
FAKE_DEP = "".join(f"{mod}: {' '.join(deps)}\n" for mod, deps in _DEPS.items())
FAKE_BUILTIN = "kernel/drivers/char/hw_random/rng-core.ko\n"


def _db() -> ModuleDB:
    return ModuleDB.parse(FAKE_DEP, FAKE_BUILTIN)


def _assert_deps_first(db: ModuleDB, order: list[str]) -> None:
    for i, name in enumerate(order):
        for dep in db.deps[name]:
            if dep not in db.builtin:
                assert order.index(dep) < i, f"{dep} must be loaded before {name}"


def test_dependencies_come_before_the_modules_that_need_them() -> None:
    db = _db()
    order = db.load_order(["9p", "9pnet_virtio", "virtio_net", "virtio_pci", "virtio_mmio"])
    _assert_deps_first(db, order)
    assert set(order) == {"9p", "9pnet", "fscache", "netfs", "9pnet_virtio", "virtio", "virtio_ring", "virtio_net",
                          "net_failover", "failover", "virtio_pci", "virtio_pci_modern_dev", "virtio_pci_legacy_dev",
                          "virtio_mmio"}


def test_each_module_appears_once_even_when_shared_by_many() -> None:
    order = _db().load_order(["virtio_mmio", "virtio_net", "9pnet_virtio", "virtio_rng"])
    assert len(order) == len(set(order))
    assert order.count("virtio") == 1


def test_dash_and_underscore_names_are_the_same_module() -> None:
    db = _db()
    assert db.load_order(["virtio_rng"])[-1] == "virtio_rng"
    assert db.paths["virtio_rng"].endswith("virtio-rng.ko")
    assert modname("kernel/x/virtio-rng.ko.xz") == "virtio_rng"


def test_builtin_modules_are_skipped() -> None:
    db = ModuleDB.parse(FAKE_DEP + "kernel/drivers/char/hw_random/foo.ko: kernel/drivers/char/hw_random/rng-core.ko\n",
                        FAKE_BUILTIN + "kernel/drivers/virtio/virtio_mmio.ko\n")
    assert db.load_order(["virtio_mmio", "foo"]) == ["foo"]


def test_missing_optional_module_is_ignored_but_missing_required_fails() -> None:
    db = _db()
    assert db.load_order(["virtio_mmio"], ["vmw_vsock_virtio_transport"]) == ["virtio", "virtio_ring", "virtio_mmio"]
    with pytest.raises(ModuleError, match="vmw_vsock_virtio_transport"):
        db.load_order(["vmw_vsock_virtio_transport"])


def test_dependency_cycle_is_reported() -> None:
    db = ModuleDB.parse("a.ko: b.ko\nb.ko: a.ko\n")
    with pytest.raises(ModuleError, match="cycle"):
        db.load_order(["a"])


def test_load_reads_modules_dep_from_a_tree(tmp_path: Path) -> None:
    (tmp_path / "modules.dep").write_text(FAKE_DEP)
    (tmp_path / "modules.builtin").write_text(FAKE_BUILTIN)
    assert "rng_core" in ModuleDB.load(str(tmp_path)).builtin
    with pytest.raises(ModuleError, match="depmod"):
        ModuleDB.load(str(tmp_path / "nope"))
