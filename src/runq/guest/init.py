"""PID 1 inside the VM (standard library only; runs on the Python bundled into the initrd).

1. mount /proc /sys /dev, load the boot modules, open the runq.0 virtio-serial port;
2. receive the GuestConfig, mount the container rootfs (9p tag ``rootfs``) on /rootfs, the guest kernel's modules
   (9p tag ``modules``) on /rootfs/lib/modules, tmpfs mounts; hostname, sysctls, loopback;
3. start the workload in new PID/mount/IPC namespaces, chrooted into /rootfs, as the OCI user, with its env, cwd,
   rlimits and capabilities;
4. relay stdin/stdout/stderr (or the terminal), signals and window size; when the workload ends, sync, report the
   exit status (128+n for death by signal n) and power off.
"""

from __future__ import annotations

import time

_TRACE: list[tuple[str, float]] = [("python running init.py", time.clock_gettime(time.CLOCK_BOOTTIME))]

import errno
import fcntl
import os
import resource
import select
import _signal as signal  # the C module: `signal` drags in enum, functools, collections
import stat
import struct
import sys
import termios

from runq import channel as ch
from runq import linux
from runq.guest import dns, network, seccomp
from runq.layout import GUEST_MODULES_DIR, GUEST_MODULES_LIST

ROOT = "/rootfs"
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
MS = linux
TMPFS_FLAGS = {
    "ro": MS.MS_RDONLY, "nosuid": MS.MS_NOSUID, "nodev": MS.MS_NODEV, "noexec": MS.MS_NOEXEC,
    "noatime": MS.MS_NOATIME, "nodiratime": MS.MS_NODIRATIME, "strictatime": MS.MS_STRICTATIME,
    "dirsync": MS.MS_DIRSYNC,
}
TMPFS_IGNORED = {"rw", "suid", "dev", "exec", "atime", "diratime", "relatime", "rprivate", "private", "rshared",
                 "shared", "rslave", "slave", "bind", "rbind", "tmpcopyup", "notmpcopyup"}
DEVICES = (("null", 1, 3), ("zero", 1, 5), ("full", 1, 7), ("random", 1, 8), ("urandom", 1, 9), ("tty", 5, 0))


def trace(phase: str) -> None:
    """Remember when a boot phase ended (guest uptime); sent to the runtime log in debug mode."""
    _TRACE.append((phase, time.clock_gettime(time.CLOCK_BOOTTIME)))


class SetupError(Exception):
    """A failure before the workload runs; reported to the host, the container exits 1."""


# --------------------------------------------------------------------------------------------------------------
# Boot


def early_mounts() -> None:
    for src, target, fstype, flags, data in (
        ("proc", "/proc", "proc", MS.MS_NOSUID | MS.MS_NODEV | MS.MS_NOEXEC, None),
        ("sysfs", "/sys", "sysfs", MS.MS_NOSUID | MS.MS_NODEV | MS.MS_NOEXEC, None),
        ("devtmpfs", "/dev", "devtmpfs", MS.MS_NOSUID, "mode=0755"),
    ):
        try:
            linux.mount(src, target, fstype, flags, data)
        except OSError as e:
            if e.errno != errno.EBUSY:
                raise
    os.makedirs("/dev/pts", exist_ok=True)
    linux.mount("devpts", "/dev/pts", "devpts", MS.MS_NOSUID | MS.MS_NOEXEC,
                "newinstance,ptmxmode=0666,mode=0620,gid=5")
    for fd in (0, 1, 2):
        try:
            os.fstat(fd)
        except OSError:
            nfd = os.open("/dev/null", os.O_RDWR)
            if nfd != fd:
                os.dup2(nfd, fd)
                os.close(nfd)


PCI_ONLY = ("virtio_pci", "virtio_pci_modern_dev", "virtio_pci_legacy_dev")
ON_DEMAND = ("failover", "net_failover", "virtio_net", "virtio_blk", "vsock", "vmw_vsock_virtio_transport_common",
             "vmw_vsock_virtio_transport")


