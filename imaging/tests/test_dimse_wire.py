"""The data transfer phase on the wire, held to pynetdicom's own encoders and pydicom's decoder."""

from __future__ import annotations

import struct
from io import BytesIO

import pytest
from pydicom.dataset import Dataset
from pydicom.filereader import read_dataset
from pynetdicom.dimse_messages import C_ECHO_RQ, C_STORE_RQ
from pynetdicom.dimse_primitives import C_ECHO, C_STORE
from pynetdicom.pdu import P_DATA_TF

from imaging.dimse_wire import (
    NO_DATA_SET,
    TAG_AFFECTED_SOP_CLASS,
    TAG_AFFECTED_SOP_INSTANCE,
    TAG_COMMAND_FIELD,
    TAG_DATA_SET_TYPE,
    TAG_ERROR_COMMENT,
    TAG_MESSAGE_ID_RESPONDED_TO,
    TAG_STATUS,
    MessageAssembler,
    ProtocolError,
    encode_command,
    response_pdus,
)

CT = "1.2.840.10008.5.1.4.1.1.2"
VERIFICATION = "1.2.840.10008.1.1"


def pynetdicom_pdus(message, primitive, context_id: int, max_pdu: int) -> list[bytes]:
    """The P-DATA-TF PDUs pynetdicom sends for *primitive*, as bytes."""
    message.primitive_to_message(primitive)
    pdus = []
    for p_data in message.encode_msg(context_id, max_pdu):
        pdu = P_DATA_TF()
        pdu.from_primitive(p_data)
        pdus.append(pdu.encode())
    return pdus


def store_request_pdus(data_set: bytes, max_pdu: int, context_id: int = 3) -> list[bytes]:
    request = C_STORE()
    request.MessageID = 7
    request.AffectedSOPClassUID = CT
    request.AffectedSOPInstanceUID = "1.2.3.4.5"
    request.Priority = 2
    request.DataSet = BytesIO(data_set)
    return pynetdicom_pdus(C_STORE_RQ(), request, context_id, max_pdu)


def body(pdu: bytes) -> bytearray:
    pdu_type, _, length = struct.unpack(">BBI", pdu[:6])
    assert (pdu_type, length) == (0x04, len(pdu) - 6)
    return bytearray(pdu[6:])


@pytest.mark.parametrize("max_pdu", [0, 16384, 1000])
def test_a_c_store_request_in_any_number_of_fragments_is_assembled_whole(max_pdu: int) -> None:
    data_set = bytes(range(256)) * 40  # 10 KiB
    assembler = MessageAssembler({1, 3}, max_data_set_bytes=1 << 20)
    complete = []
    pdus = store_request_pdus(data_set, max_pdu)
    for pdu in pdus:
        complete += assembler.feed(body(pdu))
    assert (len(pdus) > 2) == (max_pdu == 1000)
    (request,) = complete
    assert (request.context_id, request.command_field, request.message_id) == (3, 0x0001, 7)
    assert request.uid(TAG_AFFECTED_SOP_CLASS) == CT
    assert request.uid(TAG_AFFECTED_SOP_INSTANCE) == "1.2.3.4.5"
    assert request.has_data_set and not request.oversized
    assert b"".join(request.fragments) == data_set
    assert request.data_set_bytes == len(data_set)


def test_a_c_echo_is_complete_with_its_command() -> None:
    echo = C_ECHO()
    echo.MessageID = 9
    echo.AffectedSOPClassUID = VERIFICATION
    assembler = MessageAssembler({1}, max_data_set_bytes=1 << 20)
    (pdu,) = pynetdicom_pdus(C_ECHO_RQ(), echo, 1, 16384)
    (request,) = assembler.feed(body(pdu))
    assert (request.command_field, request.message_id, request.has_data_set) == (0x0030, 9, False)


def test_a_data_set_over_the_limit_is_marked_and_not_kept() -> None:
    assembler = MessageAssembler({3}, max_data_set_bytes=4000)
    complete = []
    for pdu in store_request_pdus(b"\0" * 10_000, 1000):
        complete += assembler.feed(body(pdu))
    (request,) = complete
    assert request.oversized
    assert request.fragments == []
    assert request.data_set_bytes == 10_000


