"""C-STORE of files with pynetdicom as the SCU (run with the pynetdicom venv's python).

usage: pynetdicom_store_scu.py HOST PORT CALLED_AET CALLING_AET FILE...

Proposes, for each file, a presentation context with its SOP class and its
own transfer syntax, and sends every file on one association with
``send_c_store(path)``, which sends the data set as it is in the file.
Prints ``<file name> 0x<status>`` per file; exits 0 when all were Success,
1 otherwise.
"""

import sys
from pathlib import Path

from pydicom import dcmread
from pynetdicom import AE


def main(argv: list[str]) -> int:
    host, port, called, calling = argv[1], int(argv[2]), argv[3], argv[4]
    paths = argv[5:]
    ae = AE(ae_title=calling)
    ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = 20
    proposed = set()
    for path in paths:
        meta = dcmread(path, stop_before_pixels=True).file_meta
        pair = (meta.MediaStorageSOPClassUID, meta.TransferSyntaxUID)
        if pair not in proposed:
            proposed.add(pair)
            ae.add_requested_context(*pair)
    assoc = ae.associate(host, port, ae_title=called)
    if not assoc.is_established:
        print("association failed", flush=True)
        return 1
    ok = True
    for path in paths:
        status = assoc.send_c_store(path)
        code = status.Status if status else None
        print(f"{Path(path).name} " + ("none" if code is None else f"0x{code:04X}"), flush=True)
        ok = ok and code == 0
    assoc.release()
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