def load_modules(names: list[str] | None = None) -> None:
    """Load boot modules from the initrd (signatures stripped at build time: no RSA check under TCG).

    Without `names`: what this boot needs (virtio-mmio or virtio-pci, 9p, console, rng). Network, block and vsock
    modules are loaded on demand by name.
    """
    try:
        with open(GUEST_MODULES_LIST) as f:
            listed = [n[:-3] for n in f.read().split()]
    except OSError:
        return
    if names is None:
        with open("/proc/cmdline") as f:
            pci = "runq.vbus=pci" in f.read().split()
        skip = set(ON_DEMAND) | (set() if pci else set(PCI_ONLY))
        wanted = [n for n in listed if n not in skip]
    else:
        wanted = [n for n in listed if n in names]
    for name in wanted:
        fd = os.open(os.path.join(GUEST_MODULES_DIR, name + ".ko"), os.O_RDONLY | os.O_CLOEXEC)
        try:
            linux.finit_module(fd)
        except OSError as e:
            if e.errno not in (errno.EEXIST, errno.ENODEV):
                print(f"runq-init: module {name}: {e}", file=sys.stderr)
        finally:
            os.close(fd)


def find_port(timeout: float = 20.0) -> str:
    base = "/sys/class/virtio-ports"
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            for d in os.listdir(base):
                try:
                    with open(f"{base}/{d}/name") as f:
                        if f.read().strip() == ch.PORT_NAME:
                            return f"/dev/{d}"
                except OSError:
                    pass
        except FileNotFoundError:
            pass
        time.sleep(0.005)
    raise SetupError(f"virtio-serial port {ch.PORT_NAME} did not appear")


class Channel:
    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.decoder = ch.Decoder()
        self.pending: list[ch.Msg] = []

    def send(self, msg: ch.Msg) -> None:
        ch.write_all(self.fd, msg.encode())

    def log(self, level: str, text: str) -> None:
        self.send(ch.Log(level, text))

    def read(self) -> list[ch.Msg]:
        data = os.read(self.fd, 256 * 1024)
        if not data:
            return []
        return list(self.decoder.feed(data))

    def wait_config(self) -> ch.GuestConfig:
        config = None
        while config is None:
            for msg in self.read():
                if config is None and isinstance(msg, ch.Config):
                    config = msg.config
                else:
                    self.pending.append(msg)  # stdin, signals... that came in the same read
        return config


# --------------------------------------------------------------------------------------------------------------
# Root filesystem and system setup


def mount_flags(options: str) -> tuple[int, str]:
    flags, data = 0, []
    for opt in (o.strip() for o in options.split(",")):
        if not opt or opt in TMPFS_IGNORED:
            continue
        if opt in TMPFS_FLAGS:
            flags |= TMPFS_FLAGS[opt]
        else:
            data.append(opt)
    return flags, ",".join(data)


def setup_rootfs(cfg: ch.GuestConfig, chan: Channel) -> None:
    os.makedirs(ROOT, exist_ok=True)
    flags = MS.MS_NODEV | (MS.MS_RDONLY if cfg.readonly_root else 0)
    opts = f"trans=virtio,version=9p2000.L,msize=512000,cache={cfg.cache9p}"
    try:
        linux.mount("rootfs", ROOT, "9p", flags, opts)
    except OSError as e:
        raise SetupError(f"mounting the container rootfs over 9p ({opts}): {e.strerror}") from None
    try:
        os.rmdir(ROOT + "/.runq")  # the empty mount point runc made for the runtime root
    except OSError:
        pass
    mods = ROOT + "/lib/modules"
    try:
        if not os.path.isdir(mods) and not cfg.readonly_root:
            os.makedirs(mods, exist_ok=True)  # as the original runq: the mount point is made in the container
        if os.path.isdir(mods):
            linux.mount("modules", mods, "9p", MS.MS_RDONLY | MS.MS_NODEV | MS.MS_NOSUID,
                        "trans=virtio,version=9p2000.L,cache=loose")
    except OSError as e:
        chan.log("debug", f"guest kernel modules not mounted at /lib/modules: {e}")
    for dest, options in cfg.tmpfs:
        target = ROOT + dest
        try:
            os.makedirs(target, exist_ok=True)
            tflags, data = mount_flags(options)
            linux.mount("tmpfs", target, "tmpfs", tflags, data or None)
        except OSError as e:
            raise SetupError(f"tmpfs {dest} ({options}): {e.strerror}") from None


def setup_system(cfg: ch.GuestConfig) -> None:
    if cfg.hostname:
        linux.sethostname(cfg.hostname)
    write_sysctls({"kernel.randomize_va_space": "2"})  # the kernel booted with norandmaps for init's sake
    loopback_up()


