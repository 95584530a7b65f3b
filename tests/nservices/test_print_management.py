"""Print Management, dicomnet SCU <-> dicomnet SCP (PS3.4 Annex H).

A printer SCP keeps its film sessions, film boxes and image boxes in memory;
the SCU prints one film through the Basic Grayscale Print Management Meta SOP
Class. Around it: routing by the request's SOP class under a meta context,
what the meta class does not include (0118H), the operations of each SOP
class (0211H), the Print action (0123H), the printer's event types (0113H) and
the printer notifying its SCU on the meta context.
"""

from __future__ import annotations

import threading
from typing import Any

import pytest
from pydicom.dataset import Dataset
from pydicom.uid import generate_uid

from dicomnet import evt
from dicomnet.plugins.print_management import (
    ACTION_PRINT,
    BASIC_COLOR_IMAGE_BOX,
    BASIC_FILM_BOX,
    BASIC_FILM_SESSION,
    BASIC_GRAYSCALE_IMAGE_BOX,
    COLOR_META,
    GRAYSCALE_META,
    PRESENTATION_LUT,
    PRINT_JOB,
    PRINT_MANAGEMENT,
    PRINTER,
    PRINTER_INSTANCE,
)

from .conftest import WAIT, Established, associate, serve


class Printer:
    """A print SCP that 'prints' into a list (PS3.4 H.4)."""

    def __init__(self) -> None:
        self.sessions: dict[str, Dataset] = {}
        self.boxes: dict[str, Dataset] = {}
        self.image_boxes: dict[str, Dataset] = {}
        self.printed: list[list[Dataset]] = []

    def on_create(self, event: Any) -> Any:
        request = event.request
        sop_class = request.AffectedSOPClassUID
        uid = request.AffectedSOPInstanceUID or generate_uid()
        if sop_class == BASIC_FILM_SESSION:
            self.sessions[uid] = event.attribute_list
            answer = Dataset()
            answer.AffectedSOPInstanceUID = uid  # the UID the SCP chose
            return 0x0000, answer
        if sop_class == BASIC_FILM_BOX:
            box = event.attribute_list
            columns, rows = (int(n) for n in box.ImageDisplayFormat.split("\\")[1].split(","))
            references = []
            for _ in range(columns * rows):
                image_uid = generate_uid()
                self.image_boxes[image_uid] = Dataset()
                ref = Dataset()
                ref.ReferencedSOPClassUID = BASIC_GRAYSCALE_IMAGE_BOX
                ref.ReferencedSOPInstanceUID = image_uid
                references.append(ref)
            box.ReferencedImageBoxSequence = references
            self.boxes[uid] = box
            answer = Dataset()
            answer.AffectedSOPInstanceUID = uid
            answer.ImageDisplayFormat = box.ImageDisplayFormat
            answer.ReferencedImageBoxSequence = references
            return 0x0000, answer
        return 0x0000, None

    def on_set(self, event: Any) -> Any:
        uid = event.request.RequestedSOPInstanceUID
        if uid not in self.image_boxes:
            return 0x0112, None
        self.image_boxes[uid] = event.modification_list
        return 0x0000, None

    def on_action(self, event: Any) -> Any:
        box = self.boxes.get(event.request.RequestedSOPInstanceUID)
        if box is None:
            return 0x0112, None
        self.printed.append(
            [self.image_boxes[r.ReferencedSOPInstanceUID] for r in box.ReferencedImageBoxSequence]
        )
        return 0x0000, None

    def on_get(self, event: Any) -> Any:
        status = Dataset()
        status.PrinterStatus = "NORMAL"
        status.PrinterStatusInfo = "NORMAL"
        return 0x0000, status

    def on_delete(self, event: Any) -> int:
        uid = event.request.RequestedSOPInstanceUID
        if self.sessions.pop(uid, None) is None:
            return 0x0112
        return 0x0000

    def handlers(self) -> list[Any]:
        return [
            (evt.EVT_N_CREATE, self.on_create),
            (evt.EVT_N_SET, self.on_set),
            (evt.EVT_N_ACTION, self.on_action),
            (evt.EVT_N_GET, self.on_get),
            (evt.EVT_N_DELETE, self.on_delete),
        ]


@pytest.fixture
def printer() -> Printer:
    return Printer()


@pytest.fixture
def printing(make_ae: Any, printer: Printer) -> Any:
    scp = make_ae("PRINTER", supported=[GRAYSCALE_META, PRESENTATION_LUT])
    port = serve(scp, printer.handlers())
    scu = make_ae("MODALITY", requested=[GRAYSCALE_META, PRESENTATION_LUT])
    return associate(scu, port, "PRINTER")


def test_the_plugin_declares_the_print_sop_classes() -> None:
    assert {GRAYSCALE_META, COLOR_META, BASIC_FILM_SESSION, PRINTER} <= set(
        PRINT_MANAGEMENT.sop_classes
    )
    assert "PrintManagementPresentationContexts" in PRINT_MANAGEMENT.context_lists


