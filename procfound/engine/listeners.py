"""Who answers a readiness probe: the process holding a listening socket, found in /proc (Linux).

A connection that succeeds proves only that *something* listens. On Linux the kernel says what:
its ``sock_diag`` netlink interface (or, where that is refused, ``/proc/net/tcp`` and ``tcp6``)
lists each listening TCP socket with its inode and the uid that made it, ``/proc/net/unix`` the
unix sockets with their paths and inodes, and ``/proc/<pid>/fd/*`` links name the inodes a
process holds (``socket:[12345]``). (Reading ``/proc/net/tcp`` walks the kernel's whole
connection table, 5 ms per file on the machine this was written on; the netlink dump of
listening sockets alone takes a fraction of a millisecond.) From those, :func:`outside_holder`
tells whether a child's own tree holds the socket a probe reached, or which other process does.

The child's tree is its descendants by parent pid, its process group and session, and the
members of its containment box (a daemon reparented to init is still in its cgroup or carries
its marker). A process that started before the child cannot be part of its tree, whatever else
is known. Where the answer cannot be told (not Linux, /proc unreadable, a remote host, a holder
whose fds we may not read), every function here says so by returning None and the caller
accepts the answer as before; the pytest plugin and the CLI also refuse a port or socket that
already answers before the child starts.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import socket
import struct
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Final, final

__all__ = [
    "Holder",
    "Listener",
    "Tree",
    "descendant_holds",
    "is_local_address",
    "outside_holder",
    "tcp_listeners",
    "unix_listeners",
]

_IS_LINUX: Final = sys.platform.startswith("linux")
_TCP_LISTEN: Final = "0A"
_UNIX_ACCEPTING: Final = 0x10000  # __SO_ACCEPTCON in /proc/net/unix's Flags: listen() was called
# sock_diag (linux/netlink.h, linux/sock_diag.h, linux/inet_diag.h)
_NETLINK_SOCK_DIAG: Final = 4
_SOCK_DIAG_BY_FAMILY: Final = 20
_NLM_F_REQUEST_DUMP: Final = 0x1 | 0x300
_NLMSG_ERROR: Final = 2
_NLMSG_DONE: Final = 3
_TCP_LISTEN_STATE: Final = 10
_NLMSG_HEADER: Final = struct.Struct("=IHHII")  # length, type, flags, sequence, port id
# inet_diag_msg: family, state, timer, retransmits; the socket id (source port, destination
# port, both big-endian, source and destination addresses, interface, cookie); expires,
# receive queue, send queue, uid, inode.
_DIAG_MESSAGE: Final = struct.Struct("=BBBB2s2s16s16sI8sIIIII")
_DIAG_TIMEOUT: Final = 1.0

_Address = ipaddress.IPv4Address | ipaddress.IPv6Address


@final
@dataclass(frozen=True, slots=True)
class Listener:
    """A socket from /proc/net: its inode, and the uid that made it (None: not listed)."""

    inode: int
    uid: int | None


@final
@dataclass(frozen=True, slots=True)
class Tree:
    """A child's process tree, as far as it can be told.

    ``members`` lists the processes of its containment box (None: it has none).
    """

    pid: int
    pgid: int | None
    members: Callable[[], Iterable[int]] | None = None


@final
@dataclass(frozen=True, slots=True)
class Holder:
    """A process outside the tree that holds a socket (``pid`` None: one we may not see)."""

    pid: int | None
    name: str = ""
    uid: int | None = None

    def __str__(self) -> str:
        if self.pid is not None:
            return f"process {self.pid} ({self.name or '?'})"
        if self.uid is not None:
            return f"another user's process (uid {self.uid}{_user_name(self.uid)})"
        return "a process procfound cannot see"


def _user_name(uid: int) -> str:
    try:
        import pwd

        return f", {pwd.getpwuid(uid).pw_name}"
    except (ImportError, KeyError):
        return ""


# -- the sockets ------------------------------------------------------------------------------


def is_local_address(ip: str) -> bool:
    """True if ``ip`` is an address of this machine (so its listener is in our /proc/net).

    Binding a datagram socket to an address succeeds only for a local one.
    """
    try:
        address = ipaddress.ip_address(ip.partition("%")[0])
    except ValueError:
        return False
    if address.is_loopback:
        return True
    family = socket.AF_INET6 if address.version == 6 else socket.AF_INET
    try:
        with socket.socket(family, socket.SOCK_DGRAM) as probe:
            probe.bind((ip, 0))
    except OSError:
        return False
    return True


def _hex_address(text: str) -> _Address:
    """An address as /proc/net/tcp prints it: each 32-bit word in the machine's byte order."""
    raw = b"".join(
        int(text[i : i + 8], 16).to_bytes(4, sys.byteorder) for i in range(0, len(text), 8)
    )
    return ipaddress.ip_address(raw)