def write_sysctls(sysctls: dict[str, str]) -> None:
    for key, value in sysctls.items():
        path = "/proc/sys/" + key.replace(".", "/")
        try:
            with open(path, "w") as f:
                f.write(str(value))
        except OSError as e:
            raise SetupError(f"sysctl {key}={value}: {e.strerror}") from None


def loopback_up() -> None:
    import _socket  # the C module: `socket` itself costs ~140 ms to import under TCG

    s = _socket.socket(_socket.AF_INET, _socket.SOCK_DGRAM)
    try:
        ifreq = struct.pack("16sH14x", b"lo", 0x1 | 0x8 | 0x40)  # IFF_UP | IFF_LOOPBACK | IFF_RUNNING
        fcntl.ioctl(s.fileno(), 0x8914, ifreq)  # SIOCSIFFLAGS
    finally:
        s.close()


# --------------------------------------------------------------------------------------------------------------
# The workload (runs in the forked child: PID 1 of a new PID namespace)


def home_of(uid: int, passwd: str) -> str:
    try:
        with open(passwd) as f:
            for line in f:
                parts = line.rstrip("\n").split(":")
                if len(parts) >= 6 and parts[2] == str(uid):
                    return parts[5] or "/"
    except OSError:
        pass
    return "/"


def lookpath(name: str, env_path: str) -> str:
    """Go's exec.LookPath: a name with a slash is used as is; otherwise the first executable file in PATH."""
    if "/" in name:
        return name
    for d in (env_path or DEFAULT_PATH).split(":"):
        cand = os.path.join(d or ".", name)
        try:
            st = os.stat(cand)
        except OSError:
            continue
        if stat.S_ISREG(st.st_mode) and st.st_mode & 0o111:
            return cand
    raise FileNotFoundError(errno.ENOENT, f'exec: "{name}": executable file not found in $PATH')


def _mknod(path: str, major: int, minor: int) -> None:
    os.mknod(path, 0o666 | stat.S_IFCHR, os.makedev(major, minor))
    os.chmod(path, 0o666)


def setup_dev(cfg: ch.GuestConfig, tty_path: str | None) -> None:
    dev = ROOT + "/dev"
    os.makedirs(dev, exist_ok=True)
    linux.mount("tmpfs", dev, "tmpfs", MS.MS_NOSUID | MS.MS_STRICTATIME, "mode=755,size=65536k")
    for name, major, minor in DEVICES:
        _mknod(f"{dev}/{name}", major, minor)
    os.mkdir(f"{dev}/pts")
    linux.mount("/dev/pts", f"{dev}/pts", None, MS.MS_BIND)
    os.symlink("pts/ptmx", f"{dev}/ptmx")
    os.mkdir(f"{dev}/shm", 0o1777)
    linux.mount("shm", f"{dev}/shm", "tmpfs", MS.MS_NOSUID | MS.MS_NODEV | MS.MS_NOEXEC,
                f"mode=1777,size={cfg.shm_size}")
    os.mkdir(f"{dev}/mqueue")
    try:
        linux.mount("mqueue", f"{dev}/mqueue", "mqueue", MS.MS_NOSUID | MS.MS_NODEV | MS.MS_NOEXEC)
    except OSError:
        pass
    for name, target in (("fd", "/proc/self/fd"), ("stdin", "/proc/self/fd/0"), ("stdout", "/proc/self/fd/1"),
                         ("stderr", "/proc/self/fd/2"), ("core", "/proc/kcore")):
        os.symlink(target, f"{dev}/{name}")
    if tty_path:
        open(f"{dev}/console", "w").close()
        linux.mount(tty_path, f"{dev}/console", None, MS.MS_BIND)


def mask_paths(cfg: ch.GuestConfig) -> None:
    for p in cfg.masked_paths:
        target = ROOT + p
        try:
            if os.path.isdir(target):
                linux.mount("tmpfs", target, "tmpfs", MS.MS_RDONLY)
            elif os.path.exists(target):
                linux.mount(ROOT + "/dev/null", target, None, MS.MS_BIND)
        except OSError:
            pass
    for p in cfg.readonly_paths:
        target = ROOT + p
        if not os.path.exists(target):
            continue
        try:
            linux.mount(target, target, None, MS.MS_BIND | MS.MS_REC)
            linux.mount(target, target, None, MS.MS_BIND | MS.MS_REMOUNT | MS.MS_RDONLY | MS.MS_REC)
        except OSError:
            pass


