"""dicomnet.sop_class: generated from PS3.6, compatible with pynetdicom 3.0.4's names.

The pynetdicom side is the committed fixture tests/fixtures/pynetdicom/reference.json
(written by tests/fixtures/pynetdicom/dump_reference.py in the reference venv), so
these tests do not need pynetdicom.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pydicom.uid import UID, UID_dictionary

from dicomnet import _sop_groups, plugin_manager, sop_class
from dicomnet.sop_class import SOPClass

REFERENCE = json.loads(
    (Path(__file__).parent / "fixtures" / "pynetdicom" / "reference.json").read_text()
)

#: pynetdicom's service class of each of our groups
PYNETDICOM_SERVICE_CLASS = {
    "verification": "VerificationServiceClass",
    "storage": "StorageServiceClass",
    "non_patient_object_storage": "NonPatientObjectStorageServiceClass",
    "media_storage": "ServiceClass",  # pynetdicom has no Media Storage service class
    "query_retrieve": "QueryRetrieveServiceClass",
    "basic_worklist": "BasicWorklistManagementServiceClass",
    "procedure_step": "ProcedureStepServiceClass",
    "print_management": "PrintManagementServiceClass",
    "storage_commitment": "StorageCommitmentServiceClass",
    "application_event_logging": "ApplicationEventLoggingServiceClass",
    "relevant_patient_query": "RelevantPatientInformationQueryServiceClass",
    "instance_availability": "InstanceAvailabilityNotificationServiceClass",
    "media_creation": "MediaCreationManagementServiceClass",
    "hanging_protocol_qr": "HangingProtocolQueryRetrieveServiceClass",
    "substance_administration_query": "SubstanceAdministrationQueryServiceClass",
    "color_palette_qr": "ColorPaletteQueryRetrieveServiceClass",
    "implant_template_qr": "ImplantTemplateQueryRetrieveServiceClass",
    "unified_procedure_step": "UnifiedProcedureStepServiceClass",
    "rt_machine_verification": "RTMachineVerificationServiceClass",
    "display_system": "DisplaySystemManagementServiceClass",
    "defined_procedure_protocol_qr": "DefinedProcedureProtocolQueryRetrieveServiceClass",
    "protocol_approval_qr": "ProtocolApprovalQueryRetrieveServiceClass",
    "inventory_qr": "InventoryQueryRetrieveServiceClass",
    "storage_management": "StorageManagementServiceClass",
}


@pytest.fixture(autouse=True)
def _fresh_default_registry() -> Iterator[None]:
    plugin_manager.reset_default_registry()
    yield
    plugin_manager.reset_default_registry()


def test_every_pynetdicom_sop_class_exists_with_the_same_uid() -> None:
    for name, uid in REFERENCE["sop_classes"].items():
        value = getattr(sop_class, name)
        assert value == uid, name
        assert isinstance(value, SOPClass), name


def test_every_pynetdicom_well_known_instance_exists() -> None:
    for name, uid in REFERENCE["sop_instances"].items():
        value = getattr(sop_class, name)
        assert value == uid and isinstance(value, UID) and not isinstance(value, SOPClass), name


def test_aliases_are_exactly_pynetdicoms_non_ps36_names() -> None:
    """The alias map is what the comparison with pynetdicom finds, no more, no less."""
    keywords = {v[4] for v in UID_dictionary.values()} | {
        kw for _, _, kw in _sop_groups.SUPPLEMENT.values()
    }
    not_ps36 = {name for name in REFERENCE["sop_classes"] if name not in keywords}
    assert set(_sop_groups.PYNETDICOM_ALIASES) == not_ps36
    for alias, keyword in _sop_groups.PYNETDICOM_ALIASES.items():
        assert getattr(sop_class, alias) is getattr(sop_class, keyword)
        assert getattr(sop_class, alias) == REFERENCE["sop_classes"][alias]


def test_names_are_generated_from_the_uid_dictionary() -> None:
    rows = [
        (uid, row[4]) for uid, row in UID_dictionary.items()
        if row[1] in ("SOP Class", "Meta SOP Class") and row[4]
    ]
    assert len(rows) > 250
    for uid, keyword in rows:
        value = getattr(sop_class, keyword)
        assert value == uid and value.keyword == keyword, keyword
    assert sop_class.CTImageStorage.name == "CT Image Storage"


def test_supplement_only_fills_gaps() -> None:
    for uid, (_name, _kind, keyword) in _sop_groups.SUPPLEMENT.items():
        if uid in UID_dictionary:
            assert UID_dictionary[uid][4] == keyword  # pydicom caught up: same keyword
    assert sop_class.LabelMapSegmentationStorage == "1.2.840.10008.5.1.4.1.1.66.7"


def test_the_names_the_brief_and_pynetdicom_docs_use() -> None:
    assert sop_class.Verification == "1.2.840.10008.1.1"
    assert sop_class.CTImageStorage == "1.2.840.10008.5.1.4.1.1.2"
    assert sop_class.PatientRootQueryRetrieveInformationModelFind == "1.2.840.10008.5.1.4.1.2.1.1"
    assert sop_class.StudyRootQueryRetrieveInformationModelMove == "1.2.840.10008.5.1.4.1.2.2.2"
    assert sop_class.ModalityWorklistInformationFind == "1.2.840.10008.5.1.4.31"
    assert sop_class.ModalityWorklistInformationFind.keyword == (
        "ModalityWorklistInformationModelFind"
    )


def test_star_import_exports_the_generated_names() -> None:
    names: dict[str, Any] = {}
    exec("from dicomnet.sop_class import *", names)
    assert names["CTImageStorage"] == "1.2.840.10008.5.1.4.1.1.2"
    assert "PseudoColorSoftcopyPresentationStageStorage" in names
    assert "CTImageStorage" in dir(sop_class)


def test_sop_class_value() -> None:
    ct = sop_class.CTImageStorage
    assert isinstance(ct, str) and ct == UID("1.2.840.10008.5.1.4.1.1.2")
    assert SOPClass(ct) is ct  # like pynetdicom: no copy
    assert SOPClass("1.2.3", "Mine").keyword == "Mine"
    assert SOPClass("1.2.840.10008.1.1").keyword == "Verification"  # from PS3.6


def test_service_class_is_resolved_from_the_default_registry() -> None:
    verification = sop_class.Verification.service_class
    assert verification is not None and verification.name == "verification"
    registry = plugin_manager.default_registry()
    for name in ("CTImageStorage", "StorageCommitmentPushModel", "Printer"):
        value = getattr(sop_class, name)
        assert value.service_class is registry.service_for(value)


def test_service_class_follows_the_registry(monkeypatch: pytest.MonkeyPatch) -> None:
    """Nothing is cached per SOP class: blocking a plugin is seen after a reset."""
    monkeypatch.setattr(plugin_manager, "BUILTIN_PLUGINS", ())
    monkeypatch.setattr(plugin_manager, "_entry_points", dict)
    plugin_manager.reset_default_registry()
    assert sop_class.Verification.service_class is None


def test_uid_to_sop_class() -> None:
    assert sop_class.uid_to_sop_class("1.2.840.10008.5.1.4.1.1.2") is sop_class.CTImageStorage
    unknown = sop_class.uid_to_sop_class("1.2.3.4")
    assert isinstance(unknown, SOPClass) and unknown == "1.2.3.4" and unknown.keyword == ""
    assert unknown.service_class is None


def test_uid_to_service_class() -> None:
    verification = sop_class.uid_to_service_class("1.2.840.10008.1.1")
    assert verification is not None and verification.name == "verification"
    assert sop_class.uid_to_service_class("1.2.3.4") is None


def test_unknown_attribute() -> None:
    with pytest.raises(AttributeError, match="NoSuchStorage"):
        _ = sop_class.NoSuchStorage
    with pytest.raises(AttributeError):
        _ = sop_class.__wrapped__


def test_private_attribute_lookup_does_not_build_the_registry(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def fail() -> None:
        raise AssertionError("the registry was built")

    monkeypatch.setattr(plugin_manager, "default_registry", fail)
    assert not hasattr(sop_class, "_private_thing")


# -- register_uid ------------------------------------------------------------------------------


@pytest.fixture
def clean_registrations() -> Iterator[None]:
    before = dict(plugin_manager._registered)
    names = set(vars(sop_class))
    exported = list(sop_class.__all__)
    by_uid = dict(sop_class._BY_UID)
    yield
    plugin_manager._registered.clear()
    plugin_manager._registered.update(before)
    for name in set(vars(sop_class)) - names:
        delattr(sop_class, name)
    sop_class.__all__[:] = exported
    sop_class._BY_UID.clear()
    sop_class._BY_UID.update(by_uid)


def test_register_uid(clean_registrations: None) -> None:
    uid = "1.2.826.0.1.3680043.8.498.99999.7"
    sop_class.register_uid(uid, "AcmeEcho", "verification")
    value = sop_class.AcmeEcho
    assert value == uid and value.keyword == "AcmeEcho" and "AcmeEcho" in sop_class.__all__
    assert sop_class.uid_to_sop_class(uid) is value
    service = value.service_class  # every registry built from now on has it
    assert service is not None and service.name == "verification"
    assert service.sop_classes[uid] == "AcmeEcho"
    # a minimal build without the service class skips it
    empty = plugin_manager.make_plugin_manager([])
    assert len(plugin_manager.ServiceRegistry.from_plugin_manager(empty)) == 0
    # re-registering a UID the service class already claims is harmless
    sop_class.register_uid("1.2.840.10008.1.1", "VerificationAgain", "verification")
    assert sop_class.VerificationAgain.service_class is not None


def test_register_uid_accepts_a_service_class_value(clean_registrations: None) -> None:
    verification = sop_class.Verification.service_class
    sop_class.register_uid("1.2.826.0.1.3680043.8.498.99999.8", "AcmeEcho2", verification)
    assert plugin_manager.registered_uids()[-1] == (
        "verification", "1.2.826.0.1.3680043.8.498.99999.8", "AcmeEcho2"
    )


@pytest.mark.parametrize("keyword", ["not valid", "class", "1abc", ""])
def test_register_uid_rejects_bad_keywords(keyword: str, clean_registrations: None) -> None:
    with pytest.raises(ValueError, match="identifier"):
        sop_class.register_uid("1.2.3", keyword, "storage")


def test_register_uid_query_retrieve_needs_a_message_type(clean_registrations: None) -> None:
    with pytest.raises(ValueError, match="dimse_msg_type"):
        sop_class.register_uid("1.2.3.4", "PrivateFind", "query_retrieve")
    sop_class.register_uid("1.2.3.4", "PrivateFind", "query_retrieve", "C-FIND")
    assert sop_class.registered_message_type("1.2.3.4") == "C-FIND"


def test_register_uid_rejects_other_service_class_types(clean_registrations: None) -> None:
    with pytest.raises(TypeError, match="service_class"):
        sop_class.register_uid("1.2.3", "Thing", 42)


# -- the service groups ------------------------------------------------------------------------


def test_groups_agree_with_pynetdicoms_service_classes() -> None:
    """Each pynetdicom SOP class is in the group of the matching service class."""
    group_of = {uid: name for name, members in _sop_groups.SERVICE_GROUPS.items()
                for uid in members}
    assert set(PYNETDICOM_SERVICE_CLASS) == set(_sop_groups.SERVICE_GROUPS)
    for name, uid in REFERENCE["sop_classes"].items():
        group = group_of.get(uid)
        assert group is not None, name
        assert PYNETDICOM_SERVICE_CLASS[group] == REFERENCE["service_class_of"][name], name


def test_groups_are_disjoint_and_cover_every_current_sop_class() -> None:
    seen: dict[str, str] = {}
    for name, members in _sop_groups.SERVICE_GROUPS.items():
        for uid in members:
            assert uid not in seen, (uid, seen.get(uid), name)
            seen[uid] = name
    for entry in _sop_groups.entries():
        if entry.type in ("SOP Class", "Meta SOP Class") and not entry.retired and entry.keyword:
            if entry.keyword.endswith("RealTimeCommunication"):
                # PS3.22 real-time video: not a DIMSE service, no service class here
                assert entry.uid not in seen
                continue
            assert entry.uid in seen, entry.keyword


def test_retired_classes_stay_out_except_storage_and_patient_study_only() -> None:
    retired = {e.uid for e in _sop_groups.entries() if e.retired}
    for name, members in _sop_groups.SERVICE_GROUPS.items():
        old = {members[uid] for uid in members if uid in retired}
        if name == "query_retrieve":
            assert old and all(kw.startswith("PatientStudyOnly") for kw in old)
        elif name == "storage":
            assert old == {_sop_groups.SERVICE_GROUPS["storage"][u]
                           for u in _sop_groups.LEGACY_STORAGE}
        else:
            assert not old, name


def test_storage_group_follows_the_keyword_rule() -> None:
    storage = _sop_groups.SERVICE_GROUPS["storage"]
    rule = re.compile(r"Storage(ForPresentation|ForProcessing)?(Retired|Trial)?$")
    assert all(rule.search(keyword) for keyword in storage.values())
    assert "1.2.840.10008.1.20.1" not in storage  # StorageCommitmentPushModel
    assert "1.2.840.10008.1.3.10" not in storage  # MediaStorageDirectoryStorage
    assert "1.2.840.10008.5.1.4.38.1" not in storage  # HangingProtocolStorage (GG)
    assert "1.2.840.10008.5.1.4.1.1.501.2.1" in storage  # DICOS DX ...ForPresentation


def test_service_class_uids() -> None:
    assert _sop_groups.SERVICE_CLASS_UIDS == {
        "storage": "1.2.840.10008.4.2",
        "unified_procedure_step": "1.2.840.10008.5.1.4.34.6",
    }