def _diag_listening(family: int) -> list[tuple[_Address, int, Listener]] | None:
    """Every listening TCP socket of ``family`` from sock_diag: (address, port, socket)."""
    request = _NLMSG_HEADER.pack(
        _NLMSG_HEADER.size + 56, _SOCK_DIAG_BY_FAMILY, _NLM_F_REQUEST_DUMP, 1, 0
    ) + struct.pack("=BBBBI48x", family, socket.IPPROTO_TCP, 0, 0, 1 << _TCP_LISTEN_STATE)
    found: list[tuple[_Address, int, Listener]] = []
    try:
        with socket.socket(socket.AF_NETLINK, socket.SOCK_DGRAM, _NETLINK_SOCK_DIAG) as diag:
            diag.settimeout(_DIAG_TIMEOUT)
            diag.sendall(request)
            while True:
                data = diag.recv(65536)
                offset = 0
                while offset + _NLMSG_HEADER.size <= len(data):
                    length, kind, _, _, _ = _NLMSG_HEADER.unpack_from(data, offset)
                    if kind == _NLMSG_DONE:
                        return found
                    if kind == _NLMSG_ERROR or length < _NLMSG_HEADER.size:
                        return None
                    fields = _DIAG_MESSAGE.unpack_from(data, offset + _NLMSG_HEADER.size)
                    raw = fields[6][:4] if fields[0] == socket.AF_INET else fields[6]
                    port = int.from_bytes(fields[4], "big")
                    found.append(
                        (ipaddress.ip_address(raw), port, Listener(fields[14], fields[13]))
                    )
                    offset += (length + 3) & ~3
                if not data:
                    return None
    except (OSError, struct.error, ValueError):
        return None


def _proc_listening() -> list[tuple[_Address, int, Listener]] | None:
    """Every listening TCP socket from /proc/net/tcp and tcp6: (address, port, socket)."""
    found: list[tuple[_Address, int, Listener]] = []
    readable = False
    for name in ("tcp", "tcp6"):
        try:
            with open(f"/proc/net/{name}") as table:
                lines = table.readlines()[1:]
        except OSError:
            continue
        readable = True
        for line in lines:
            fields = line.split()
            if len(fields) < 10 or fields[3] != _TCP_LISTEN:
                continue
            address_text, _, port_text = fields[1].partition(":")
            listener = Listener(int(fields[9]), int(fields[7]))
            found.append((_hex_address(address_text), int(port_text, 16), listener))
    return found if readable else None


def _listening() -> list[tuple[_Address, int, Listener]] | None:
    ipv4 = _diag_listening(socket.AF_INET)
    ipv6 = _diag_listening(socket.AF_INET6) if ipv4 is not None else None
    if ipv4 is None:
        return _proc_listening()
    return ipv4 + (ipv6 or [])  # no IPv6 answer: no IPv6 here


def tcp_listeners(ip: str, port: int) -> list[Listener] | None:
    """The listening TCP sockets a connection to ``ip:port`` reaches: those bound to that
    address, else those bound to the wildcard address; None if that cannot be told."""
    if not _IS_LINUX:
        return None
    try:
        target = ipaddress.ip_address(ip.partition("%")[0])
    except ValueError:
        return None
    listening = _listening()
    if listening is None:
        return None
    mapped = (
        ipaddress.IPv6Address(b"\0" * 10 + b"\xff\xff" + target.packed)
        if target.version == 4
        else None
    )
    exact: list[Listener] = []
    wildcard: list[Listener] = []
    for address, bound_port, listener in listening:
        if bound_port != port:
            continue
        if address in (target, mapped):
            exact.append(listener)
        elif address.is_unspecified and (address.version == 6 or target.version == 4):
            wildcard.append(listener)  # "::" takes IPv4 too, unless IPV6_V6ONLY
    return exact or wildcard  # the kernel prefers the socket bound to the address itself


def unix_listeners(path: str) -> list[Listener] | None:
    """The unix sockets bound to ``path`` (listening ones first); None if it cannot be told."""
    if not _IS_LINUX:
        return None
    try:
        with open("/proc/net/unix", "rb") as table:
            lines = table.read().splitlines()[1:]
    except OSError:
        return None
    wanted = os.fsencode(path)
    listening: list[Listener] = []
    bound: list[Listener] = []
    for line in lines:
        fields = line.split(None, 7)
        if len(fields) < 8 or fields[7] != wanted:
            continue
        socket_ = Listener(int(fields[6]), None)
        (listening if int(fields[3], 16) & _UNIX_ACCEPTING else bound).append(socket_)
    return listening or bound


# -- the processes ----------------------------------------------------------------------------


@final
@dataclass(frozen=True, slots=True)
class _Stat:
    ppid: int
    pgrp: int
    session: int
    start: int  # clock ticks after boot


def _stat(pid: int) -> _Stat | None:
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            text = f.read()
    except OSError:
        return None
    # The command name (field 2) is in parentheses and may hold anything, even ") ".
    fields = text[text.rfind(b")") + 2 :].split()
    try:
        return _Stat(int(fields[1]), int(fields[2]), int(fields[3]), int(fields[19]))
    except (IndexError, ValueError):
        return None


