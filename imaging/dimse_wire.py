"""DIMSE messages on the wire during the data transfer phase (PS3.8 9.3.5, PS3.7 6.3 and 9).

The Storage SCP (:mod:`imaging.dimse`) lets pynetdicom negotiate, release and
abort associations, but reads and answers the P-DATA-TF PDUs of an
established association itself: pynetdicom decodes every PDU into objects,
runs them through its state machine, joins the fragments of a data set in a
``BytesIO`` and decodes and encodes command sets through pydicom, which cost
about 1 ms of CPU per C-STORE (bench/README.md). Here a PDU's data set
fragments stay the slices of the buffer it was received into, a command set
is a handful of group 0000 elements read and written with :mod:`struct`, and
nothing is copied before the ingest path takes the file.

This module only knows bytes: :class:`MessageAssembler` turns the PDV items
of received P-DATA-TF PDUs into :class:`DimseRequest` objects, and
:func:`response_pdus` encodes a response command set into P-DATA-TF PDUs.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass, field

P_DATA_TF = 0x04

# Command Field values (PS3.7 E.1).
C_STORE_RQ = 0x0001
C_ECHO_RQ = 0x0030
RESPONSE_BIT = 0x8000
# Command Data Set Type: no data set follows the command (PS3.7 E.1).
NO_DATA_SET = 0x0101

# Group 0000 elements used here.
TAG_GROUP_LENGTH = 0x00000000
TAG_AFFECTED_SOP_CLASS = 0x00000002
TAG_COMMAND_FIELD = 0x00000100
TAG_MESSAGE_ID = 0x00000110
TAG_MESSAGE_ID_RESPONDED_TO = 0x00000120
TAG_DATA_SET_TYPE = 0x00000800
TAG_STATUS = 0x00000900
TAG_ERROR_COMMENT = 0x00000902
TAG_AFFECTED_SOP_INSTANCE = 0x00001000

_US_TAGS = {TAG_COMMAND_FIELD, TAG_MESSAGE_ID, TAG_MESSAGE_ID_RESPONDED_TO, TAG_DATA_SET_TYPE, TAG_STATUS}
_UI_TAGS = {TAG_AFFECTED_SOP_CLASS, TAG_AFFECTED_SOP_INSTANCE}
# Largest command set accepted: real ones are a few hundred bytes.
MAX_COMMAND_BYTES = 64 * 1024


class ProtocolError(Exception):
    """The peer broke the data transfer protocol; the association is aborted."""


@dataclass
class DimseRequest:
    """A complete request message: its command set and, if any, its data set's fragments."""

    context_id: int
    command: dict[int, bytes]
    fragments: list[memoryview] = field(default_factory=list)
    data_set_bytes: int = 0
    # Set when the data set grew over the size limit: its fragments were dropped as they came.
    oversized: bool = False

    @property
    def command_field(self) -> int:
        return self.us(TAG_COMMAND_FIELD)

    @property
    def message_id(self) -> int:
        return self.us(TAG_MESSAGE_ID)

    @property
    def has_data_set(self) -> bool:
        return self.us(TAG_DATA_SET_TYPE, NO_DATA_SET) != NO_DATA_SET

    def us(self, tag: int, default: int = 0) -> int:
        value = self.command.get(tag)
        if value is None:
            return default
        if len(value) != 2:
            raise ProtocolError(f"element ({tag >> 16:04X},{tag & 0xFFFF:04X}) is not a US value")
        return int(struct.unpack("<H", value)[0])

    def uid(self, tag: int) -> str:
        return self.command.get(tag, b"").rstrip(b"\0 ").decode("ascii", "replace")


def decode_command(data: bytes) -> dict[int, bytes]:
    """The elements of a command set (Implicit VR Little Endian, PS3.7 6.3.1), by tag."""
    elements: dict[int, bytes] = {}
    position, end = 0, len(data)
    while position < end:
        if end - position < 8:
            raise ProtocolError("the command set ends inside an element header")
        group, element, length = struct.unpack_from("<HHI", data, position)
        position += 8
        if group != 0x0000 or position + length > end:
            raise ProtocolError("the command set is malformed")
        elements[element] = bytes(data[position : position + length])
        position += length
    return elements