def pdv(context_id: int, control: int, fragment: bytes) -> bytes:
    return struct.pack(">IBB", len(fragment) + 2, context_id, control) + fragment


@pytest.mark.parametrize(
    ("items", "why"),
    [
        (pdv(1, 0x02, b"data"), "without a command"),
        (pdv(5, 0x03, b""), "presentation context 5 was not accepted"),
        (struct.pack(">IBB", 100, 1, 0x03) + b"short", "does not fit"),
        (b"\0\0", "ends inside its header"),
        (b"", "without presentation data values"),
        (pdv(1, 0x03, b"\x08\x00\x00\x00\x02\x00\x00\x00\x01\x00"), "malformed"),
        (pdv(1, 0x03, bytes.fromhex("000010010400000030000000")), r"\(0000,0110\) is not a US value"),
    ],
)
def test_a_broken_pdu_is_a_protocol_error(items: bytes, why: str) -> None:
    with pytest.raises(ProtocolError, match=why):
        MessageAssembler({1}, max_data_set_bytes=1 << 20).feed(bytearray(items))


def test_a_command_before_the_data_set_ended_is_a_protocol_error() -> None:
    assembler = MessageAssembler({3}, max_data_set_bytes=1 << 20)
    first, *_rest = store_request_pdus(b"\0" * 3000, 1000)
    assembler.feed(body(first))  # the command; its data set has not come
    with pytest.raises(ProtocolError, match="before the previous message's data set was complete"):
        assembler.feed(body(first))


def decode(command: bytes) -> Dataset:
    return read_dataset(BytesIO(command), is_implicit_VR=True, is_little_endian=True)


def test_a_response_command_is_what_pydicom_reads() -> None:
    command = encode_command(
        {
            TAG_COMMAND_FIELD: 0x8001,
            TAG_MESSAGE_ID_RESPONDED_TO: 7,
            TAG_DATA_SET_TYPE: NO_DATA_SET,
            TAG_STATUS: 0xC001,
            TAG_ERROR_COMMENT: "already stored with different contents",
            TAG_AFFECTED_SOP_CLASS: CT,
            TAG_AFFECTED_SOP_INSTANCE: "1.2.3.4.5",  # odd length: padded with NUL
        }
    )
    ds = decode(command)
    assert ds.CommandGroupLength == len(command) - 12
    assert (ds.CommandField, ds.MessageIDBeingRespondedTo, ds.CommandDataSetType) == (0x8001, 7, 0x0101)
    assert (ds.Status, ds.ErrorComment) == (0xC001, "already stored with different contents")
    assert (ds.AffectedSOPClassUID, ds.AffectedSOPInstanceUID) == (CT, "1.2.3.4.5")
    assert [element.tag for element in ds] == sorted(element.tag for element in ds)


@pytest.mark.parametrize("max_pdu", [0, 16384, 40])
def test_a_response_fits_the_peers_maximum_pdu_length(max_pdu: int) -> None:
    command = encode_command({TAG_COMMAND_FIELD: 0x8030, TAG_MESSAGE_ID_RESPONDED_TO: 1, TAG_STATUS: 0})
    pdus = list(response_pdus(5, command, max_pdu))
    fragments = []
    for number, pdu in enumerate(pdus, start=1):
        decoded = P_DATA_TF()
        decoded.decode(pdu)
        assert max_pdu == 0 or len(pdu) - 6 <= max_pdu
        (item,) = decoded.presentation_data_value_items
        context_id, value = item.context_id, item.data
        assert context_id == 5
        assert value[0] == (0x03 if number == len(pdus) else 0x01)  # command; last only on the last
        fragments.append(value[1:])
    assert (len(pdus) > 1) == (max_pdu == 40)
    assert b"".join(fragments) == command


def test_the_assembler_says_whether_a_message_is_still_arriving() -> None:
    assembler = MessageAssembler({3}, 1 << 20)
    assert not assembler.receiving
    pdus = store_request_pdus(b"\x08\x00\x18\x00" + b"\x00" * 3000, max_pdu=1024)
    for pdu in pdus[:-1]:
        assert assembler.feed(body(pdu)) == []
        assert assembler.receiving  # the SCP reads the next PDU at once
    (request,) = assembler.feed(body(pdus[-1]))
    assert not assembler.receiving
    assert request.data_set_bytes == 3004
