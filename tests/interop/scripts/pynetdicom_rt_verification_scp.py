"""An RT Machine Verification SCP (a Machine Parameter Verifier) with pynetdicom (run with the
pynetdicom venv's python).

usage: pynetdicom_rt_verification_scp.py AE_TITLE

Serves RT Conventional and RT Ion Machine Verification (PS3.4 Annex DD):
N-CREATE (C227H for a plan other than PLAN or ION_PLAN), N-SET (C224H for a beam
other than 1), N-GET and N-ACTION (C112H for an unknown instance), N-DELETE.
After the N-ACTION response of a known instance has gone out, it reports on the
same association: Pending (Event Type ID 1, no Event Information), then Done
(2) with the Treatment Verification Status: VERIFIED when the beam's gantry
angle is within 0.5 degrees of 180, NOT_VERIFIED otherwise (stored, so an N-GET
returns it). Listens on a free loopback port and prints ``listening on port
N``; shuts down when its standard input closes. Prints one JSON object per
request served (``{"op": "N-CREATE", ...}``) and per report sent
(``{"op": "report", "event_type": 2, "result": ..., "status": ...}``).
"""

import json
import sys
import threading

from pydicom.dataset import Dataset
from pynetdicom import AE, evt
from pynetdicom.sop_class import RTConventionalMachineVerification, RTIonMachineVerification

PLAN = "1.2.826.0.1.3680043.8.498.77001"
ION_PLAN = "1.2.826.0.1.3680043.8.498.77002"
PLANNED_GANTRY = 180.0


_PRINTING = threading.Lock()


def say(**fields):
    """One JSON line; whole, although handler threads print too."""
    with _PRINTING:
        sys.stdout.write(json.dumps(fields) + "\n")
        sys.stdout.flush()


def gantry_angle(instance, sop_class):
    if sop_class == RTIonMachineVerification:
        module = instance.IonMachineVerificationSequence[0]
        return float(module.IonControlPointVerificationSequence[0].GantryAngle)
    module = instance.ConventionalMachineVerificationSequence[0]
    return float(module.ConventionalControlPointVerificationSequence[0].GantryAngle)


def main(argv):
    ae_title = argv[1]
    instances = {}
    ae = AE(ae_title=ae_title)
    ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = 20
    ae.add_supported_context(RTConventionalMachineVerification)
    ae.add_supported_context(RTIonMachineVerification)

    def on_create(event):
        attributes = event.attribute_list
        uid = event.request.AffectedSOPInstanceUID
        plan = attributes.ReferencedRTPlanSequence[0].ReferencedSOPInstanceUID
        say(op="N-CREATE", sop_class=event.request.AffectedSOPClassUID, uid=uid, plan=plan,
            patient=attributes.get("PatientID"))
        if plan not in (PLAN, ION_PLAN):
            return 0xC227, None
        instances[uid] = attributes
        return 0x0000, None

    def on_set(event):
        uid = event.request.RequestedSOPInstanceUID
        changes = event.modification_list
        number = changes.GeneralMachineVerificationSequence[0].ReferencedBeamNumber
        say(op="N-SET", uid=uid, beam=number)
        if uid not in instances:
            return 0x0112, None
        if number != 1:
            return 0xC224, None
        instances[uid].update(changes)
        return 0x0000, None

    def on_get(event):
        uid = event.request.RequestedSOPInstanceUID
        say(op="N-GET", uid=uid, tags=[int(t) for t in event.attribute_identifiers])
        instance = instances.get(uid)
        if instance is None:
            return 0xC112, None
        answer = Dataset()
        for tag in event.attribute_identifiers:
            if tag in instance:
                answer[tag] = instance[tag]
        return 0x0000, answer

    def on_delete(event):
        uid = event.request.RequestedSOPInstanceUID
        say(op="N-DELETE", uid=uid)
        if instances.pop(uid, None) is None:
            return 0x0112
        return 0x0000

    answered = {}  # id(association) -> set once its N-ACTION-RSP is on the wire
    armed = set()

    def on_dimse_sent(event):
        if type(event.message).__name__ == "N_ACTION_RSP":
            armed.add(id(event.assoc))

    def on_data_sent(event):
        # the first write after the N-ACTION-RSP was handed over is that response
        if id(event.assoc) in armed:
            armed.discard(id(event.assoc))
            answered.setdefault(id(event.assoc), threading.Event()).set()

    def on_action(event):
        uid = event.request.RequestedSOPInstanceUID
        sop_class = event.request.RequestedSOPClassUID
        say(op="N-ACTION", uid=uid, action=event.action_type)
        instance = instances.get(uid)
        if instance is None:
            return 0xC112, None
        assoc = event.assoc
        sent = answered.setdefault(id(assoc), threading.Event())
        good = abs(gantry_angle(instance, sop_class) - PLANNED_GANTRY) <= 0.5
        result = "VERIFIED" if good else "NOT_VERIFIED"
        instance.TreatmentVerificationStatus = result

        def report():
            sent.wait(20)
            sent.clear()
            status, _ = assoc.send_n_event_report(None, 1, sop_class, uid)
            say(op="report", event_type=1, status=status.get("Status"))
            done = Dataset()
            done.TreatmentVerificationStatus = result
            status, _ = assoc.send_n_event_report(done, 2, sop_class, uid)
            say(op="report", event_type=2, result=result, status=status.get("Status"))

        threading.Thread(target=report, daemon=True).start()  # after the N-ACTION-RSP
        return 0x0000, None

    server = ae.start_server(
        ("127.0.0.1", 0),
        block=False,
        evt_handlers=[
            (evt.EVT_N_CREATE, on_create),
            (evt.EVT_N_SET, on_set),
            (evt.EVT_N_GET, on_get),
            (evt.EVT_N_ACTION, on_action),
            (evt.EVT_N_DELETE, on_delete),
            (evt.EVT_DIMSE_SENT, on_dimse_sent),
            (evt.EVT_DATA_SENT, on_data_sent),
        ],
    )
    print(f"listening on port {server.server_address[1]}", flush=True)
    sys.stdin.read()
    server.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
