"""dicomnet.presentation: contexts, transfer syntax lists and the prebuilt lists (vs pynetdicom)."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydicom.uid import UID

from dicomnet import _sop_groups, acse, plugin_manager, presentation, sop_class
from dicomnet.pdu_primitives import SCP_SCU_RoleSelectionNegotiation
from dicomnet.presentation import (
    ALL_TRANSFER_SYNTAXES,
    DEFAULT_TRANSFER_SYNTAXES,
    PresentationContext,
    PresentationContextTuple,
    build_context,
    build_role,
)

REFERENCE = json.loads(
    (Path(__file__).parent / "fixtures" / "pynetdicom" / "reference.json").read_text()
)
KEYWORD = {uid: kw for kw, uid in reversed(list(_sop_groups.SOP_CLASSES.items()))}

#: Intentional differences from pynetdicom 3.0.4, by list: (only ours, only pynetdicom's).
#: Documented in docs/plugins.md ("The prebuilt presentation context lists").
DIFFERENCES: dict[str, tuple[set[str], set[str]]] = {
    # PS3.4 Table B.5-1 lists the DICOS and DICONDE storage classes too
    "AllStoragePresentationContexts": (
        {
            "DICOS2DAITStorage", "DICOS3DAITStorage", "DICOSCTImageStorage",
            "DICOSDigitalXRayImageStorageForPresentation",
            "DICOSDigitalXRayImageStorageForProcessing", "DICOSQuadrupoleResonanceStorage",
            "DICOSThreatDetectionReportStorage", "EddyCurrentImageStorage",
            "EddyCurrentMultiFrameImageStorage",
        },
        set(),
    ),
    # current (not retired) in PS3.6 as pydicom ships it
    "PrintManagementPresentationContexts": ({"VOILUTBox"}, set()),
    # chosen by family (docs/plugins.md): newer SR, dose and segmentation classes in;
    # ophthalmic measurements and long-retired hardcopy/standalone classes out
    "StoragePresentationContexts": (
        {
            "AcquisitionContextSRStorage", "AdvancedBlendingPresentationStateStorage",
            "BreastProjectionXRayImageStorageForPresentation",
            "BreastProjectionXRayImageStorageForProcessing", "EnhancedXRayRadiationDoseSRStorage",
            "ExtensibleSRStorage", "General32bitECGWaveformStorage",
            "HeightMapSegmentationStorage", "LabelMapSegmentationStorage",
            "OphthalmicOpticalCoherenceTomographyEnFaceImageStorage", "ParametricMapStorage",
            "PatientRadiationDoseSRStorage", "PerformedImagingAgentAdministrationSRStorage",
            "PlannedImagingAgentAdministrationSRStorage",
            "RTBrachyApplicationSetupDeliveryInstructionStorage",
            "RadiopharmaceuticalRadiationDoseSRStorage", "SimplifiedAdultEchoSRStorage",
            "VariableModalityLUTSoftcopyPresentationStateStorage", "WaveformAnnotationSRStorage",
        },
        {
            "AutorefractionMeasurementsStorage", "HardcopyColorImageStorage",
            "HardcopyGrayscaleImageStorage", "IntraocularLensCalculationsStorage",
            "KeratometryMeasurementsStorage", "LensometryMeasurementsStorage",
            "MacularGridThicknessAndVolumeReportStorage", "OphthalmicAxialMeasurementsStorage",
            "OphthalmicThicknessMapStorage",
            "OphthalmicVisualFieldStaticPerimetryMeasurementsStorage",
            "SpectaclePrescriptionReportStorage", "StandaloneCurveStorage",
            "StandaloneModalityLUTStorage", "StandaloneOverlayStorage",
            "StandalonePETCurveStorage", "StandaloneVOILUTStorage", "StoredPrintStorage",
            "SubjectiveRefractionMeasurementsStorage", "VLImageStorageTrial",
            "VLMultiFrameImageStorageTrial", "VisualAcuityMeasurementsStorage",
        },
    ),
}
#: transfer syntaxes of PS3.6 (as pydicom ships it) that pynetdicom 3.0.4 leaves out
EXTRA_TRANSFER_SYNTAXES = {"1.2.840.10008.1.2.1.98"}  # Encapsulated Uncompressed Explicit VR LE


@pytest.fixture(autouse=True)
def _fresh_default_registry() -> Iterator[None]:
    plugin_manager.reset_default_registry()
    yield
    plugin_manager.reset_default_registry()


# -- transfer syntaxes -------------------------------------------------------------------------


def test_default_transfer_syntaxes_match_pynetdicom() -> None:
    assert REFERENCE["DEFAULT_TRANSFER_SYNTAXES"] == DEFAULT_TRANSFER_SYNTAXES


def test_all_transfer_syntaxes_match_pynetdicom() -> None:
    ours = [ts for ts in ALL_TRANSFER_SYNTAXES if ts not in EXTRA_TRANSFER_SYNTAXES]
    assert ours == REFERENCE["ALL_TRANSFER_SYNTAXES"]  # same syntaxes, same order
    assert len(set(ALL_TRANSFER_SYNTAXES)) == len(ALL_TRANSFER_SYNTAXES)
    assert ALL_TRANSFER_SYNTAXES[:4] == DEFAULT_TRANSFER_SYNTAXES


# -- the prebuilt lists ------------------------------------------------------------------------


def test_every_pynetdicom_list_exists() -> None:
    assert set(presentation.CONTEXT_LIST_NAMES) == set(REFERENCE["context_lists"])
    top_level = {n for n in REFERENCE["top_level_exports"] if n.endswith("PresentationContexts")}
    assert top_level <= set(presentation.CONTEXT_LIST_NAMES)
    assert set(presentation.CONTEXT_LIST_NAMES) <= set(presentation.__all__)


@pytest.mark.parametrize("name", sorted(REFERENCE["context_lists"]))
def test_list_matches_pynetdicom(name: str) -> None:
    contexts = getattr(presentation, name)
    ours = [str(cx.abstract_syntax) for cx in contexts]
    theirs = REFERENCE["context_lists"][name]
    only_ours, only_theirs = DIFFERENCES.get(name, (set(), set()))
    assert {KEYWORD[u] for u in ours if u not in theirs} == only_ours
    assert {KEYWORD.get(u, u) for u in theirs if u not in ours} == only_theirs
    common = set(ours) & set(theirs)
    assert [u for u in ours if u in common] == [u for u in theirs if u in common]  # same order
    assert ours == sorted(ours)  # pynetdicom sorts its lists by UID string
    for cx in contexts:
        assert cx.transfer_syntax == DEFAULT_TRANSFER_SYNTAXES
        assert cx.context_id is None and cx.result is None


def test_list_is_built_once() -> None:
    assert presentation.QueryRetrievePresentationContexts is (
        presentation.QueryRetrievePresentationContexts
    )


def test_storage_presentation_contexts() -> None:
    contexts = presentation.StoragePresentationContexts
    assert len(contexts) <= _sop_groups.STORAGE_CONTEXTS_LIMIT <= 120
    uids = {cx.abstract_syntax for cx in contexts}
    for name in (
        "CTImageStorage", "EnhancedCTImageStorage", "MRImageStorage", "EnhancedMRImageStorage",
        "ComputedRadiographyImageStorage", "DigitalXRayImageStorageForPresentation",
        "DigitalMammographyXRayImageStorageForPresentation", "UltrasoundImageStorage",
        "UltrasoundMultiFrameImageStorage", "SecondaryCaptureImageStorage",
        "PositronEmissionTomographyImageStorage", "NuclearMedicineImageStorage",
        "RTImageStorage", "RTDoseStorage", "RTStructureSetStorage", "RTPlanStorage",
        "RTIonPlanStorage", "BasicTextSRStorage", "EnhancedSRStorage", "ComprehensiveSRStorage",
        "KeyObjectSelectionDocumentStorage", "GrayscaleSoftcopyPresentationStateStorage",
        "EncapsulatedPDFStorage", "SegmentationStorage", "XRayAngiographicImageStorage",
        "UltrasoundImageStorageRetired",  # old ultrasound machines still send it
    ):
        assert getattr(sop_class, name) in uids, name
    assert uids <= set(_sop_groups.SERVICE_GROUPS["storage"])


def test_all_storage_is_every_current_storage_class() -> None:
    uids = [cx.abstract_syntax for cx in presentation.AllStoragePresentationContexts]
    storage = _sop_groups.SERVICE_GROUPS["storage"]
    assert set(uids) == set(storage) - set(_sop_groups.LEGACY_STORAGE)


def test_list_from_a_loaded_plugin_comes_from_its_declaration(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The registry's list wins over the rule; the rule only fills in for absent plugins."""
    registry = plugin_manager.default_registry()
    assert presentation._list_uids("VerificationPresentationContexts") == (
        registry.context_list("VerificationPresentationContexts")
    )
    monkeypatch.setattr(
        plugin_manager.ServiceRegistry, "context_list", lambda self, name: ("1.2.3.4",)
    )
    assert presentation._list_uids("StoragePresentationContexts") == ("1.2.3.4",)


