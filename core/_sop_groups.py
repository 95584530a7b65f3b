"""Which SOP classes belong to which service class, by rule over PS3.6's UID registry.

Rule this module keeps: **no SOP Class UID is typed by hand.** Every group is
computed from pydicom's copy of the PS3.6 UID registry
(:data:`pydicom.uid.UID_dictionary`, columns *name, type, info, retired,
keyword*) by a rule on the keyword, the UID arc or the retired flag. A new
pydicom release with new SOP classes therefore extends the groups by itself.

The only literal UIDs here are in :data:`SUPPLEMENT`: registry entries newer
than the pydicom release that dicomnet is tested with (they are skipped as soon
as pydicom knows them). The groups are imported by the built-in service-class
plugins (``dicomnet.plugins.*``), which declare exactly these sets, and by
:mod:`dicomnet.presentation` for the prebuilt ``*PresentationContexts`` lists
whose service class is not yet provided by a plugin.

Service classes (PS3.4), by the name their plugin uses:

=================================  ========  ==========================================
service name                       PS3.4     rule (keywords unless noted)
=================================  ========  ==========================================
verification                       A         ``Verification``
storage                            B         ``...Storage``, ``...StorageFor(Presentation|
                                             Processing)``, minus the groups below
query_retrieve                     C         ``(PatientRoot|StudyRoot|PatientStudyOnly)
                                             QueryRetrieveInformationModel*``,
                                             ``CompositeInstance*``, ``RepositoryQuery``
procedure_step                     F         ``ModalityPerformedProcedureStep*``
print_management                   H         UID arc ``1.2.840.10008.5.1.1.`` minus
                                             storage, media creation, display system
media_storage                      I         ``MediaStorageDirectoryStorage``
storage_commitment                 J         ``StorageCommitment*Model``
basic_worklist                     K         ``ModalityWorklistInformationModelFind``
application_event_logging          P         ``...Logging``
relevant_patient_query             Q         ``...RelevantPatientInformationQuery``
instance_availability              R         ``InstanceAvailabilityNotification``
media_creation                     S         ``MediaCreationManagement``
hanging_protocol_qr                U         ``HangingProtocolInformationModel*``
substance_administration_query     V         ``(ProductCharacteristics|SubstanceApproval)Query``
color_palette_qr                   X         ``ColorPaletteQueryRetrieveInformationModel*``
implant_template_qr                BB        ``(GenericImplantTemplate|ImplantAssemblyTemplate|
                                             ImplantTemplateGroup)InformationModel*``
unified_procedure_step             CC        ``UnifiedProcedureStep(Push|Watch|Pull|Event|
                                             Query)``
rt_machine_verification            DD        ``RT...MachineVerification``
display_system                     EE        ``DisplaySystem``
non_patient_object_storage         GG        storage of hanging protocols, color palettes,
                                             implant templates, protocols, inventories
defined_procedure_protocol_qr      HH        ``DefinedProcedureProtocolInformationModel*``
protocol_approval_qr               II        ``ProtocolApprovalInformationModel*``
inventory_qr                       KK        ``Inventory(Find|Move|Get)``
storage_management                 KK        ``InventoryCreation``
=================================  ========  ==========================================

Retired SOP classes are left out of every group, except that *query_retrieve*
keeps the retired Patient/Study Only information model (still offered by
many archives) and *storage* claims the retired storage classes so that an SCP
can still receive them (they appear in :data:`LEGACY_STORAGE` and in
``StoragePresentationContexts``, never in ``AllStoragePresentationContexts``).

``StoragePresentationContexts`` (at most :data:`STORAGE_CONTEXTS_LIMIT`) is
chosen by the rule of :func:`_select_storage`: every storage class of the
families in :data:`STORAGE_FAMILIES`, taken family by family in that order
(the commonly used ones first: CT, MR, CR/DX/MG/IO, US, SC, NM/PET, XA/RF, RT,
SR, presentation states, documents, segmentation and registration, VL and
ophthalmic imaging, ECG-type waveforms), then the retired classes legacy
modalities still send, until the limit is reached.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from types import MappingProxyType
from typing import NamedTuple

from pydicom._uid_dict import UID_dictionary  # the PS3.6 registry; pydicom.uid re-exports it

__all__ = [
    "ALL_TRANSFER_SYNTAXES",
    "CONTEXT_LISTS",
    "DEFAULT_TRANSFER_SYNTAXES",
    "LEGACY_STORAGE",
    "PYNETDICOM_ALIASES",
    "SERVICE_CLASS_UIDS",
    "SERVICE_GROUPS",
    "SOP_CLASSES",
    "STORAGE_CONTEXTS_LIMIT",
    "STORAGE_FAMILIES",
    "SUPPLEMENT",
    "WELL_KNOWN_INSTANCES",
    "UIDEntry",
    "entries",
    "uid_sort_key",
]


class UIDEntry(NamedTuple):
    """One row of the PS3.6 UID registry (Table A-1)."""

    uid: str
    name: str
    type: str
    retired: bool
    keyword: str


#: Registry rows newer than pydicom 3.0 (PS3.6 2024 and later, Table A-1); used only
#: while the installed pydicom lacks them.
SUPPLEMENT: Mapping[str, tuple[str, str, str]] = MappingProxyType(
    {
        "1.2.840.10008.1.2.4.110": ("JPEG XL Lossless", "Transfer Syntax", "JPEGXLLossless"),
        "1.2.840.10008.1.2.4.111": (
            "JPEG XL JPEG Recompression", "Transfer Syntax", "JPEGXLJPEGRecompression"
        ),
        "1.2.840.10008.1.2.4.112": ("JPEG XL", "Transfer Syntax", "JPEGXL"),
        "1.2.840.10008.1.2.8.1": (
            "Deflated Image Frame Compression", "Transfer Syntax", "DeflatedImageFrameCompression"
        ),
        "1.2.840.10008.5.1.4.1.1.9.100.1": (
            "Waveform Presentation State Storage", "SOP Class", "WaveformPresentationStateStorage"
        ),
        "1.2.840.10008.5.1.4.1.1.9.100.2": (
            "Waveform Acquisition Presentation State Storage",
            "SOP Class",
            "WaveformAcquisitionPresentationStateStorage",
        ),
        "1.2.840.10008.5.1.4.1.1.66.7": (
            "Label Map Segmentation Storage", "SOP Class", "LabelMapSegmentationStorage"
        ),
        "1.2.840.10008.5.1.4.1.1.66.8": (
            "Height Map Segmentation Storage", "SOP Class", "HeightMapSegmentationStorage"
        ),
    }
)


def entries() -> Iterator[UIDEntry]:
    """Every registry row: pydicom's, then the :data:`SUPPLEMENT` rows it lacks."""
    for uid, (name, kind, _info, retired, keyword) in UID_dictionary.items():
        yield UIDEntry(uid, name, kind, retired == "Retired", keyword)
    for uid, (name, kind, keyword) in SUPPLEMENT.items():
        if uid not in UID_dictionary:
            yield UIDEntry(uid, name, kind, False, keyword)


