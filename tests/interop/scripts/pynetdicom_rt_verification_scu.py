"""An RT Machine Verification SCU (a treatment delivery system) with pynetdicom (run with the
pynetdicom venv's python).

usage: pynetdicom_rt_verification_scu.py PORT CALLED_AE_TITLE

Associates with 127.0.0.1:PORT as ``PYNETDICOM-TDS``, with an N-EVENT-REPORT
handler on the association, and prints one JSON object per operation
(``{"op": ..., "status": ...}``; ``status`` is ``null`` when no valid response
came) and per report received (``{"op": "N-EVENT-REPORT", "event_type": ...}``):

* a conventional beam: N-CREATE (plan PLAN, Patient ID P-1), N-SET (beam 1,
  gantry 180.2), N-ACTION 1 and the reports up to Done, N-GET of the Treatment
  Verification Status; N-SET (gantry 175), N-ACTION 1 and the reports up to Done;
  N-DELETE, then an N-GET of the deleted instance;
* an ion beam: N-CREATE (plan ION_PLAN), N-SET, N-ACTION 1 and its Done;
* what the SCP refuses: N-ACTION 2 (``action-2``), an N-CREATE carrying a
  Treatment Verification Status (``create-with-result``), an N-CREATE of an
  unknown plan (``create-unknown-plan``), an N-SET of the Patient ID
  (``set-patient``), an N-SET of beam 7 (``set-beam-7``).
"""

import json
import sys
import threading

from pydicom.dataset import Dataset
from pydicom.uid import generate_uid
from pynetdicom import AE, evt
from pynetdicom.sop_class import RTConventionalMachineVerification, RTIonMachineVerification

CONVENTIONAL = RTConventionalMachineVerification
ION = RTIonMachineVerification
RT_PLAN_STORAGE = "1.2.840.10008.5.1.4.1.1.481.5"
RT_ION_PLAN_STORAGE = "1.2.840.10008.5.1.4.1.1.481.8"
PLAN = "1.2.826.0.1.3680043.8.498.77001"
ION_PLAN = "1.2.826.0.1.3680043.8.498.77002"
WAIT = 20


_PRINTING = threading.Lock()


def say(**fields):
    """One JSON line; whole, although handler threads print too."""
    with _PRINTING:
        sys.stdout.write(json.dumps(fields) + "\n")
        sys.stdout.flush()


def status_of(status):
    return status.get("Status") if status else None


class Reports:
    """The N-EVENT-REPORT handler: prints each report, signals each Done."""

    def __init__(self):
        self.done = threading.Semaphore(0)

    def __call__(self, event):
        fields = {"op": "N-EVENT-REPORT", "event_type": event.event_type,
                  "uid": event.request.AffectedSOPInstanceUID,
                  "sop_class": event.request.AffectedSOPClassUID}
        if event.event_type == 2:
            fields["result"] = event.event_information.TreatmentVerificationStatus
        say(**fields)
        if event.event_type == 2:
            self.done.release()
        return 0x0000, None


def creation(plan, plan_class, ion):
    ref = Dataset()
    ref.ReferencedSOPClassUID = plan_class
    ref.ReferencedSOPInstanceUID = plan
    ds = Dataset()
    ds.ReferencedRTPlanSequence = [ref]
    ds.PatientID = "P-1"
    ds.GeneralMachineVerificationSequence = []
    if ion:
        ds.IonMachineVerificationSequence = []
    else:
        ds.ConventionalMachineVerificationSequence = []
    return ds


def beam(number, gantry, ion):
    general = Dataset()
    general.ReferencedBeamNumber = number
    general.TreatmentMachineName = "LINAC-1"
    general.RadiationType = "PROTON" if ion else "PHOTON"
    point = Dataset()
    point.GantryAngle = gantry
    point.ReferencedControlPointIndex = 0
    module = Dataset()
    ds = Dataset()
    ds.GeneralMachineVerificationSequence = [general]
    if ion:
        module.IonControlPointVerificationSequence = [point]
        ds.IonMachineVerificationSequence = [module]
    else:
        module.ConventionalControlPointVerificationSequence = [point]
        ds.ConventionalMachineVerificationSequence = [module]
    return ds