def _all_pids() -> list[int]:
    try:
        return [int(name) for name in os.listdir("/proc") if name.isdigit()]
    except OSError:
        return []


def _children(pid: int) -> list[int] | None:
    """``pid``'s children, from each thread's ``children`` file; None without that file."""
    found: list[int] = []
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return found
    for tid in tids:
        try:
            with open(f"/proc/{pid}/task/{tid}/children") as f:
                found.extend(int(word) for word in f.read().split())
        except FileNotFoundError:
            if not os.path.exists(f"/proc/{pid}/task/{tid}"):
                continue  # the thread ended
            return None  # a kernel without CONFIG_PROC_CHILDREN
        except OSError:
            continue
    return found


def _holds(pid: int, links: set[str]) -> bool | None:
    """Whether ``pid`` has one of ``links`` (``socket:[N]``) open; None if we may not look."""
    directory = f"/proc/{pid}/fd"
    try:
        fds = os.listdir(directory)
    except FileNotFoundError:
        return False  # gone
    except OSError:
        return None
    for fd in fds:
        with contextlib.suppress(OSError):
            if os.readlink(f"{directory}/{fd}") in links:
                return True
    return False


def _name(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/comm", "rb") as f:
            return f.read().strip().decode("utf-8", "replace")
    except OSError:
        return ""


def _tree_pids(tree: Tree, stats: dict[int, _Stat]) -> set[int]:
    """Every process of ``tree``: descendants by parent pid, its group, its session (when the
    child leads one) and its box."""
    children: dict[int, list[int]] = {}
    for pid, info in stats.items():
        children.setdefault(info.ppid, []).append(pid)
    found = {tree.pid}
    todo = [tree.pid]
    while todo:
        for child in children.get(todo.pop(), ()):
            if child not in found:
                found.add(child)
                todo.append(child)
    child_stat = stats.get(tree.pid)
    leads_session = child_stat is not None and child_stat.session == tree.pid
    for pid, info in stats.items():
        if (tree.pgid is not None and info.pgrp == tree.pgid) or (
            leads_session and info.session == tree.pid
        ):
            found.add(pid)
    if tree.members is not None:
        with contextlib.suppress(OSError):
            found.update(tree.members())
    return found


def _links(listeners: list[Listener] | None) -> set[str]:
    if not _IS_LINUX or not listeners:
        return set()
    return {f"socket:[{listener.inode}]" for listener in listeners if listener.inode}


def descendant_holds(listeners: list[Listener] | None, tree: Tree) -> bool:
    """True if the child or a descendant by parent pid holds one of ``listeners``: the usual
    case, told by reading a few files (well under a millisecond), so no thread is needed."""
    links = _links(listeners)
    if not links:
        return False
    # Breadth first, each process checked as it is found: mostly the child itself holds it.
    seen = {tree.pid}
    todo = [tree.pid]
    while todo:
        pid = todo.pop(0)
        if _holds(pid, links):
            return True
        children = _children(pid)
        if children is None:
            return False  # no children files: the thorough search will tell
        for child in children:
            if child not in seen:
                seen.add(child)
                todo.append(child)
    return False


def outside_holder(listeners: list[Listener] | None, tree: Tree | None) -> Holder | None:
    """The process outside ``tree`` that holds one of ``listeners``, or None: the tree holds
    one, or it cannot be told. With ``tree`` None (nothing started yet), any holder.

    Blocking: it reads /proc (every process's fds, milliseconds): run it in a worker thread,
    after :func:`descendant_holds` said no.
    """
    links = _links(listeners)
    if not links or listeners is None:
        return None
    stats = {pid: info for pid in _all_pids() if (info := _stat(pid)) is not None}
    ours = set() if tree is None else _tree_pids(tree, stats)
    holders: list[int] = []
    hidden_member = False  # a process of the tree whose fds we may not read (another uid)
    for pid in stats:
        held = _holds(pid, links)
        if pid in ours:
            if held:
                return None
            hidden_member = hidden_member or held is None
        elif held:
            holders.append(pid)
    if tree is not None:
        child = stats.get(tree.pid)
        for pid in holders:
            # A descendant cannot have started before the child. One that started later but
            # is in none of the above (a daemon reparented to init) is outside only where a
            # box would have caught it.
            info = stats[pid]
            if child is None or info.start < child.start or tree.members is not None:
                return Holder(pid, _name(pid))
        if holders or hidden_member:
            return None
    elif holders:
        return Holder(holders[0], _name(holders[0]))
    # Nobody we can see holds it: a process of another user (its fds are hidden from us).
    uids = {listener.uid for listener in listeners if listener.uid is not None}
    others = uids - {os.geteuid()}
    if others:
        return Holder(None, uid=min(others))
    return None if tree is not None else Holder(None)
