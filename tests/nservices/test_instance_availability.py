"""Instance Availability Notification, dicomnet SCU <-> dicomnet SCP (PS3.4 Annex R); and the
registration of the DIMSE-N built-in plugins."""

from __future__ import annotations

from typing import Any

import pytest
from pydicom.dataset import Dataset
from pydicom.uid import generate_uid

from dicomnet import evt
from dicomnet.plugin_manager import BUILTIN_PLUGINS, ServiceRegistry, make_plugin_manager
from dicomnet.plugins.instance_availability import (
    INSTANCE_AVAILABILITY_NOTIFICATION,
    availability_notification,
)

from .conftest import associate, serve

IAN = INSTANCE_AVAILABILITY_NOTIFICATION
CT = "1.2.840.10008.5.1.4.1.1.2"
STUDY = "1.2.826.0.1.3680043.8.498.99001"


def instance(series: int, number: int) -> Dataset:
    ds = Dataset()
    ds.StudyInstanceUID = STUDY
    ds.SeriesInstanceUID = f"{STUDY}.{series}"
    ds.SOPClassUID = CT
    ds.SOPInstanceUID = f"{STUDY}.{series}.{number}"
    return ds


def test_notification_from_archive_to_information_system(make_ae: Any) -> None:
    received: list[Dataset] = []

    def on_create(event: Any) -> Any:
        received.append(event.attribute_list)
        return 0x0000, None

    ris = make_ae("RIS", supported=[IAN])
    port = serve(ris, [(evt.EVT_N_CREATE, on_create)])
    archive = make_ae("ARCHIVE", requested=[IAN])
    assoc = associate(archive, port, "RIS")
    notification = availability_notification(
        [instance(1, 1), instance(1, 2), instance(2, 1)],
        "ARCHIVE",
        performed_procedure_steps=[("1.2.840.10008.3.1.2.3.3", generate_uid())],
    )
    uid = generate_uid()
    status, attributes = assoc.send_n_create(notification, IAN, uid)
    assert status.Status == 0x0000 and status.AffectedSOPInstanceUID == uid
    assert attributes == Dataset()
    got = received[0]
    assert got.StudyInstanceUID == STUDY
    assert [s.SeriesInstanceUID for s in got.ReferencedSeriesSequence] == [
        f"{STUDY}.1", f"{STUDY}.2"
    ]
    first = got.ReferencedSeriesSequence[0].ReferencedSOPSequence[1]
    assert first.ReferencedSOPInstanceUID == f"{STUDY}.1.2"
    assert first.InstanceAvailability == "ONLINE" and first.RetrieveAETitle == "ARCHIVE"
    assert len(got.ReferencedPerformedProcedureStepSequence) == 1
    # N-CREATE is the only operation of the SOP class (PS3.4 R.3.1)
    assert assoc.send_n_set(notification, IAN, uid)[0].Status == 0x0211
    assoc.release()


def test_the_handler_status_and_its_failures(make_ae: Any) -> None:
    answers: list[Any] = [(0x0106, None), RuntimeError("no")]

    def on_create(event: Any) -> Any:
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    ris = make_ae("RIS", supported=[IAN])
    port = serve(ris, [(evt.EVT_N_CREATE, on_create)])
    archive = make_ae("ARCHIVE", requested=[IAN])
    assoc = associate(archive, port, "RIS")
    notification = availability_notification([instance(1, 1)], "ARCHIVE")
    assert assoc.send_n_create(notification, IAN, generate_uid())[0].Status == 0x0106
    assert assoc.send_n_create(notification, IAN, generate_uid())[0].Status == 0x0110
    assoc.release()


def test_a_notification_is_about_one_study() -> None:
    other = instance(1, 1)
    other.StudyInstanceUID = "1.2.3"
    with pytest.raises(ValueError, match="one study"):
        availability_notification([instance(1, 1), other], "ARCHIVE")
    with pytest.raises(ValueError):
        availability_notification([], "ARCHIVE")


# -- registration ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("plugin", "service", "keywords"),
    [
        ("procedure_step", "procedure_step", {
            "ModalityPerformedProcedureStep", "ModalityPerformedProcedureStepRetrieve",
            "ModalityPerformedProcedureStepNotification",
        }),
        ("storage_commitment", "storage_commitment", {"StorageCommitmentPushModel"}),
        ("instance_availability", "instance_availability", {"InstanceAvailabilityNotification"}),
        ("unified_procedure_step", "unified_procedure_step", {
            "UnifiedProcedureStepPush", "UnifiedProcedureStepPull", "UnifiedProcedureStepWatch",
            "UnifiedProcedureStepEvent", "UnifiedProcedureStepQuery",
        }),
        ("print_management", "print_management", {
            "BasicFilmSession", "BasicFilmBox", "BasicGrayscaleImageBox", "BasicColorImageBox",
            "BasicGrayscalePrintManagementMeta", "BasicColorPrintManagementMeta", "PrintJob",
            "BasicAnnotationBox", "Printer", "PrinterConfigurationRetrieval", "VOILUTBox",
            "PresentationLUT",
        }),
        ("application_event_logging", "application_event_logging", {
            "ProceduralEventLogging", "SubstanceAdministrationLogging",
        }),
        ("display_system", "display_system", {"DisplaySystem"}),
        ("media_creation", "media_creation", {"MediaCreationManagement"}),
    ],
)
def test_the_n_service_plugins_are_built_in(plugin: str, service: str, keywords: set[str]) -> None:
    assert plugin in BUILTIN_PLUGINS
    registry = ServiceRegistry.from_plugin_manager(make_plugin_manager([plugin]))
    assert {registry.all_sop_classes()[uid] for uid in registry} == keywords
    for uid in registry:
        assert registry.service_for(uid).name == service  # type: ignore[union-attr]
        assert registry.plugin_for(uid) == plugin
    blocked = ServiceRegistry.from_plugin_manager(make_plugin_manager(block=[plugin]))
    assert not any(uid in blocked for uid in registry)