def uid_sort_key(uid: str) -> tuple[int, ...]:
    """Numeric, component-wise order of a UID (``1.2.10`` after ``1.2.9``)."""
    return tuple(int(part) for part in uid.split("."))


_ENTRIES = tuple(entries())

#: keyword -> UID of every SOP Class and Meta SOP Class with a keyword (retired included)
SOP_CLASSES: Mapping[str, str] = MappingProxyType(
    {
        e.keyword: e.uid
        for e in _ENTRIES
        if e.type in ("SOP Class", "Meta SOP Class") and e.keyword
    }
)
#: keyword -> UID of the well-known SOP instances (PS3.6 Table A-1)
WELL_KNOWN_INSTANCES: Mapping[str, str] = MappingProxyType(
    {e.keyword: e.uid for e in _ENTRIES if e.type == "Well-known SOP Instance" and e.keyword}
)

#: pynetdicom names that are not PS3.6 keywords -> the keyword (from the comparison
#: with pynetdicom 3.0.4 in tests/fixtures/pynetdicom/reference.json). Typos and
#: older names; dicomnet.sop_class exports both.
PYNETDICOM_ALIASES: Mapping[str, str] = MappingProxyType(
    {
        "ColorPaletteInformationModelFind": "ColorPaletteQueryRetrieveInformationModelFind",
        "ColorPaletteInformationModelGet": "ColorPaletteQueryRetrieveInformationModelGet",
        "ColorPaletteInformationModelMove": "ColorPaletteQueryRetrieveInformationModelMove",
        "ModalityWorklistInformationFind": "ModalityWorklistInformationModelFind",
        "OphthlamicOpticalCoherenceTomographyBscanVolumeAnalysisStorage": (
            "OphthalmicOpticalCoherenceTomographyBscanVolumeAnalysisStorage"
        ),
        "PseudoColorSoftcopyPresentationStageStorage": (
            "PseudoColorSoftcopyPresentationStateStorage"
        ),
        "RTBrachyApplicationSetupDeliveryInstructionsStorage": (
            "RTBrachyApplicationSetupDeliveryInstructionStorage"
        ),
        "RoboticArmRadiationRecordStorage": "RoboticRadiationRecordStorage",
        "VariableModalityLUTSoftcopyPresentationStageStorage": (
            "VariableModalityLUTSoftcopyPresentationStateStorage"
        ),
    }
)


