"""R30x/ZFM fingerprint module driver over any ``Transport`` (serial port, pty, traced).

Every answer's checksum is verified; a non-zero confirmation code becomes ``DeviceReportedError``
with an English message; silence becomes ``DeviceTimeout``; garbled bytes ``ProtocolError``; a port
that vanishes ``DeviceUnplugged``. Recovery is automatic: before each command unread input is
discarded and the parser resynchronises on the next ``EF 01``; after an unplug the next command
reopens the port (through the factory given at construction) and verifies the password again.

Line rate: after the handshake the driver raises the module to ``max_baud`` (115,200 by default) with
SetSysPara parameter 4, when the adapter accepts that rate and the module acknowledges it; the module
answers at the old rate and listens at the new one from the next command, so the driver switches its
port after the acknowledgement and checks the new rate with ReadSysPara. Any refusal or silence
leaves (or puts) both ends back at the rate they had. The rate the module runs at is kept in
``self.baud`` (reconnects open at it) and reported through ``on_rate`` (the opener persists it).
"""

from __future__ import annotations

import contextlib
import logging
import struct
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from drivers.base import DeviceInfo, FingerImage, FingerprintScanner, ProgressFn
from drivers.errors import (
    DeviceError,
    DeviceNotFound,
    DeviceReportedError,
    DeviceTimeout,
    DeviceUnplugged,
    ProtocolError,
)
from drivers.r30x import protocol as p
from drivers.r30x.protocol import Instruction, LedColour, LedMode, SysParams
from drivers.transport.base import Transport

log = logging.getLogger(__name__)

DEFAULT_PACKET_TIMEOUT = 2.0
FINGER_POLL_INTERVAL = 0.05
MAX_STALE_PACKETS = (
    p.IMAGE_BYTES // 32 + 8
)  # the longest transfer there is, plus slack  # between GenImg attempts while waiting for a finger


@dataclass(frozen=True)
class SearchResult:
    page: int
    score: int