def verify(assoc, reports, sop_class, uid, name="N-ACTION"):
    status, _ = assoc.send_n_action(None, 1, sop_class, uid)
    say(op=name, status=status_of(status))
    if status_of(status) == 0x0000 and not reports.done.acquire(timeout=WAIT):
        say(op="timeout", waiting_for=uid)


def main(argv):
    port, called = int(argv[1]), argv[2]
    ae = AE(ae_title="PYNETDICOM-TDS")
    ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = WAIT
    ae.add_requested_context(CONVENTIONAL)
    ae.add_requested_context(ION)
    reports = Reports()
    assoc = ae.associate("127.0.0.1", port, ae_title=called,
                         evt_handlers=[(evt.EVT_N_EVENT_REPORT, reports)])
    if not assoc.is_established:
        say(op="associate", status=None)
        return 1
    try:
        uid = generate_uid()
        status, _ = assoc.send_n_create(creation(PLAN, RT_PLAN_STORAGE, False), CONVENTIONAL, uid)
        say(op="N-CREATE", status=status_of(status), uid=uid)
        status, _ = assoc.send_n_set(beam(1, 180.2, False), CONVENTIONAL, uid)
        say(op="N-SET", status=status_of(status))
        verify(assoc, reports, CONVENTIONAL, uid)
        status, got = assoc.send_n_get([0x3008002C], CONVENTIONAL, uid)
        say(op="N-GET", status=status_of(status),
            result=got.get("TreatmentVerificationStatus") if got is not None else None)
        status, _ = assoc.send_n_set(beam(1, 175.0, False), CONVENTIONAL, uid)
        say(op="N-SET-off", status=status_of(status))
        verify(assoc, reports, CONVENTIONAL, uid, "N-ACTION-off")
        status, _ = assoc.send_n_action(None, 2, CONVENTIONAL, uid)
        say(op="action-2", status=status_of(status))
        status = assoc.send_n_delete(CONVENTIONAL, uid)
        say(op="N-DELETE", status=status_of(status))
        status, _ = assoc.send_n_get([0x3008002C], CONVENTIONAL, uid)
        say(op="N-GET-deleted", status=status_of(status))

        ion_uid = generate_uid()
        status, _ = assoc.send_n_create(creation(ION_PLAN, RT_ION_PLAN_STORAGE, True), ION,
                                        ion_uid)
        say(op="N-CREATE-ion", status=status_of(status), uid=ion_uid)
        status, _ = assoc.send_n_set(beam(1, 180.0, True), ION, ion_uid)
        say(op="N-SET-ion", status=status_of(status))
        verify(assoc, reports, ION, ion_uid, "N-ACTION-ion")

        with_result = creation(PLAN, RT_PLAN_STORAGE, False)
        with_result.TreatmentVerificationStatus = "VERIFIED"
        status, _ = assoc.send_n_create(with_result, CONVENTIONAL, generate_uid())
        say(op="create-with-result", status=status_of(status))
        unknown = creation("1.2.826.0.1.3680043.8.498.77099", RT_PLAN_STORAGE, False)
        status, _ = assoc.send_n_create(unknown, CONVENTIONAL, generate_uid())
        say(op="create-unknown-plan", status=status_of(status))
        patient = beam(1, 180.0, True)
        patient.PatientID = "P-2"
        status, _ = assoc.send_n_set(patient, ION, ion_uid)
        say(op="set-patient", status=status_of(status))
        status, _ = assoc.send_n_set(beam(7, 180.0, True), ION, ion_uid)
        say(op="set-beam-7", status=status_of(status))
    finally:
        assoc.release()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