def write_runqenv(env: list[str], uid: int, gid: int) -> None:
    lines = []
    for item in env:
        k, _, v = item.partition("=")
        if len(v) >= 2 and v[0] == v[-1] and v[0] in "\"'":
            lines.append(f"{k}={v}")
        else:
            lines.append(f"{k}=" + '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"')
    fd = os.open("/.runqenv", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o400)
    with os.fdopen(fd, "w") as f:
        f.write("\n".join(lines) + "\n")
    os.chown("/.runqenv", uid, gid)


def _rlim(v: int) -> int:
    return resource.RLIM_INFINITY if v < 0 or v >= 2**63 else v


def apply_credentials(cfg: ch.GuestConfig) -> None:
    caps = cfg.capabilities
    bounding = set()
    for n in caps.get("bounding", []):
        try:
            bounding.add(linux.cap_number(n))
        except ValueError:
            pass
    for c in range(linux.last_cap() + 1):
        if c not in bounding:
            try:
                linux.prctl(linux.PR_CAPBSET_DROP, c)
            except OSError:
                pass
    if cfg.uid != 0:
        linux.prctl(8, 1)  # PR_SET_KEEPCAPS: keep the permitted set across setuid, trimmed by capset below
    os.setgroups(cfg.additional_gids)
    os.setgid(cfg.gid)
    os.setuid(cfg.uid)
    linux.capset(caps.get("effective", []), caps.get("permitted", []), caps.get("inheritable", []))
    for n in caps.get("ambient", []):
        try:
            linux.prctl(linux.PR_CAP_AMBIENT, linux.PR_CAP_AMBIENT_RAISE, linux.cap_number(n))
        except (OSError, ValueError):
            pass


def workload(cfg: ch.GuestConfig, env: list[str], stdio: tuple[int, int, int], tty_path: str | None) -> None:
    """The child. Never returns: execs the workload or exits 126/127 (cannot execute / not found) or 1."""
    code = 1
    try:
        signal.set_wakeup_fd(-1)
        os.setsid()
        for i, fd in enumerate(stdio):
            os.dup2(fd, i)
        if cfg.terminal:
            fcntl.ioctl(0, termios.TIOCSCTTY, 0)
        os.closerange(3, 65536)
        linux.unshare(linux.CLONE_NEWNS | linux.CLONE_NEWIPC)
        write_sysctls(cfg.sysctl)  # here, so IPC sysctls land in the workload's IPC namespace (as runc does)
        linux.mount(None, "/", None, MS.MS_REC | MS.MS_PRIVATE)
        linux.mount("proc", ROOT + "/proc", "proc", MS.MS_NOSUID | MS.MS_NODEV | MS.MS_NOEXEC)
        linux.mount("sysfs", ROOT + "/sys", "sysfs", MS.MS_NOSUID | MS.MS_NODEV | MS.MS_NOEXEC | MS.MS_RDONLY)
        setup_dev(cfg, tty_path)
        mask_paths(cfg)
        os.chdir(ROOT)
        linux.mount(ROOT, "/", None, MS.MS_MOVE)
        os.chroot(".")
        os.chdir("/")
        if cfg.runqenv:
            write_runqenv(env, cfg.uid, cfg.gid)
        os.umask(cfg.umask if cfg.umask is not None else 0o022)
        for name, soft, hard in cfg.rlimits:
            resource.setrlimit(linux.RLIMITS[name], (_rlim(soft), _rlim(hard)))
        try:
            os.chdir(cfg.cwd)
        except OSError as e:
            raise SetupError(f"chdir to cwd ({cfg.cwd!r}) set in config.json failed: {e.strerror}") from None
        if cfg.no_new_privileges:
            linux.prctl(linux.PR_SET_NO_NEW_PRIVS, 1)
        # As runc: without no_new_privs the filter goes in while the capability to load it is still there.
        if cfg.seccomp_bpf and not cfg.no_new_privileges:
            seccomp.install_bpf(bytes.fromhex(cfg.seccomp_bpf))
        apply_credentials(cfg)
        if cfg.seccomp_bpf and cfg.no_new_privileges:
            seccomp.install_bpf(bytes.fromhex(cfg.seccomp_bpf))
        for s in range(1, signal.NSIG):
            try:
                signal.signal(s, signal.SIG_DFL)
            except (OSError, ValueError):
                pass
        signal.pthread_sigmask(signal.SIG_SETMASK, [])
        envmap = dict(e.partition("=")[::2] for e in env)
        code = 127
        path = lookpath(cfg.args[0], envmap.get("PATH", DEFAULT_PATH))
        try:
            os.execve(path, cfg.args, envmap)
        except OSError as e:
            code = 127 if e.errno == errno.ENOENT else 126
            raise OSError(e.errno, f'exec: "{cfg.args[0]}": {os.strerror(e.errno).lower()}') from None
    except BaseException as e:  # noqa: BLE001 - child must never return into init
        text = e.strerror if isinstance(e, OSError) and e.strerror else str(e)
        try:
            os.write(2, f"runq: {text}\n".encode(errors="replace"))
        except OSError:
            pass
    os._exit(code)