def test_print_a_film_under_the_grayscale_meta_sop_class(
    printing: Any, printer: Printer
) -> None:
    session = Dataset()
    session.NumberOfCopies = 1
    session.MediumType = "PAPER"
    status, _ = printing.send_n_create(session, BASIC_FILM_SESSION, meta_uid=GRAYSCALE_META)
    assert status.Status == 0x0000
    session_uid = status.AffectedSOPInstanceUID
    assert session_uid in printer.sessions

    box = Dataset()
    box.ImageDisplayFormat = "STANDARD\\1,2"
    ref = Dataset()
    ref.ReferencedSOPClassUID = BASIC_FILM_SESSION
    ref.ReferencedSOPInstanceUID = session_uid
    box.ReferencedFilmSessionSequence = [ref]
    status, attributes = printing.send_n_create(box, BASIC_FILM_BOX, meta_uid=GRAYSCALE_META)
    assert status.Status == 0x0000
    box_uid = status.AffectedSOPInstanceUID
    image_boxes = attributes.ReferencedImageBoxSequence
    assert len(image_boxes) == 2

    for position, item in enumerate(image_boxes, 1):
        image = Dataset()
        image.ImageBoxPosition = position
        pixels = Dataset()
        pixels.SamplesPerPixel = 1
        pixels.PhotometricInterpretation = "MONOCHROME2"
        pixels.Rows = pixels.Columns = 2
        pixels.BitsAllocated = pixels.BitsStored = 8
        pixels.HighBit = 7
        pixels.PixelRepresentation = 0
        pixels.PixelData = bytes([position]) * 4
        image.BasicGrayscaleImageSequence = [pixels]
        status, _ = printing.send_n_set(
            image, BASIC_GRAYSCALE_IMAGE_BOX, item.ReferencedSOPInstanceUID,
            meta_uid=GRAYSCALE_META,
        )
        assert status.Status == 0x0000

    status, _ = printing.send_n_action(None, ACTION_PRINT, BASIC_FILM_BOX, box_uid,
                                       meta_uid=GRAYSCALE_META)
    assert status.Status == 0x0000 and status.ActionTypeID == ACTION_PRINT
    (film,) = printer.printed
    assert [image.ImageBoxPosition for image in film] == [1, 2]

    status, info = printing.send_n_get([0x21100010], PRINTER, PRINTER_INSTANCE,
                                       meta_uid=GRAYSCALE_META)
    assert status.Status == 0x0000 and info.PrinterStatus == "NORMAL"
    assert printing.send_n_delete(BASIC_FILM_SESSION, session_uid,
                                  meta_uid=GRAYSCALE_META).Status == 0x0000
    assert printer.sessions == {}


def test_what_the_meta_class_does_not_include(printing: Any, printer: Printer) -> None:
    """The grayscale meta class has no color image box, nor Print Job (0118H)."""
    status, _ = printing.send_n_set(Dataset(), BASIC_COLOR_IMAGE_BOX, generate_uid(),
                                    meta_uid=GRAYSCALE_META)
    assert status.Status == 0x0118
    status, _ = printing.send_n_get([], PRINT_JOB, generate_uid(), meta_uid=GRAYSCALE_META)
    assert status.Status == 0x0118


def test_each_sop_class_has_its_operations(printing: Any) -> None:
    uid = generate_uid()
    # a film session cannot be read, an image box cannot be created
    assert printing.send_n_get([], BASIC_FILM_SESSION, uid,
                               meta_uid=GRAYSCALE_META)[0].Status == 0x0211
    assert printing.send_n_create(Dataset(), BASIC_GRAYSCALE_IMAGE_BOX,
                                  meta_uid=GRAYSCALE_META)[0].Status == 0x0211
    # the Presentation LUT is created and deleted on its own context
    assert printing.send_n_create(Dataset(), PRESENTATION_LUT, uid)[0].Status == 0x0000
    assert printing.send_n_set(Dataset(), PRESENTATION_LUT, uid)[0].Status == 0x0211


def test_only_the_print_action(printing: Any, printer: Printer) -> None:
    status, _ = printing.send_n_action(None, 2, BASIC_FILM_BOX, generate_uid(),
                                       meta_uid=GRAYSCALE_META)
    assert status.Status == 0x0123
    assert printer.printed == []


def test_the_printer_notifies_its_scu(make_ae: Any, printer: Printer) -> None:
    """PS3.4 H.4: the Printer's N-EVENT-REPORT, on the meta context; event types 1-3."""
    seen: list[Any] = []
    arrived = threading.Event()

    def on_report(event: Any) -> Any:
        seen.append((event.event_type, event.request.AffectedSOPClassUID,
                     str(event.context.abstract_syntax)))
        arrived.set()
        return 0x0000, None

    established = Established()
    scp = make_ae("PRINTER", supported=[GRAYSCALE_META])
    port = serve(scp, [*printer.handlers(), established.binding()])
    scu = make_ae("MODALITY", requested=[GRAYSCALE_META])
    assoc = associate(scu, port, "PRINTER", evt_handlers=[(evt.EVT_N_EVENT_REPORT, on_report)])
    notifier = established.next()
    warning = Dataset()
    warning.PrinterStatusInfo = "SUPPLY LOW"
    status, _ = notifier.send_n_event_report(warning, 2, PRINTER, PRINTER_INSTANCE,
                                             meta_uid=GRAYSCALE_META)
    assert status.Status == 0x0000
    assert arrived.wait(WAIT) and seen == [(2, PRINTER, GRAYSCALE_META)]
    status, _ = notifier.send_n_event_report(None, 4, PRINTER, PRINTER_INSTANCE,
                                             meta_uid=GRAYSCALE_META)
    assert status.Status == 0x0113  # the printer has event types 1-3; 4 is a print job's
    assoc.release()