# -- service groups ---------------------------------------------------------------------------

_Rule = Callable[[UIDEntry], bool]


def _keyword(pattern: str) -> _Rule:
    regex = re.compile(pattern)
    return lambda e: regex.search(e.keyword) is not None


_STORAGE_KEYWORD = re.compile(r"Storage(ForPresentation|ForProcessing)?(Retired|Trial)?$")
_NON_PATIENT = _keyword(
    r"^(HangingProtocol|ColorPalette|GenericImplantTemplate|ImplantAssemblyTemplate"
    r"|ImplantTemplateGroup|\w*DefinedProcedureProtocol|ProtocolApproval|Inventory)Storage$"
)
_PRINT_ARC = "1.2.840.10008.5.1.1."

# (service name, PS3.4 annex, rule, keeps retired classes). Order matters: a class
# belongs to the first group whose rule it matches.
_GROUP_RULES: tuple[tuple[str, str, _Rule, bool], ...] = (
    ("verification", "A", _keyword(r"^Verification$"), False),
    ("media_storage", "I", _keyword(r"^MediaStorageDirectoryStorage$"), False),
    ("storage_commitment", "J", _keyword(r"^StorageCommitment\w*Model$"), False),
    ("non_patient_object_storage", "GG", _NON_PATIENT, False),
    ("media_creation", "S", _keyword(r"^MediaCreationManagement$"), False),
    ("display_system", "EE", _keyword(r"^DisplaySystem$"), False),
    ("storage", "B", lambda e: _STORAGE_KEYWORD.search(e.keyword) is not None, True),
    (
        "query_retrieve",
        "C",
        _keyword(
            r"^((PatientRoot|StudyRoot|PatientStudyOnly)QueryRetrieveInformationModel"
            r"(Find|Move|Get)|CompositeInstance\w*(Move|Get)|RepositoryQuery)$"
        ),
        True,
    ),
    ("procedure_step", "F", _keyword(r"^ModalityPerformedProcedureStep"), False),
    ("print_management", "H", lambda e: e.uid.startswith(_PRINT_ARC), False),
    ("basic_worklist", "K", _keyword(r"^ModalityWorklistInformationModelFind$"), False),
    ("application_event_logging", "P", _keyword(r"Logging$"), False),
    ("relevant_patient_query", "Q", _keyword(r"RelevantPatientInformationQuery$"), False),
    ("instance_availability", "R", _keyword(r"^InstanceAvailabilityNotification$"), False),
    ("hanging_protocol_qr", "U", _keyword(r"^HangingProtocolInformationModel"), False),
    (
        "substance_administration_query",
        "V",
        _keyword(r"^(ProductCharacteristics|SubstanceApproval)Query$"),
        False,
    ),
    ("color_palette_qr", "X", _keyword(r"^ColorPaletteQueryRetrieveInformationModel"), False),
    (
        "implant_template_qr",
        "BB",
        _keyword(
            r"^(GenericImplantTemplate|ImplantAssemblyTemplate|ImplantTemplateGroup)"
            r"InformationModel"
        ),
        False,
    ),
    (
        "unified_procedure_step",
        "CC",
        _keyword(r"^UnifiedProcedureStep(Push|Watch|Pull|Event|Query)$"),
        False,
    ),
    ("rt_machine_verification", "DD", _keyword(r"^RT\w*MachineVerification$"), False),
    (
        "defined_procedure_protocol_qr",
        "HH",
        _keyword(r"^DefinedProcedureProtocolInformationModel"),
        False,
    ),
    ("protocol_approval_qr", "II", _keyword(r"^ProtocolApprovalInformationModel"), False),
    ("inventory_qr", "KK", _keyword(r"^Inventory(Find|Move|Get)$"), False),
    ("storage_management", "KK", _keyword(r"^InventoryCreation$"), False),
)