# --------------------------------------------------------------------------------------------------------------
# Relay


NET_MODULES = ["failover", "net_failover", "virtio_net"]


def setup_network(cfg: ch.GuestConfig, chan: Channel) -> "dns.Stub | None":
    """The container's NICs (lo is up already) and, when resolv.conf names Docker's embedded DNS, its stub."""
    if cfg.networks:
        load_modules(NET_MODULES)
        try:
            network.configure(cfg.networks)
        except network.NetworkError as e:
            raise SetupError(f"network {e}") from None
    try:
        with open(ROOT + "/etc/resolv.conf") as f:
            embedded = dns.uses_embedded_dns(f.read())
    except OSError:
        embedded = False
    if not embedded:
        return None

    def send(proto: str, qid: int, data: bytes) -> None:
        chan.send(ch.DnsQuery(qid, proto, data))

    try:
        return dns.Stub(send)
    except OSError as e:
        chan.log("warning", f"embedded DNS stub on {dns.EMBEDDED}:{dns.PORT}: {e}")
        return None


class Relay:
    def __init__(self, cfg: ch.GuestConfig, chan: Channel, dns_stub: "dns.Stub | None" = None) -> None:
        self.cfg = cfg
        self.chan = chan
        self.dns = dns_stub
        self.pid = 0
        self.status: int | None = None
        self.stdin_buf = bytearray()
        self.stdin_eof = False
        self.stdin_w: int | None = None
        self.outputs: dict[int, type[ch.Msg]] = {}
        self.master: int | None = None

    def start(self) -> None:
        cfg = self.cfg
        env = list(cfg.env)
        if not any(e.startswith("HOME=") for e in env):
            env.append("HOME=" + home_of(cfg.uid, ROOT + "/etc/passwd"))
        tty_path = None
        if cfg.terminal:
            master, slave = os.openpty()
            tty_path = os.ttyname(slave)
            stdio = (slave, slave, slave)
            child_fds = [slave]
            self.master = master
            self.outputs[master] = ch.Stdout
            os.set_blocking(master, False)
        else:
            in_r, in_w = os.pipe()
            out_r, out_w = os.pipe()
            err_r, err_w = os.pipe()
            stdio = (in_r, out_w, err_w)
            child_fds = [in_r, out_w, err_w]
            self.stdin_w = in_w
            os.set_blocking(in_w, False)
            self.outputs[out_r] = ch.Stdout
            self.outputs[err_r] = ch.Stderr
        pidns = os.open("/proc/self/ns/pid", os.O_RDONLY | os.O_CLOEXEC)
        linux.unshare(linux.CLONE_NEWPID)
        pid = os.fork()
        if pid == 0:
            workload(cfg, env, stdio, tty_path)
        linux.setns(pidns, linux.CLONE_NEWPID)
        os.close(pidns)
        for fd in child_fds:
            os.close(fd)
        self.pid = pid
        self.chan.send(ch.Started(pid))

    def handle(self, msg: ch.Msg) -> None:
        if isinstance(msg, ch.Stdin):
            if self.master is not None:
                self.stdin_buf += msg.data
            elif self.stdin_w is not None:
                self.stdin_buf += msg.data
        elif isinstance(msg, ch.StdinEof):
            self.stdin_eof = True
        elif isinstance(msg, ch.Signal):
            sig = msg.signum
            if self.cfg.systemd and sig == signal.SIGTERM:
                sig = signal.SIGRTMIN + 4
            try:
                os.kill(self.pid, sig)
            except ProcessLookupError:
                pass
        elif isinstance(msg, ch.DnsAnswer):
            if self.dns is not None:
                self.dns.answer(msg.id, msg.data)
        elif isinstance(msg, ch.WinSize) and self.master is not None:
            fcntl.ioctl(self.master, termios.TIOCSWINSZ, struct.pack("HHHH", msg.rows, msg.cols, 0, 0))

    def flush_stdin(self) -> None:
        fd = self.master if self.master is not None else self.stdin_w
        if fd is None:
            return
        if self.stdin_buf:
            try:
                n = os.write(fd, self.stdin_buf)
                del self.stdin_buf[:n]
            except BlockingIOError:
                pass
            except OSError:  # the workload closed its stdin
                self.stdin_buf.clear()
                if self.master is None:
                    self._close_stdin()
                return
        if not self.stdin_buf and self.stdin_eof and self.master is None:
            self._close_stdin()

    def _close_stdin(self) -> None:
        if self.stdin_w is not None:
            os.close(self.stdin_w)
            self.stdin_w = None

    def run(self) -> int:
        wake_r, wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        signal.set_wakeup_fd(wake_w, warn_on_full_buffer=False)
        signal.signal(signal.SIGCHLD, lambda *_: None)
        self.start()
        for msg in self.chan.pending:
            self.handle(msg)
        self.chan.pending.clear()
        while self.status is None or self.outputs:
            if self.stdin_buf or self.stdin_eof:
                self.flush_stdin()
            wfd = self.master if self.master is not None else self.stdin_w
            wlist = [wfd] if (wfd is not None and self.stdin_buf) else []
            rlist = [self.chan.fd, wake_r] + list(self.outputs)
            dns_fds = self.dns.fds() if self.dns is not None else []
            timeout = 1.0 if self.status is not None or (self.dns is not None and self.dns.busy()) else None
            try:
                readable, writable, _ = select.select(rlist + dns_fds, wlist, [], timeout)
            except InterruptedError:
                continue
            if self.dns is not None:
                for fd in readable:
                    if fd in dns_fds:
                        self.dns.ready(fd)
                self.dns.expire()
                readable = [fd for fd in readable if fd not in dns_fds]
            if self.status is not None and not readable and not writable:
                break  # output holders are gone but the pipe did not report EOF: stop waiting
            for fd in readable:
                if fd == self.chan.fd:
                    for msg in self.chan.read():
                        self.handle(msg)
                elif fd == wake_r:
                    os.read(wake_r, 512)
                    self.reap()
                else:
                    self.read_output(fd)
            if self.status is None:
                self.reap()
        assert self.status is not None
        return os.waitstatus_to_exitcode(self.status) if os.WIFEXITED(self.status) \
            else 128 + os.WTERMSIG(self.status)

    def read_output(self, fd: int) -> None:
        try:
            data = os.read(fd, ch.CHUNK)
        except BlockingIOError:
            return
        except OSError:  # EIO: the terminal's last user is gone
            data = b""
        if not data:
            del self.outputs[fd]
            os.close(fd)
            if fd == self.master:
                self.master = None
            return
        self.chan.send(self.outputs[fd](data))

    def reap(self) -> None:
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            if pid == self.pid:
                self.status = status


