"""An R30x/ZFM module simulated on a real pseudo-terminal, speaking the exact wire protocol.

``R30xSimulator`` opens a pty pair, serves the protocol on the master end in a thread, and exposes
the slave path as ``.port``: any R30x client (this project's driver, pyfingerprint, a terminal
program) opens that path like a USB-serial adapter. It keeps an image buffer, two character
buffers, an on-disk template library (one file per page), a password and system parameters.

Test and demo controls: ``place_finger(image)``, ``lift_finger()``, ``unplug()`` (the pty closes and
the link disappears, as a pulled cable), ``replug()``, ``inject_garbage(bytes)``,
``drop_next_bytes(n)``, ``corrupt_next_checksum()``, ``set_delay(seconds)``, ``pace_line()`` (answer
no faster than the baud rate, for benchmarks), ``stop()``. A client whose port is set to another
rate than the module's gets garbled answers, as on a real line.

Line rate: a pty carries no rate, so the simulator keeps its own. ``baud`` is the module's rate (kept
across unplug and replug, as a module keeps it in flash); the client's rate is what it set on its end
of the pty (termios). SetSysPara parameter 4 is answered at the old rate and the new rate applies from
the next command, as on a module; a command arriving while the two rates differ is a framing error
and its answer reaches the client garbled. ``max_baud`` models a module (or clone) that refuses
faster rates (confirmation code 0x1B, as for an out-of-range value).
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import select
import struct
import tempfile
import termios
import threading
import time
import tty
import weakref
from collections.abc import Callable
from pathlib import Path

import numpy as np
import numpy.typing as npt

from drivers.errors import ProtocolError
from drivers.r30x import protocol as p
from drivers.r30x import templates
from drivers.r30x.sensor_image import fit_to_sensor, load_sensor_image, quantise, synthetic_print

log = logging.getLogger(__name__)

Grey = npt.NDArray[np.uint8]

PACE_CHUNK = 16  # bytes per paced write: fine enough that pacing error stays under 0.1 %
PACE_SLACK = 0.005  # seconds

# termios speed constants -> bits per second, for the rates of the R30x family a pty can carry
_SPEEDS = {
    getattr(termios, f"B{rate}"): rate
    for rate in (9600, 19200, 38400, 57600, 115200)
    if hasattr(termios, f"B{rate}")
}


_LIVE: weakref.WeakSet[R30xSimulator] = weakref.WeakSet()


@atexit.register
def _stop_all() -> None:
    """Stop simulators still running at interpreter exit: threads joined, ptys closed, links gone."""
    for simulator in list(_LIVE):
        with contextlib.suppress(Exception):
            simulator.stop()


class _Session:
    """One 'plugged-in' period: a pty pair, its serving thread and a wake pipe."""

    def __init__(self) -> None:
        self.master, self.slave = os.openpty()
        tty.setraw(self.slave)
        os.set_blocking(self.master, False)
        self.port = os.ttyname(self.slave)
        self.wake_r, self.wake_w = os.pipe()
        self.ended = threading.Event()
        self.line_free = 0.0  # monotonic time at which the simulated line is idle (pacing)
        self.thread: threading.Thread | None = None

    def end(self) -> None:
        self.ended.set()
        with contextlib.suppress(OSError):
            os.write(self.wake_w, b"x")

    def close_fds(self) -> None:
        for fd in (self.master, self.slave, self.wake_r, self.wake_w):
            with contextlib.suppress(OSError):
                os.close(fd)


class _Unplugged(Exception):
    """The session ended while the serving thread was writing or waiting."""


class R30xSimulator:
    def __init__(
        self,
        *,
        image: Grey | str | Path | None = None,
        finger_auto: bool = False,
        library_dir: str | Path | None = None,
        password: int = 0,
        address: int = p.DEFAULT_ADDRESS,
        library_size: int = 300,
        security_level: int = 3,
        packet_size: int = 128,
        baud: int = 57600,
        system_id: int = 0x0000,
        max_baud: int = 115200,
    ) -> None:
        self._lock = threading.RLock()
        self._changed = threading.Condition(self._lock)
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        if library_dir is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="r30x-library-")
            library_dir = self._tmp.name
        self.library_dir = Path(library_dir)
        self.library_dir.mkdir(parents=True, exist_ok=True)
        self.password = password
        self.address = address
        self.library_size = library_size
        self.security_level = security_level
        self.packet_size = packet_size
        self.baud = baud
        self.max_baud = max_baud
        self.system_id = system_id
        self.finger_auto = finger_auto
        self._finger: Grey | None = None
        self._default_finger = self._to_image(image) if image is not None else synthetic_print(1)
        if image is not None:
            self._finger = self._default_finger
        self._verified = False
        self._image_buffer: Grey | None = None
        self._char: dict[int, bytes | None] = {1: None, 2: None}
        self._download: tuple[str, int, bytearray] | None = None
        self._drop = 0
        self._prefix = b""
        self._paced = False
        self._corrupt = False
        self._delay = 0.0
        self.led: tuple[int, int, int, int] | None = None
        self.commands_served = 0
        self.responses_sent = 0
        self._links: list[Path] = []
        self._session: _Session | None = None
        self._stopped = False
        self._extract_cache: dict[bytes, bytes | templates.TemplateError] = {}
        self._on_stop: list[Callable[[], None]] = []

    # -- lifecycle -----------------------------------------------------------------------------------

    def start(self) -> R30xSimulator:
        with self._lock:
            if self._session is None and not self._stopped:
                self._open_session()
                _LIVE.add(self)
        return self

    def _open_session(self) -> None:
        session = _Session()
        self._session = session
        self._verified = False
        self._image_buffer = None
        self._char = {1: None, 2: None}
        self._download = None
        for link in self._links:
            self._make_link(link, session.port)
        session.thread = threading.Thread(
            target=self._serve, args=(session,), name=f"r30x-sim {session.port}", daemon=True
        )
        session.thread.start()

    def _end_session(self) -> None:
        session = self._session
        if session is None:
            return
        self._session = None
        session.end()
        for link in self._links:
            with contextlib.suppress(FileNotFoundError):
                link.unlink()
        thread = session.thread
        if thread is not None and thread is not threading.current_thread():
            self._lock.release()
            try:
                thread.join(timeout=5)
            finally:
                self._lock.acquire()
        session.close_fds()
        self._changed.notify_all()

    def stop(self) -> None:
        """Stop serving, close the pty, remove links (and the temporary library, if any)."""
        with self._lock:
            self._stopped = True
            self._end_session()
            self._links.clear()
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None
        callbacks, self._on_stop = self._on_stop, []
        for callback in callbacks:
            with contextlib.suppress(Exception):
                callback()

    def on_stop(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` once when the simulator stops (also at interpreter exit)."""
        with self._lock:
            self._on_stop.append(callback)

    def __enter__(self) -> R30xSimulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> str:
        session = self._session
        if session is None:
            raise RuntimeError("simulator is not plugged in")
        return session.port

    @property
    def plugged(self) -> bool:
        return self._session is not None

    def link(self, path: str | Path) -> Path:
        """Create ``path`` as a symlink to the pty slave (kept across unplug/replug)."""
        link = Path(path)
        with self._lock:
            self._links.append(link)
            if self._session is not None:
                self._make_link(link, self._session.port)
        return link

    @staticmethod
    def _make_link(link: Path, target: str) -> None:
        tmp = link.with_name(f".{link.name}.{os.getpid()}.tmp")
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        tmp.symlink_to(target)
        tmp.replace(link)

    # -- controls ------------------------------------------------------------------------------------

    @staticmethod
    def _to_image(image: Grey | str | Path) -> Grey:
        if isinstance(image, str | Path):
            return load_sensor_image(image)
        return fit_to_sensor(image)

    def place_finger(self, image: Grey | str | Path | None = None) -> None:
        with self._lock:
            self._finger = self._to_image(image) if image is not None else self._default_finger

    def lift_finger(self) -> None:
        with self._lock:
            self._finger = None

    @property
    def finger_on(self) -> bool:
        return self._finger is not None or self.finger_auto

    def unplug(self) -> None:
        """Close the pty (clients see the port vanish) and remove the links."""
        with self._lock:
            self._end_session()

    def replug(self) -> None:
        """A fresh pty (a new slave path) behind the same links; module state as after power-on."""
        with self._lock:
            if self._session is None and not self._stopped:
                self._open_session()

    def inject_garbage(self, data: bytes, *, before_next_answer: bool = False) -> None:
        """Write ``data`` to the line now, unsolicited, or just before the next answer."""
        with self._lock:
            if before_next_answer:
                self._prefix += data
                return
            session = self._session
        if session is not None:
            with contextlib.suppress(_Unplugged, OSError):
                self._write_raw(session, data)

    def drop_next_bytes(self, n: int) -> None:
        """Lose the next ``n`` bytes the module sends."""
        with self._lock:
            self._drop += n

    def corrupt_next_checksum(self) -> None:
        with self._lock:
            self._corrupt = True

    def set_delay(self, seconds: float) -> None:
        """Wait this long before every answer."""
        with self._lock:
            self._delay = seconds

    def wait_for(self, predicate: Callable[[], bool], timeout: float = 5.0) -> bool:
        """Block until ``predicate()`` holds (checked after every answer/state change) or timeout."""
        with self._changed:
            return self._changed.wait_for(predicate, timeout=timeout)

    def library(self) -> dict[int, bytes]:
        """The stored templates by page number."""
        out = {}
        for f in sorted(self.library_dir.glob("*.tpl")):
            with contextlib.suppress(ValueError):
                out[int(f.stem)] = f.read_bytes()
        return out

    # -- the serving thread --------------------------------------------------------------------------

    def _serve(self, session: _Session) -> None:
        parser = p.StreamParser()
        while not session.ended.is_set():
            try:
                ready, _, _ = select.select([session.master, session.wake_r], [], [])
            except (OSError, ValueError):
                return
            if session.wake_r in ready or session.ended.is_set():
                return
            try:
                data = os.read(session.master, 4096)
            except BlockingIOError:
                continue
            except OSError:
                return
            if not data:
                return
            if self._baud_mismatch(session):
                # the module sees framing errors: it cannot parse the command, and what it answers
                # reaches the client garbled (no EF 01 survives a wrong line rate)
                with contextlib.suppress(_Unplugged):
                    self._write_raw(session, bytes(b ^ 0x5A for b in p.build_ack(0x01, address=self.address)))
                continue
            parser.feed(data)
            while True:
                try:
                    packet = parser.next_packet()
                except ProtocolError as exc:
                    log.debug("r30x sim: bad packet (%s)", exc)
                    if exc.code == "device.r30x.checksum":
                        self._respond(session, p.build_ack(0x01, address=self.address))
                    continue
                except _Unplugged:
                    return
                if packet is None:
                    break
                try:
                    self._handle(session, packet)
                except _Unplugged:
                    return

    def _baud_mismatch(self, session: _Session) -> bool:
        """True when the client set its port to a rate other than the module's (a pty keeps it)."""
        try:
            client = _SPEEDS.get(termios.tcgetattr(session.slave)[4])
        except termios.error:
            return False
        return client is not None and client != self.baud

    def _respond(self, session: _Session, packet: bytes) -> None:
        with self._lock:
            delay = self._delay
        if delay > 0 and session.ended.wait(delay):
            raise _Unplugged
        with self._lock:
            if self._prefix:
                packet, self._prefix = self._prefix + packet, b""
            if self._corrupt:
                self._corrupt = False
                packet = packet[:-1] + bytes([packet[-1] ^ 0x5A])
            if self._drop:
                cut = min(self._drop, len(packet))
                self._drop -= cut
                packet = packet[cut:]
        self._write_raw(session, packet)
        with self._lock:
            self.responses_sent += 1
            self._changed.notify_all()

    def pace_line(self, enabled: bool = True) -> None:
        """Deliver answers no faster than the module's baud rate allows (8N1: 10 bits a byte)."""
        with self._lock:
            self._paced = enabled

    def _write_raw(self, session: _Session, data: bytes) -> None:
        if not self._paced:
            self._write_now(session, data)
            return
        for start in range(0, len(data), PACE_CHUNK):
            chunk = data[start : start + PACE_CHUNK]
            # each byte reaches the client when its last bit would have left a real UART
            # (a line idle for less than PACE_SLACK counts as busy: a late wake-up costs no line time)
            now = time.monotonic()
            base = session.line_free if session.line_free >= now - PACE_SLACK else now
            session.line_free = base + len(chunk) * 10 / self.baud
            wait = session.line_free - time.monotonic()
            if wait > 0 and session.ended.wait(wait):
                raise _Unplugged
            self._write_now(session, chunk)

    def _write_now(self, session: _Session, data: bytes) -> None:
        view = memoryview(data)
        while view:
            if session.ended.is_set():
                raise _Unplugged
            _, writable, _ = select.select([session.wake_r], [session.master], [], 1.0)
            if session.ended.is_set():
                raise _Unplugged
            if not writable:
                continue
            try:
                written = os.write(session.master, view)
            except BlockingIOError:
                continue
            except OSError as exc:
                raise _Unplugged from exc
            view = view[written:]

    def _ack(self, session: _Session, code: int, data: bytes = b"") -> None:
        self._respond(session, p.build_ack(code, data, self.address))

    def _send_data(self, session: _Session, data: bytes) -> None:
        for packet_type, chunk in p.split_data(data, self.packet_size):
            self._respond(session, p.build_packet(packet_type, chunk, self.address))

    def _handle(self, session: _Session, packet: p.Packet) -> None:
        if packet.address != self.address:
            return  # a module ignores packets for another address
        if packet.type in (p.PacketType.DATA, p.PacketType.END_DATA):
            self._receive_data(packet)
            return
        if packet.type != p.PacketType.COMMAND or not packet.payload:
            return
        with self._lock:
            self.commands_served += 1
            self._changed.notify_all()
        instruction, args = packet.payload[0], packet.payload[1:]
        if (
            self.password != 0
            and not self._verified
            and instruction not in (p.Instruction.VFY_PWD, p.Instruction.HANDSHAKE)
        ):
            self._ack(session, 0x21)
            return
        handler = self._handlers().get(instruction)
        if handler is None:
            self._ack(session, 0xFC)
            return
        try:
            handler(session, args)
        except (IndexError, struct.error):
            self._ack(session, 0x01)  # a command with missing parameters

    def _handlers(self) -> dict[int, Callable[[_Session, bytes], None]]:
        i = p.Instruction
        return {
            i.HANDSHAKE: lambda s, a: self._ack(s, p.OK),
            i.VFY_PWD: self._vfy_pwd,
            i.SET_PWD: self._set_pwd,
            i.READ_SYS_PARA: self._read_sys_para,
            i.SET_SYS_PARA: self._set_sys_para,
            i.SET_ADDR: self._set_addr,
            i.GET_RANDOM_CODE: lambda s, a: self._ack(s, p.OK, os.urandom(4)),
            i.GEN_IMG: self._gen_img,
            i.UP_IMAGE: self._up_image,
            i.DOWN_IMAGE: self._down_image,
            i.IMG2TZ: self._img2tz,
            i.REG_MODEL: self._reg_model,
            i.MATCH: self._match,
            i.SEARCH: self._search,
            i.STORE: self._store,
            i.LOAD_CHAR: self._load_char,
            i.UP_CHAR: self._up_char,
            i.DOWN_CHAR: self._down_char,
            i.DELETE_CHAR: self._delete_char,
            i.EMPTY: self._empty,
            i.TEMPLATE_NUM: self._template_num,
            i.READ_INDEX_TABLE: self._read_index_table,
            i.AURA_LED_CONFIG: self._led,
        }

    # -- instructions --------------------------------------------------------------------------------

    def _vfy_pwd(self, s: _Session, a: bytes) -> None:
        (given,) = struct.unpack(">I", a[:4])
        if given == self.password:
            self._verified = True  # a wrong try does not revoke an earlier verification
            self._ack(s, p.OK)
        else:
            self._ack(s, 0x13)

    def _set_pwd(self, s: _Session, a: bytes) -> None:
        (self.password,) = struct.unpack(">I", a[:4])
        self._ack(s, p.OK)

    def _sys_params(self) -> p.SysParams:
        return p.SysParams(
            status=0x0004 if self._verified or self.password == 0 else 0,
            system_id=self.system_id,
            library_size=self.library_size,
            security_level=self.security_level,
            address=self.address,
            packet_size=self.packet_size,
            baud=self.baud,
        )

    def _read_sys_para(self, s: _Session, a: bytes) -> None:
        self._ack(s, p.OK, self._sys_params().to_bytes())

    def _set_sys_para(self, s: _Session, a: bytes) -> None:
        param, value = a[0], a[1]
        if param == p.SysParam.BAUD:
            if not 1 <= value <= 12 or value * p.BAUD_UNIT > self.max_baud:
                self._ack(s, 0x1B)
                return
            self._ack(s, p.OK)  # answered at the old rate; a pty has no rate, so keep serving
            self.baud = value * p.BAUD_UNIT
        elif param == p.SysParam.SECURITY_LEVEL:
            if not 1 <= value <= 5:
                self._ack(s, 0x1B)
                return
            self.security_level = value
            self._ack(s, p.OK)
        elif param == p.SysParam.PACKET_SIZE:
            if value >= len(p.PACKET_SIZES):
                self._ack(s, 0x1B)
                return
            self.packet_size = p.PACKET_SIZES[value]
            self._ack(s, p.OK)
        else:
            self._ack(s, 0x1A)

    def _set_addr(self, s: _Session, a: bytes) -> None:
        (self.address,) = struct.unpack(">I", a[:4])
        self._ack(s, p.OK)

    def _gen_img(self, s: _Session, a: bytes) -> None:
        with self._lock:
            finger = self._finger
            if finger is None and self.finger_auto:
                finger = self._default_finger
        if finger is None:
            self._ack(s, p.NO_FINGER)
            return
        self._image_buffer = quantise(finger)
        self._ack(s, p.OK)

    def _up_image(self, s: _Session, a: bytes) -> None:
        if self._image_buffer is None:
            self._ack(s, 0x15)
            return
        self._ack(s, p.OK)
        self._send_data(s, p.pack_image(self._image_buffer))

    def _down_image(self, s: _Session, a: bytes) -> None:
        self._download = ("image", 0, bytearray())
        self._ack(s, p.OK)

    def _down_char(self, s: _Session, a: bytes) -> None:
        buffer = a[0]
        if buffer not in self._char:
            self._ack(s, 0x0E)
            return
        self._download = ("char", buffer, bytearray())
        self._ack(s, p.OK)

    def _receive_data(self, packet: p.Packet) -> None:
        if self._download is None:
            return
        kind, buffer, data = self._download
        data += packet.payload
        if packet.type != p.PacketType.END_DATA:
            return
        self._download = None
        if kind == "image" and len(data) == p.IMAGE_BYTES:
            self._image_buffer = p.unpack_image(bytes(data))
        elif kind == "char":
            self._char[buffer] = bytes(data[: p.CHAR_BUFFER_SIZE]).ljust(p.CHAR_BUFFER_SIZE, b"\x00")

    def _extract(self, image: Grey) -> bytes:
        key = image.tobytes()
        cached = self._extract_cache.get(key)
        if cached is None:
            try:
                cached = templates.extract_char_file(image)
            except templates.TemplateError as exc:
                cached = exc
            if len(self._extract_cache) > 8:
                self._extract_cache.clear()
            self._extract_cache[key] = cached
        if isinstance(cached, templates.TemplateError):
            raise cached
        return cached

    def _img2tz(self, s: _Session, a: bytes) -> None:
        buffer = a[0] if a else 1
        if buffer not in self._char:
            buffer = 2 if buffer > 2 else 1
        if self._image_buffer is None:
            self._ack(s, 0x15)
            return
        try:
            self._char[buffer] = self._extract(self._image_buffer)
        except templates.TemplateError as exc:
            self._ack(s, exc.confirmation)
            return
        self._ack(s, p.OK)

    def _threshold(self) -> int:
        return templates.MATCH_THRESHOLDS.get(self.security_level, 40)

    def _reg_model(self, s: _Session, a: bytes) -> None:
        one, two = self._char[1], self._char[2]
        if one is None or two is None or templates.match_score(one, two) < self._threshold():
            self._ack(s, 0x0A)
            return
        model = max((one, two), key=templates.minutiae_count)
        self._char[1] = self._char[2] = model
        self._ack(s, p.OK)

    def _match(self, s: _Session, a: bytes) -> None:
        one, two = self._char[1], self._char[2]
        score = templates.match_score(one, two) if one is not None and two is not None else 0
        if score >= self._threshold():
            self._ack(s, p.OK, struct.pack(">H", min(score, 0xFFFF)))
        else:
            self._ack(s, p.NO_MATCH, struct.pack(">H", 0))

    def _page_path(self, page: int) -> Path:
        return self.library_dir / f"{page:04d}.tpl"

    def _search(self, s: _Session, a: bytes) -> None:
        buffer, start, count = struct.unpack(">BHH", a[:5])
        probe = self._char.get(buffer)
        best_page, best_score = -1, 0
        if probe is not None:
            for page, stored in self.library().items():
                if start <= page < start + count:
                    score = templates.match_score(probe, stored)
                    if score > best_score:
                        best_page, best_score = page, score
        if best_page >= 0 and best_score >= self._threshold():
            self._ack(s, p.OK, struct.pack(">HH", best_page, min(best_score, 0xFFFF)))
        else:
            self._ack(s, p.NOT_FOUND, struct.pack(">HH", 0, 0))

    def _store(self, s: _Session, a: bytes) -> None:
        buffer, page = struct.unpack(">BH", a[:3])
        if page >= self.library_size:
            self._ack(s, 0x0B)
            return
        content = self._char.get(buffer)
        if content is None:
            self._ack(s, 0x22)
            return
        path = self._page_path(page)
        tmp = path.with_suffix(".tmp")
        tmp.write_bytes(content)
        tmp.replace(path)
        self._ack(s, p.OK)

    def _load_char(self, s: _Session, a: bytes) -> None:
        buffer, page = struct.unpack(">BH", a[:3])
        if page >= self.library_size:
            self._ack(s, 0x0B)
            return
        path = self._page_path(page)
        if not path.exists() or buffer not in self._char:
            self._ack(s, 0x0C)
            return
        self._char[buffer] = path.read_bytes()
        self._ack(s, p.OK)

    def _up_char(self, s: _Session, a: bytes) -> None:
        content = self._char.get(a[0])
        if content is None:
            self._ack(s, 0x0D)
            return
        self._ack(s, p.OK)
        self._send_data(s, content)

    def _delete_char(self, s: _Session, a: bytes) -> None:
        page, count = struct.unpack(">HH", a[:4])
        if page + count > self.library_size or count == 0:
            self._ack(s, 0x10)
            return
        for n in range(page, page + count):
            with contextlib.suppress(FileNotFoundError):
                self._page_path(n).unlink()
        self._ack(s, p.OK)

    def _empty(self, s: _Session, a: bytes) -> None:
        for f in self.library_dir.glob("*.tpl"):
            f.unlink()
        self._ack(s, p.OK)

    def _template_num(self, s: _Session, a: bytes) -> None:
        self._ack(s, p.OK, struct.pack(">H", len(self.library())))

    def _read_index_table(self, s: _Session, a: bytes) -> None:
        table_page = a[0]
        if table_page > 3:
            self._ack(s, 0x1C)
            return
        bits = bytearray(32)
        for page in self.library():
            offset = page - table_page * 256
            if 0 <= offset < 256:
                bits[offset // 8] |= 1 << (offset % 8)
        self._ack(s, p.OK, bytes(bits))

    def _led(self, s: _Session, a: bytes) -> None:
        mode, speed, colour, times = a[0], a[1], a[2], a[3]
        if not 1 <= mode <= 6:
            self._ack(s, 0x1B)
            return
        with self._lock:
            self.led = (mode, speed, colour, times)
        self._ack(s, p.OK)