#: the service class UIDs PS3.6 assigns (used in SOP Class Common Extended Negotiation)
SERVICE_CLASS_UIDS: Mapping[str, str] = MappingProxyType(
    {
        "storage": next(e.uid for e in _ENTRIES if e.type == "Service Class"
                        and e.keyword == "Storage"),
        "unified_procedure_step": next(
            e.uid for e in _ENTRIES
            if e.type == "Service Class" and e.keyword == "UnifiedWorklistAndProcedureStep"
        ),
    }
)

#: service name -> PS3.4 annex
SERVICE_ANNEX: Mapping[str, str] = MappingProxyType(
    {name: annex for name, annex, _, _ in _GROUP_RULES}
)


def _build_groups() -> dict[str, dict[str, str]]:
    groups: dict[str, dict[str, str]] = {name: {} for name, *_ in _GROUP_RULES}
    for entry in _ENTRIES:
        if entry.type not in ("SOP Class", "Meta SOP Class") or not entry.keyword:
            continue
        for name, _annex, rule, keep_retired in _GROUP_RULES:
            if rule(entry):
                if keep_retired or not entry.retired:
                    groups[name][entry.uid] = entry.keyword
                break
    return {
        name: dict(sorted(members.items(), key=lambda item: uid_sort_key(item[0])))
        for name, members in groups.items()
    }


_GROUPS = _build_groups()

#: service name -> {SOP Class UID: keyword}, in UID order
SERVICE_GROUPS: Mapping[str, Mapping[str, str]] = MappingProxyType(
    {name: MappingProxyType(members) for name, members in _GROUPS.items()}
)

_RETIRED = frozenset(e.uid for e in _ENTRIES if e.retired)

#: retired storage classes (claimed by *storage* so an SCP can receive them)
LEGACY_STORAGE: tuple[str, ...] = tuple(uid for uid in _GROUPS["storage"] if uid in _RETIRED)
_CURRENT_STORAGE: tuple[str, ...] = tuple(
    uid for uid in _GROUPS["storage"] if uid not in _RETIRED
)


# -- StoragePresentationContexts --------------------------------------------------------------

#: pynetdicom's size: small enough that a requestor may add a few contexts of its own
#: (Verification, Q/R...) within the 128 an association allows (PS3.8 9.3.2.2).
STORAGE_CONTEXTS_LIMIT = 120