# --------------------------------------------------------------------------------------------------------------


def power_off() -> None:
    os.sync()
    try:
        linux.reboot(linux.RB_AUTOBOOT)  # QEMU runs with -no-reboot: a reboot ends it at once
    except OSError:
        pass
    while True:
        time.sleep(3600)


def main() -> None:
    chan: Channel | None = None
    code = 1
    try:
        trace("imports done")
        early_mounts()
        load_modules()
        trace("modules loaded")
        port = find_port()
        chan = Channel(os.open(port, os.O_RDWR | os.O_CLOEXEC))
        cfg = chan.wait_config()
        trace("config received")
        setup_rootfs(cfg, chan)
        setup_system(cfg)
        trace("rootfs and system set up")
        dns_stub = setup_network(cfg, chan)
        trace("network set up")
        if cfg.debug:
            chan.log("debug", "boot trace (guest uptime): " + ", ".join(f"{p} {t:.3f}" for p, t in _TRACE))
        code = Relay(cfg, chan, dns_stub).run()
        if cfg.networks:
            network.drain_tcp()
    except BaseException as e:  # noqa: BLE001 - PID 1 must report and power off, whatever happened
        text = str(e) if isinstance(e, SetupError) else f"init: {type(e).__name__}: {e}"
        print("runq-init: " + text, file=sys.stderr)
        if chan is not None:
            try:
                chan.log("error", text)
            except OSError:
                pass
        code = 1
    os.sync()
    if chan is not None:
        try:
            chan.send(ch.Exit(code))
        except OSError:
            pass
    power_off()