class R30xScanner(FingerprintScanner):
    """A connected R30x module. One thread owns it at a time (calls are serialised by a lock)."""

    simulator: Any = None  # the R30xSimulator behind a sim://r30x scanner, for tests and demos

    def __init__(
        self,
        transport_factory: Callable[[int], Transport],
        *,
        url: str,
        address: int = p.DEFAULT_ADDRESS,
        password: int = 0,
        packet_timeout: float = DEFAULT_PACKET_TIMEOUT,
        model: str = "R30x/ZFM fingerprint module",
        on_close: Callable[[], None] | None = None,
        baud: int = 57600,
        max_baud: int | None = None,
        on_rate: Callable[[int], None] | None = None,
    ) -> None:
        self.url = url
        self.baud = baud  # the rate the module listens at (as far as this driver knows)
        self.max_baud = max_baud  # raise the module to this after the handshake (None: leave it)
        self._on_rate = on_rate
        self.rate_note = ""  # why the rate was not raised, for ``info()`` and the logs
        self.address = address
        self.password = password
        self.packet_timeout = packet_timeout
        self.model = model
        self._factory = transport_factory
        self._transport: Transport | None = None
        self._parser = p.StreamParser()
        self._lock = threading.RLock()
        self._packet_size = 128
        self._params: SysParams | None = None
        self._on_close = on_close
        self._closed = False

    # -- connection ----------------------------------------------------------------------------------

    def connect(self) -> SysParams:
        """Open the port, verify the password, read the system parameters."""
        with self._lock:
            self._ensure_open()
            assert self._params is not None
            return self._params

    def _ensure_open(self) -> Transport:
        if self._closed:
            raise DeviceUnplugged("The scanner was closed: open it again.")
        if self._transport is not None:
            return self._transport
        try:
            self._transport = self._factory(self.baud)
        except DeviceNotFound as exc:
            if self._params is None:
                raise
            # it was connected before: the port vanished with the cable
            raise DeviceUnplugged(f"Scanner unplugged ({self.url}): reconnect it and press Retry.") from exc
        self._parser.clear()
        try:
            if not self._verify_password_locked(self.password):
                raise DeviceReportedError(0x13, p.confirmation_message(0x13))
            self._params = self._read_sys_params_locked()
        except DeviceError:
            self._drop_transport()
            raise
        self._rate_is(self.baud)  # it answers here: the rate to try first next time
        if self.max_baud is not None and self.max_baud > self.baud:
            self._raise_baud_locked(self.max_baud)
        assert self._transport is not None
        return self._transport

    def _raise_baud_locked(self, target: int) -> None:
        """Move module and port to ``target``; on any error both stay at (or return to) ``self.baud``."""
        old = self.baud
        transport = self._transport
        assert transport is not None
        try:  # does the adapter do this rate? (a USB-serial chip may refuse it at tcsetattr)
            transport.set_baud(target)
            transport.set_baud(old)
        except DeviceError as exc:
            self.rate_note = f"the adapter refused {target} baud ({exc})"
            log.info("r30x.rate_kept baud=%d reason=adapter", old)
            with contextlib.suppress(DeviceError):
                transport.set_baud(old)
            return
        try:
            self._set_sys_para(p.SysParam.BAUD, p.baud_code(target))  # acknowledged at the old rate
        except DeviceReportedError as exc:
            self.rate_note = f"the module refused {target} baud ({exc})"
            log.info("r30x.rate_kept baud=%d reason=refused", old)
            return
        except DeviceError as exc:
            # no acknowledgement: the module may or may not have switched; find out at the old rate
            if self._answers_at(transport, old) or not self._answers_at(transport, target):
                self.rate_note = f"no answer to the rate change ({exc})"
                with contextlib.suppress(DeviceError):
                    transport.set_baud(old)
                return
            self._rate_is(target)
            return
        if self._answers_at(transport, target):
            self._rate_is(target)
            return
        # it acknowledged but cannot be reached at the new rate: undo on the module, at the rate it has
        log.warning("r30x.rate_unreachable baud=%d", target)
        with contextlib.suppress(DeviceError):
            transport.set_baud(old)
        if self._answers_at(transport, old):  # it never switched after all
            self.rate_note = f"the module did not answer at {target} baud"
            return
        with contextlib.suppress(DeviceError):
            transport.set_baud(target)
            self._set_sys_para(p.SysParam.BAUD, p.baud_code(old))
            transport.set_baud(old)
            if self._answers_at(transport, old):
                self.rate_note = f"the module did not answer at {target} baud"
                return
        self._drop_transport()
        raise DeviceTimeout(
            f"The scanner stopped answering after a baud-rate change to {target}: unplug it, plug it in"
            " again and press Retry.",
            code="device.timeout.baud",
        )

    def _answers_at(self, transport: Transport, baud: int) -> bool:
        try:
            transport.set_baud(baud)
            self._read_sys_params_locked()
        except DeviceError:
            return False
        return True

    def _rate_is(self, baud: int) -> None:
        if baud != self.baud:
            log.info("r30x.rate baud=%d", baud)
        self.baud = baud
        self.rate_note = ""
        if self._on_rate is not None:
            self._on_rate(baud)

    def _drop_transport(self) -> None:
        transport, self._transport = self._transport, None
        if transport is not None:
            transport.close()

    def reconnect(self) -> SysParams:
        """Close and reopen the port (after an unplug, or a baud change on the module)."""
        with self._lock:
            self._drop_transport()
            return self.connect()

    def close(self) -> None:
        with self._lock:
            self._drop_transport()
            self._closed = True
            on_close, self._on_close = self._on_close, None
        if on_close is not None:
            on_close()

    # -- packets -------------------------------------------------------------------------------------

    def _read_packet(self, transport: Transport, timeout: float) -> p.Packet:
        deadline = time.monotonic() + timeout
        while True:
            packet = self._parser.next_packet()  # ProtocolError propagates; parser already resynced
            if packet is not None:
                if self._parser.skipped:
                    log.warning("r30x.resync skipped=%d", self._parser.skipped)
                    self._parser.skipped = 0
                if packet.address != self.address:
                    raise ProtocolError(
                        f"Answer from module address {packet.address:#010x}, expected {self.address:#010x}."
                    )
                return packet
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                if self._parser.skipped:
                    skipped, self._parser.skipped = self._parser.skipped, 0
                    raise ProtocolError(
                        f"The scanner answered with {skipped} unreadable bytes: check the baud rate in the "
                        "device URL (usually 57600) and the cable, then press Retry."
                    )
                raise DeviceTimeout(
                    "The scanner did not answer in time: check the cable and press Retry."
                    if self._parser.pending() == 0
                    else "The scanner's answer stopped halfway: press Retry; if it repeats, check the cable."
                )
            need = max(1, self._needed())
            data = transport.read(need, remaining)
            self._parser.feed(data)

    def _needed(self) -> int:
        pending = self._parser.pending()
        if pending < p.HEADER_LEN:
            return p.HEADER_LEN - pending
        header = self._parser.peek(p.HEADER_LEN)
        if header[:2] != p.HEADER:
            return 1
        length = int.from_bytes(header[7:9], "big")
        return max(1, p.HEADER_LEN + length - pending)

    def _exchange(self, command: bytes, timeout: float | None) -> tuple[Transport, p.Packet]:
        transport = self._ensure_open()
        try:
            transport.flush_input()
            self._parser.clear()
            transport.write(command)
            packet = self._read_packet(transport, timeout or self.packet_timeout)
            stale = 0
            while packet.type in (p.PacketType.DATA, p.PacketType.END_DATA) and stale < MAX_STALE_PACKETS:
                # the tail of a transfer abandoned after an error: skip it, the answer follows
                stale += 1
                packet = self._read_packet(transport, timeout or self.packet_timeout)
            if stale:
                log.warning("r30x.stale_data_packets skipped=%d", stale)
        except DeviceUnplugged:
            self._drop_transport()
            raise
        if packet.type != p.PacketType.ACK or not packet.payload:
            raise ProtocolError(f"Expected an acknowledge packet, got packet id {packet.type:#04x}.")
        return transport, packet

    def _command(
        self,
        instruction: int,
        params: bytes = b"",
        *,
        ok: tuple[int, ...] = (p.OK,),
        timeout: float | None = None,
    ) -> tuple[int, bytes]:
        """Send one command; return (confirmation code, data) or raise for a code not in ``ok``."""
        _, packet = self._exchange(p.build_command(instruction, params, self.address), timeout)
        code, data = packet.payload[0], packet.payload[1:]
        if code not in ok:
            log.info("r30x.reported instruction=%#04x code=%#04x", instruction, code)
            raise DeviceReportedError(code, p.confirmation_message(code))
        return code, data

    def _receive_data(self, transport: Transport, total: int | None, progress: ProgressFn | None) -> bytes:
        out = bytearray()
        count = 0
        limit = (p.IMAGE_BYTES // 32) + 8  # bounded: never more packets than the smallest size needs
        try:
            while count < limit:
                packet = self._read_packet(transport, self.packet_timeout)
                if packet.type not in (p.PacketType.DATA, p.PacketType.END_DATA):
                    raise ProtocolError(f"Expected a data packet, got packet id {packet.type:#04x}.")
                out += packet.payload
                count += 1
                if progress is not None and total is not None:
                    progress(min(count, total), total)
                if packet.type == p.PacketType.END_DATA:
                    return bytes(out)
        except DeviceUnplugged:
            self._drop_transport()
            raise
        raise ProtocolError("The scanner sent more data packets than an image holds.")

    def _send_data(self, transport: Transport, data: bytes) -> None:
        try:
            for packet_type, chunk in p.split_data(data, self._packet_size):
                transport.write(p.build_packet(packet_type, chunk, self.address))
        except DeviceUnplugged:
            self._drop_transport()
            raise

    # -- the instruction set -------------------------------------------------------------------------

    def handshake(self) -> None:
        with self._lock:
            self._command(Instruction.HANDSHAKE)

    def _verify_password_locked(self, password: int) -> bool:
        code, _ = self._command(Instruction.VFY_PWD, struct.pack(">I", password), ok=(p.OK, 0x13))
        return code == p.OK

    def verify_password(self, password: int | None = None) -> bool:
        """True when the module accepts ``password`` (default: the one given at open)."""
        with self._lock:
            self._ensure_open()
            return self._verify_password_locked(self.password if password is None else password)

    def set_password(self, password: int) -> None:
        with self._lock:
            self._command(Instruction.SET_PWD, struct.pack(">I", password))
            self.password = password

    def _read_sys_params_locked(self) -> SysParams:
        _, data = self._command(Instruction.READ_SYS_PARA)
        params = SysParams.from_bytes(data[:16])
        self._params = params
        self._packet_size = params.packet_size
        return params

    def read_sys_params(self) -> SysParams:
        with self._lock:
            self._ensure_open()
            return self._read_sys_params_locked()

    def _set_sys_para(self, param: int, value: int) -> None:
        self._command(Instruction.SET_SYS_PARA, bytes([param, value]))

    def set_baud(self, baud: int) -> None:
        """Change the module's baud rate (9600 x N), then follow it on this side."""
        code = p.baud_code(baud)
        with self._lock:
            self._set_sys_para(p.SysParam.BAUD, code)
            if self._transport is not None:
                self._transport.set_baud(baud)
            self._read_sys_params_locked()
            self._rate_is(baud)

    def set_security_level(self, level: int) -> None:
        if not 1 <= level <= 5:
            raise ValueError(f"security level {level} is not in 1..5")
        with self._lock:
            self._set_sys_para(p.SysParam.SECURITY_LEVEL, level)
            self._read_sys_params_locked()

    def set_packet_size(self, size: int) -> None:
        code = p.packet_size_code(size)
        with self._lock:
            self._set_sys_para(p.SysParam.PACKET_SIZE, code)
            self._read_sys_params_locked()

    def gen_img(self) -> bool:
        """Take an image into the module's buffer: True, or False when no finger is on the glass."""
        with self._lock:
            code, _ = self._command(Instruction.GEN_IMG, ok=(p.OK, p.NO_FINGER))
            return code == p.OK

    def up_image(self, progress: ProgressFn | None = None) -> bytes:
        """Upload the image buffer: 36,864 packed bytes; ``progress(packets_done, packets_total)``."""
        with self._lock:
            transport, packet = self._exchange(p.build_command(Instruction.UP_IMAGE, b"", self.address), None)
            code = packet.payload[0]
            if code != p.OK:
                raise DeviceReportedError(code, p.confirmation_message(code))
            data = self._receive_data(transport, p.IMAGE_BYTES // self._packet_size, progress)
            if len(data) != p.IMAGE_BYTES:
                raise ProtocolError(f"Image upload was {len(data)} bytes, expected {p.IMAGE_BYTES}.")
            return data

    def down_image(self, pixels: np.ndarray[Any, np.dtype[np.uint8]]) -> None:
        """Download a 288x256 image into the module's image buffer."""
        with self._lock:
            self._command(Instruction.DOWN_IMAGE)
            assert self._transport is not None
            self._send_data(self._transport, p.pack_image(pixels))

    def img2tz(self, buffer: int = 1) -> None:
        with self._lock:
            self._command(Instruction.IMG2TZ, bytes([buffer]), timeout=max(self.packet_timeout, 5.0))

    def reg_model(self) -> None:
        with self._lock:
            self._command(Instruction.REG_MODEL, timeout=max(self.packet_timeout, 5.0))

    def store(self, page: int, buffer: int = 1) -> None:
        with self._lock:
            self._command(Instruction.STORE, struct.pack(">BH", buffer, page))

    def load_char(self, page: int, buffer: int = 1) -> None:
        with self._lock:
            self._command(Instruction.LOAD_CHAR, struct.pack(">BH", buffer, page))

    def up_char(self, buffer: int = 1) -> bytes:
        """Upload a character buffer (the template bytes)."""
        with self._lock:
            transport, packet = self._exchange(
                p.build_command(Instruction.UP_CHAR, bytes([buffer]), self.address), None
            )
            code = packet.payload[0]
            if code != p.OK:
                raise DeviceReportedError(code, p.confirmation_message(code))
            return self._receive_data(transport, None, None)

    def down_char(self, data: bytes, buffer: int = 1) -> None:
        with self._lock:
            self._command(Instruction.DOWN_CHAR, bytes([buffer]))
            assert self._transport is not None
            self._send_data(self._transport, data)

    def delete_char(self, page: int, count: int = 1) -> None:
        with self._lock:
            self._command(Instruction.DELETE_CHAR, struct.pack(">HH", page, count))

    def empty(self) -> None:
        with self._lock:
            self._command(Instruction.EMPTY)

    def search(self, buffer: int = 1, start: int = 0, count: int | None = None) -> SearchResult | None:
        """The best stored template matching ``buffer``, or None."""
        with self._lock:
            if count is None:
                count = (self._params.library_size if self._params else 1000) - start
            code, data = self._command(
                Instruction.SEARCH,
                struct.pack(">BHH", buffer, start, count),
                ok=(p.OK, p.NOT_FOUND),
                timeout=max(self.packet_timeout, 5.0),
            )
            if code != p.OK:
                return None
            page, score = struct.unpack(">HH", data[:4])
            return SearchResult(page, score)

    def match(self) -> int:
        """Score of character buffer 1 against buffer 2; 0 when they do not match."""
        with self._lock:
            code, data = self._command(
                Instruction.MATCH, ok=(p.OK, p.NO_MATCH), timeout=max(self.packet_timeout, 5.0)
            )
            return int(struct.unpack(">H", data[:2])[0]) if code == p.OK else 0

    def template_count(self) -> int:
        with self._lock:
            _, data = self._command(Instruction.TEMPLATE_NUM)
            return int(struct.unpack(">H", data[:2])[0])

    def read_index_table(self, page: int = 0) -> list[int]:
        """Occupied template numbers in index page ``page`` (256 templates each)."""
        with self._lock:
            _, data = self._command(Instruction.READ_INDEX_TABLE, bytes([page]))
            return [
                page * 256 + byte_no * 8 + bit
                for byte_no, byte in enumerate(data[:32])
                for bit in range(8)
                if byte >> bit & 1
            ]

    def led_control(
        self,
        mode: LedMode | int = LedMode.ON,
        colour: LedColour | int = LedColour.BLUE,
        speed: int = 0,
        count: int = 0,
    ) -> None:
        """R503 ring LED (AuraLedConfig)."""
        with self._lock:
            self._command(Instruction.AURA_LED_CONFIG, bytes([int(mode), speed, int(colour), count]))

    # -- FingerprintScanner --------------------------------------------------------------------------

    def info(self) -> DeviceInfo:
        params = self.read_sys_params()
        return DeviceInfo(
            url=self.url,
            kind="fingerprint",
            model=self.model,
            details={
                "address": f"{params.address:#010x}",
                "library_size": str(params.library_size),
                "security_level": str(params.security_level),
                "packet_size": str(params.packet_size),
                "baud": str(params.baud),
                **({"baud_note": self.rate_note} if self.rate_note else {}),
                "system_id": f"{params.system_id:#06x}",
                "status": f"{params.status:#06x}",
            },
        )

    def finger_present(self) -> bool:
        return self.gen_img()

    def capture(self, *, timeout: float = 10.0, progress: ProgressFn | None = None) -> FingerImage:
        deadline = time.monotonic() + timeout
        with self._lock:
            while not self.gen_img():
                if time.monotonic() >= deadline:
                    raise DeviceTimeout(
                        f"No finger on the scanner within {timeout:g} s: place a finger and press Retry.",
                        code="device.timeout.no_finger",
                    )
                time.sleep(FINGER_POLL_INTERVAL)
            data = self.up_image(progress)
        return FingerImage(pixels=p.unpack_image(data), ppi=500)