#: (family, keyword pattern) in order of preference for StoragePresentationContexts.
#: Families cover current (non-retired) storage classes; each class counts in the
#: first family that matches. Classes of no family are not in the list.
STORAGE_FAMILIES: tuple[tuple[str, str], ...] = (
    ("CT", r"^(Enhanced|LegacyConvertedEnhanced)?CTImageStorage$"),
    ("MR", r"^(Enhanced|LegacyConvertedEnhanced)?MR(Color)?ImageStorage$|^MRSpectroscopy"),
    (
        "CR, DX, MG, IO",
        r"^ComputedRadiography|^Digital\w*XRayImageStorage|^Breast(Tomosynthesis|Projection)",
    ),
    ("US", r"^Ultrasound(MultiFrame)?ImageStorage$|^EnhancedUSVolume"),
    ("SC", r"SecondaryCaptureImageStorage$"),
    (
        "NM, PET",
        r"^NuclearMedicineImageStorage$|^(LegacyConvertedEnhanced|Enhanced)?PET|"
        r"^PositronEmissionTomography",
    ),
    (
        "XA, RF, IVOCT",
        r"^(Enhanced)?(XA|XRF)ImageStorage$|^XRay(Angiographic|Radiofluoroscopic|3D\w+)ImageStorage$"
        r"|^IntravascularOpticalCoherenceTomography",
    ),
    # first-generation RT (PS3.3 A.17-A.31, A.49, A.50, A.64, A.79)
    (
        "RT",
        r"^RT(Image|Dose|StructureSet|Plan|BeamsTreatmentRecord|BrachyTreatmentRecord"
        r"|TreatmentSummaryRecord|IonPlan|IonBeamsTreatmentRecord|BeamsDeliveryInstruction"
        r"|BrachyApplicationSetupDeliveryInstruction)Storage$",
    ),
    ("SR, KOS", r"SRStorage$|^KeyObjectSelectionDocument|^ProcedureLog"),
    ("presentation states", r"^(\w+Softcopy|Blending\w*|AdvancedBlending)PresentationState"),
    ("documents", r"^Encapsulated(PDF|CDA)Storage$|^BasicStructuredDisplay"),
    (
        "segmentation, registration",
        r"Segmentation|Registration|^SpatialFiducials|^RawData|^RealWorldValueMapping"
        r"|^ParametricMap|^SurfaceScan",
    ),
    ("VL", r"^(VL|Video)\w*(Endoscopic|Microscopic|Photographic|Microscopy)"),
    (
        "ophthalmic imaging",
        r"^Ophthalmic(Photography|Tomography|OpticalCoherence)\w*Image|^StereometricRelationship",
    ),
    (
        "waveforms",
        r"ECGWaveform|^Hemodynamic|^CardiacElectrophysiology|^(BasicVoice|General)Audio"
        r"|^ArterialPulse|^RespiratoryWaveform",
    ),
)

_LEGACY_IN_USE = re.compile(
    r"^(UltrasoundImageStorageRetired|UltrasoundMultiFrameImageStorageRetired"
    r"|NuclearMedicineImageStorageRetired|XRayAngiographicBiPlaneImageStorage)$"
)


def _select_storage() -> tuple[str, ...]:
    """UIDs of ``StoragePresentationContexts``: legacy classes, then families in order, capped."""
    keyword = _GROUPS["storage"]
    remaining = list(_CURRENT_STORAGE)
    chosen: list[str] = []
    for _family, pattern in STORAGE_FAMILIES:
        regex = re.compile(pattern)
        members = [uid for uid in remaining if regex.search(keyword[uid])]
        chosen.extend(members)
        remaining = [uid for uid in remaining if uid not in members]
    # retired classes that installed modalities still send keep their places
    legacy = [uid for uid in LEGACY_STORAGE if _LEGACY_IN_USE.match(keyword[uid])]
    return tuple(sorted(chosen[: STORAGE_CONTEXTS_LIMIT - len(legacy)] + legacy))


def _uids(service: str, *, retired: bool = False) -> tuple[str, ...]:
    """A group's UIDs in string order (as pynetdicom sorts its lists)."""
    return tuple(
        sorted(uid for uid in _GROUPS[service] if retired or uid not in _RETIRED)
    )