def test_unknown_module_attribute() -> None:
    with pytest.raises(AttributeError, match="NoSuchPresentationContexts"):
        _ = presentation.NoSuchPresentationContexts


def test_importing_dicomnet_loads_no_plugin() -> None:
    code = (
        "import sys, dicomnet, dicomnet.presentation as p, dicomnet.sop_class as s\n"
        "assert 'dicomnet.plugins.verification' not in sys.modules, 'loaded at import'\n"
        "p.VerificationPresentationContexts\n"
        "assert 'dicomnet.plugins.verification' in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


# -- PresentationContext -------------------------------------------------------------------------


def test_build_context_defaults() -> None:
    cx = build_context(sop_class.Verification)
    assert cx.abstract_syntax == "1.2.840.10008.1.1" and isinstance(cx.abstract_syntax, UID)
    assert cx.transfer_syntax == DEFAULT_TRANSFER_SYNTAXES
    assert cx.context_id is None and cx.result is None
    assert (cx.scu_role, cx.scp_role, cx.as_scu, cx.as_scp) == (None, None, None, None)
    assert cx.status == "Pending"
    # a fresh list each time: changing one context changes no other
    cx.transfer_syntax.append(UID("1.2.840.10008.1.2.5"))
    assert build_context(sop_class.Verification).transfer_syntax == DEFAULT_TRANSFER_SYNTAXES


def test_build_context_transfer_syntaxes() -> None:
    assert build_context("1.2.840.10008.1.1", "1.2.840.10008.1.2").transfer_syntax == [
        "1.2.840.10008.1.2"
    ]
    cx = build_context(UID("1.2.840.10008.1.1"), ["1.2.840.10008.1.2", "1.2.840.10008.1.2.4.50"])
    assert cx.transfer_syntax == ["1.2.840.10008.1.2", "1.2.840.10008.1.2.4.50"]


def test_str_like_pynetdicom() -> None:
    cx = build_context("1.2.840.10008.1.1", ["1.2.840.10008.1.2", "1.2.840.10008.1.2.4.50"])
    assert str(cx) == (
        "Abstract Syntax: Verification SOP Class\n"
        "Transfer Syntax(es):\n"
        "    =Implicit VR Little Endian\n"
        "    =JPEG Baseline (Process 1)"
    )
    cx.context_id = 3
    cx.result = 0
    cx._as_scu, cx._as_scp = False, True
    assert str(cx).splitlines()[0] == "ID: 3"
    assert str(cx).splitlines()[-2:] == ["Result: Accepted", "Role: SCP only"]
    assert repr(cx) == "Verification SOP Class"
    empty = PresentationContext()
    assert str(empty) == "Transfer Syntax(es):\n    (none)"


@pytest.mark.parametrize("value", [0, 2, 256, -1, True])
def test_context_id_must_be_odd_1_to_255(value: int) -> None:
    cx = PresentationContext()
    with pytest.raises(ValueError, match="odd integer"):
        cx.context_id = value


def test_context_id_accepts_odd_values() -> None:
    cx = PresentationContext()
    for value in (1, 127, 255, None):
        cx.context_id = value
        assert cx.context_id == value


def test_abstract_syntax_setter() -> None:
    cx = PresentationContext()
    cx.abstract_syntax = b"1.2.840.10008.1.1\x00"
    assert cx.abstract_syntax == "1.2.840.10008.1.1" and isinstance(cx.abstract_syntax, UID)
    with pytest.raises(ValueError, match="64"):
        cx.abstract_syntax = "1." + "2" * 70
    with pytest.raises(TypeError):
        cx.abstract_syntax = 12  # type: ignore[assignment]


def test_transfer_syntax_setter_needs_a_list() -> None:
    cx = PresentationContext()
    with pytest.raises(TypeError, match="list"):
        cx.transfer_syntax = "1.2.840.10008.1.2"  # type: ignore[assignment]


def test_add_transfer_syntax(caplog: pytest.LogCaptureFixture) -> None:
    cx = PresentationContext()
    cx.add_transfer_syntax("1.2.840.10008.1.2")
    cx.add_transfer_syntax("1.2.840.10008.1.2")  # no duplicates
    cx.add_transfer_syntax(None)
    cx.add_transfer_syntax("")
    cx.add_transfer_syntax(b"1.2.840.10008.1.2.1")
    assert cx.transfer_syntax == ["1.2.840.10008.1.2", "1.2.840.10008.1.2.1"]
    with caplog.at_level(logging.WARNING, "dicomnet.presentation"):
        cx.add_transfer_syntax("1.2.840.10008.1.1")  # a SOP class, not a transfer syntax
    assert "not a transfer syntax" in caplog.text
    cx.add_transfer_syntax(42)  # type: ignore[arg-type]
    assert len(cx.transfer_syntax) == 3


def test_roles() -> None:
    cx = PresentationContext()
    cx.scu_role, cx.scp_role = True, False
    assert (cx.scu_role, cx.scp_role) == (True, False)
    with pytest.raises(TypeError):
        cx.scp_role = 1  # type: ignore[assignment]
    with pytest.raises(AttributeError):
        cx.as_scp = True  # type: ignore[misc]


@pytest.mark.parametrize(
    ("result", "status"),
    [(None, "Pending"), (0, "Accepted"), (1, "User Rejected"), (2, "Provider Rejected"),
     (3, "Abstract Syntax Not Supported"), (4, "Transfer Syntax(es) Not Supported"),
     (9, "Unknown")],
)
def test_status(result: int | None, status: str) -> None:
    cx = PresentationContext()
    cx.result = result
    assert cx.status == status


def test_as_tuple() -> None:
    cx = build_context("1.2.840.10008.1.1", "1.2.840.10008.1.2")
    with pytest.raises(ValueError, match="context ID"):
        _ = cx.as_tuple
    cx.context_id = 5
    assert cx.as_tuple == PresentationContextTuple(5, UID("1.2.840.10008.1.1"),
                                                   UID("1.2.840.10008.1.2"))


def test_equality_and_hash() -> None:
    a = build_context("1.2.840.10008.1.1")
    b = build_context("1.2.840.10008.1.1")
    assert a == b and hash(a) == hash(b)
    b.context_id = 1
    assert a != b
    assert a != "1.2.840.10008.1.1"


def test_build_role() -> None:
    role = build_role(sop_class.CTImageStorage, scp_role=True)
    assert isinstance(role, SCP_SCU_RoleSelectionNegotiation)
    assert (role.sop_class_uid, role.scu_role, role.scp_role) == (
        "1.2.840.10008.5.1.4.1.1.2", False, True
    )
    assert build_role("1.2.3").scu_role is False


def test_bridges_to_the_negotiation_code() -> None:
    cx = build_context("1.2.840.10008.1.1", ["1.2.840.10008.1.2.1", "1.2.840.10008.1.2"])
    cx.scp_role = True
    definition = cx.to_definition()
    assert definition == acse.ContextDefinition(
        abstract_syntax="1.2.840.10008.1.1",
        transfer_syntaxes=("1.2.840.10008.1.2.1", "1.2.840.10008.1.2"),
        scu_role=None,
        scp_role=True,
    )
    with pytest.raises(ValueError, match="abstract syntax"):
        PresentationContext().to_definition()

    negotiated = acse.NegotiatedContext(
        context_id=7, abstract_syntax="1.2.840.10008.1.1", transfer_syntax="1.2.840.10008.1.2",
        result=0, as_scu=True, as_scp=False,
    )
    back = PresentationContext.from_negotiated(negotiated)
    assert (back.context_id, back.abstract_syntax, back.transfer_syntax, back.result) == (
        7, "1.2.840.10008.1.1", ["1.2.840.10008.1.2"], 0
    )
    assert (back.as_scu, back.as_scp, back.status) == (True, False, "Accepted")
    rejected = acse.NegotiatedContext(
        context_id=9, abstract_syntax="1.2.3", transfer_syntax=None, result=3
    )
    assert PresentationContext.from_negotiated(rejected).transfer_syntax == []