def encode_command(elements: dict[int, int | str]) -> bytes:
    """A command set with its group length: US values for ints, UI or LO text for strings."""
    body = bytearray()
    for tag in sorted(elements):
        value = elements[tag]
        if isinstance(value, int):
            encoded = struct.pack("<H", value)
        elif tag in _UI_TAGS:
            encoded = value.encode("ascii", "replace")
            encoded += b"\0" if len(encoded) % 2 else b""
        else:
            encoded = value.encode("ascii", "replace")
            encoded += b" " if len(encoded) % 2 else b""
        body += struct.pack("<HHI", 0, tag & 0xFFFF, len(encoded)) + encoded
    return struct.pack("<HHII", 0, 0, 4, len(body)) + bytes(body)


def response_pdus(context_id: int, command: bytes, max_pdu_length: int) -> Iterator[bytes]:
    """P-DATA-TF PDUs carrying *command* as command fragments, none longer than the peer accepts.

    *max_pdu_length* is the peer's Maximum Length (of a PDU's variable field);
    0 means no limit.
    """
    room = len(command) if max_pdu_length <= 0 else max(1, max_pdu_length - 6)
    position = 0
    while True:
        fragment = command[position : position + room]
        position += len(fragment)
        last = position >= len(command)
        item = struct.pack(">IBB", len(fragment) + 2, context_id, 0x03 if last else 0x01) + fragment
        yield struct.pack(">BBI", P_DATA_TF, 0, len(item)) + item
        if last:
            return


class MessageAssembler:
    """Collects the PDV items of P-DATA-TF PDUs into complete request messages.

    *contexts* are the accepted presentation context IDs; a data set larger
    than *max_data_set_bytes* is not kept (the request is marked
    ``oversized``), so a peer cannot fill the memory.
    """

    def __init__(self, contexts: set[int], max_data_set_bytes: int) -> None:
        self._contexts = contexts
        self._max_data_set_bytes = max_data_set_bytes
        self._command = bytearray()
        self._request: DimseRequest | None = None

    @property
    def receiving(self) -> bool:
        """Whether a message has begun and is not complete yet."""
        return self._request is not None or bool(self._command)

    def feed(self, body: bytearray) -> list[DimseRequest]:
        """Take the variable field of one P-DATA-TF PDU; return the requests it completes."""
        complete: list[DimseRequest] = []
        view = memoryview(body)
        position, end = 0, len(body)
        if end == 0:
            raise ProtocolError("a P-DATA-TF PDU without presentation data values")
        while position < end:
            if end - position < 6:
                raise ProtocolError("a PDV item ends inside its header")
            length, context_id, control = struct.unpack_from(">IBB", body, position)
            if length < 2 or position + 4 + length > end:
                raise ProtocolError("a PDV item's length does not fit its PDU")
            if context_id not in self._contexts:
                raise ProtocolError(f"presentation context {context_id} was not accepted")
            fragment = view[position + 6 : position + 4 + length]
            position += 4 + length
            if control & 0x01:
                request = self._command_fragment(context_id, control, fragment)
                if request is not None and not request.has_data_set:
                    complete.append(request)
            else:
                finished = self._data_fragment(context_id, control, fragment)
                if finished is not None:
                    complete.append(finished)
        return complete

    def _command_fragment(self, context_id: int, control: int, fragment: memoryview) -> DimseRequest | None:
        if self._request is not None:
            raise ProtocolError("a command arrived before the previous message's data set was complete")
        self._command += fragment
        if len(self._command) > MAX_COMMAND_BYTES:
            raise ProtocolError("the command set is too long")
        if not control & 0x02:
            return None
        elements = decode_command(bytes(self._command))
        self._command.clear()
        request = DimseRequest(context_id, elements)
        for tag in (TAG_COMMAND_FIELD, TAG_MESSAGE_ID):  # malformed, they are a protocol error
            request.us(tag)
        if request.has_data_set:
            self._request = request
        return request

    def _data_fragment(self, context_id: int, control: int, fragment: memoryview) -> DimseRequest | None:
        request = self._request
        if request is None:
            raise ProtocolError("a data set fragment arrived without a command")
        if context_id != request.context_id:
            raise ProtocolError("a data set fragment arrived on another presentation context than its command")
        request.data_set_bytes += len(fragment)
        if request.data_set_bytes > self._max_data_set_bytes:
            request.oversized = True
            request.fragments.clear()
        elif not request.oversized:
            request.fragments.append(fragment)
        if not control & 0x02:
            return None
        self._request = None
        return request