#: list name -> (service name, UIDs); the prebuilt ``*PresentationContexts`` lists.
#: Each list is in string order of its UIDs, as pynetdicom builds them.
CONTEXT_LISTS: Mapping[str, tuple[str, tuple[str, ...]]] = MappingProxyType(
    {
        "AllStoragePresentationContexts": ("storage", tuple(sorted(_CURRENT_STORAGE))),
        "ApplicationEventLoggingPresentationContexts": (
            "application_event_logging", _uids("application_event_logging")
        ),
        "BasicWorklistManagementPresentationContexts": (
            "basic_worklist", _uids("basic_worklist")
        ),
        "ColorPalettePresentationContexts": ("color_palette_qr", _uids("color_palette_qr")),
        "DefinedProcedureProtocolPresentationContexts": (
            "defined_procedure_protocol_qr", _uids("defined_procedure_protocol_qr")
        ),
        "DisplaySystemPresentationContexts": ("display_system", _uids("display_system")),
        "HangingProtocolPresentationContexts": (
            "hanging_protocol_qr", _uids("hanging_protocol_qr")
        ),
        "ImplantTemplatePresentationContexts": (
            "implant_template_qr", _uids("implant_template_qr")
        ),
        "InstanceAvailabilityPresentationContexts": (
            "instance_availability", _uids("instance_availability")
        ),
        "MediaCreationManagementPresentationContexts": (
            "media_creation", _uids("media_creation")
        ),
        "MediaStoragePresentationContexts": ("media_storage", _uids("media_storage")),
        "ModalityPerformedPresentationContexts": ("procedure_step", _uids("procedure_step")),
        "NonPatientObjectPresentationContexts": (
            "non_patient_object_storage", _uids("non_patient_object_storage")
        ),
        "PrintManagementPresentationContexts": ("print_management", _uids("print_management")),
        "ProcedureStepPresentationContexts": ("procedure_step", _uids("procedure_step")),
        "ProtocolApprovalPresentationContexts": (
            "protocol_approval_qr", _uids("protocol_approval_qr")
        ),
        "QueryRetrievePresentationContexts": (
            "query_retrieve", _uids("query_retrieve", retired=True)
        ),
        "RelevantPatientInformationPresentationContexts": (
            "relevant_patient_query", _uids("relevant_patient_query")
        ),
        "RTMachineVerificationPresentationContexts": (
            "rt_machine_verification", _uids("rt_machine_verification")
        ),
        "StoragePresentationContexts": ("storage", _select_storage()),
        "StorageCommitmentPresentationContexts": (
            "storage_commitment", _uids("storage_commitment")
        ),
        "SubstanceAdministrationPresentationContexts": (
            "substance_administration_query", _uids("substance_administration_query")
        ),
        "UnifiedProcedurePresentationContexts": (
            "unified_procedure_step", _uids("unified_procedure_step")
        ),
        "VerificationPresentationContexts": ("verification", _uids("verification")),
    }
)


def context_lists_of(service: str) -> dict[str, tuple[str, ...]]:
    """The ``*PresentationContexts`` lists a service class contributes (for its plugin)."""
    return {name: uids for name, (owner, uids) in CONTEXT_LISTS.items() if owner == service}


# -- transfer syntaxes ------------------------------------------------------------------------

_TRANSFER_SYNTAXES = {e.keyword: e.uid for e in _ENTRIES if e.type == "Transfer Syntax"}

#: what ``build_context`` proposes by default: the uncompressed syntaxes (PS3.5 A.1-A.5),
#: Explicit VR Big Endian last (retired, PS3.5 A.3, but still sent by old equipment)
DEFAULT_TRANSFER_SYNTAXES: tuple[str, ...] = tuple(
    _TRANSFER_SYNTAXES[keyword]
    for keyword in (
        "ImplicitVRLittleEndian",
        "ExplicitVRLittleEndian",
        "DeflatedExplicitVRLittleEndian",
        "ExplicitVRBigEndian",
    )
)


def _all_transfer_syntaxes(candidates: Iterable[UIDEntry]) -> tuple[str, ...]:
    """The defaults, then every current transfer syntax in UID order."""
    rest = sorted(
        (
            e.uid
            for e in candidates
            if e.type == "Transfer Syntax"
            and not e.retired
            and e.uid not in DEFAULT_TRANSFER_SYNTAXES
        ),
        key=uid_sort_key,
    )
    return (*DEFAULT_TRANSFER_SYNTAXES, *rest)


#: every current transfer syntax (PS3.5 Annex A, PS3.6 Table A-1) and Explicit VR Big Endian
ALL_TRANSFER_SYNTAXES: tuple[str, ...] = _all_transfer_syntaxes(_ENTRIES)
