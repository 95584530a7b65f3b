#!/usr/bin/env python3
"""Fuzz target for the PDU framing and decoder (PS3.8 9.3): arbitrary bytes in.

The property: whatever arrives, :class:`~dicomnet.framing.PDUReader` and
:func:`~dicomnet.pdu.decode_pdu` either succeed or raise
:class:`~dicomnet.errors.PDUDecodeError` / :class:`~dicomnet.errors.PDUTooLarge`;
any other exception (IndexError, struct.error, ValueError, UnicodeDecodeError...)
is a bug. A decoded PDU must also encode, and the encoding must be a fixed
point: ``encode(decode(encode(pdu))) == encode(pdu)``.

An input is one control byte (how the stream is cut, the receive chunk size,
``feed`` or ``recv_into``) followed by the byte stream.

With atheris (coverage-guided, libFuzzer), seeded with the captured PDUs::

    python fuzz/fuzz_pdu.py --make-corpus /tmp/pdu-corpus
    python fuzz/fuzz_pdu.py /tmp/pdu-corpus -max_total_time=600

Without atheris, a plain random-mutation stress run over the same seeds::

    python fuzz/fuzz_pdu.py --stress 200000 [--seed 1]

Not part of the test suite (see fuzz/README.md).
"""

from __future__ import annotations

import argparse
import contextlib
import random
import sys
from pathlib import Path

SEEDS = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "pdus"

try:
    import atheris  # type: ignore[import-untyped,import-not-found,unused-ignore]
except ImportError:  # the stress mode needs no atheris
    atheris = None

if atheris is not None:
    with atheris.instrument_imports(include=["dicomnet"]):
        from dicomnet.errors import PDUDecodeError, PDUTooLarge
        from dicomnet.framing import PDUReader
        from dicomnet.pdu import PDU, decode_pdu
else:
    from dicomnet.errors import PDUDecodeError, PDUTooLarge
    from dicomnet.framing import PDUReader
    from dicomnet.pdu import PDU, decode_pdu

EXPECTED = (PDUDecodeError, PDUTooLarge)
CHUNK_SIZES = (7, 64, 333, 4096)


def check_decoded(pdu: PDU) -> None:
    """A decoded PDU encodes, and its encoding decodes to the same value."""
    wire = pdu.to_bytes()
    again = decode_pdu(wire[0], memoryview(wire)[6:])
    assert again == pdu, (pdu, again)
    assert again.to_bytes() == wire


def one_input(data: bytes) -> None:
    """The fuzz target: framing, then decoding, of ``data``."""
    if len(data) < 2:
        return
    # first byte: how the stream is cut and the size of the receive chunks
    control, stream = data[0], data[1:]
    piece = 1 + (control & 0x0F) * 37
    reader = PDUReader(
        max_pdata_length=16384 if control & 0x10 else None,
        max_other_length=65536,
        chunk_size=CHUNK_SIZES[(control >> 5) & 3],
    )
    held = []
    try:
        for start in range(0, len(stream), piece):
            if control & 0x80:
                reader.feed(stream[start : start + piece])
            else:  # the recv_into path
                view = memoryview(stream)[start : start + piece]
                while view:
                    target = reader.get_buffer()
                    n = min(len(target), len(view))
                    target[:n] = view[:n]
                    reader.buffer_updated(n)
                    view = view[n:]
            while (frame := reader.next_pdu()) is not None:
                pdu_type, body = frame
                held.append((bytes(body), body))
                check_decoded(decode_pdu(pdu_type, body))
    except EXPECTED:
        pass
    # views handed out earlier are never overwritten by later data
    for copy, view in held:
        assert bytes(view) == copy
    # and the decoder alone, without framing: first byte the type, the rest the body
    with contextlib.suppress(*EXPECTED):
        check_decoded(decode_pdu(stream[0], memoryview(stream)[1:]))


def seeds() -> list[bytes]:
    return [path.read_bytes() for path in sorted(SEEDS.glob("*.bin"))]


def mutate(rng: random.Random, data: bytes, pool: list[bytes]) -> bytes:
    buf = bytearray(data)
    for _ in range(rng.randint(1, 6)):
        choice = rng.randrange(7)
        pos = rng.randrange(len(buf) + 1)
        if choice == 0 and buf:  # flip a bit
            buf[pos % len(buf)] ^= 1 << rng.randrange(8)
        elif choice == 1 and buf:  # set a byte to an edge value
            buf[pos % len(buf)] = rng.choice((0, 1, 0x7F, 0x80, 0xFF, rng.randrange(256)))
        elif choice == 2:  # cut
            del buf[pos:]
        elif choice == 3:  # insert random bytes
            buf[pos:pos] = rng.randbytes(rng.randint(1, 16))
        elif choice == 4:  # delete a run
            del buf[pos : pos + rng.randint(1, 16)]
        elif choice == 5 and len(buf) >= 2:  # overwrite a 16- or 32-bit field
            size = rng.choice((2, 4))
            value = rng.choice((0, 1, 2, 4, 0xFF, 0xFFFF, 0xFFFFFFFF, rng.randrange(1 << 32)))
            buf[pos : pos + size] = (value & ((1 << (8 * size)) - 1)).to_bytes(size, "big")
        elif choice == 6:  # splice in part of another seed
            other = rng.choice(pool)
            a = rng.randrange(len(other) + 1)
            buf[pos:pos] = other[a : a + rng.randint(1, 64)]
    return bytes(buf)


def stress(iterations: int, seed: int) -> int:
    rng = random.Random(seed)
    pool = seeds()
    if not pool:
        print(f"no seed PDUs in {SEEDS}", file=sys.stderr)
        return 2
    for i in range(iterations):
        stream = b"".join(mutate(rng, rng.choice(pool), pool) for _ in range(rng.randint(1, 3)))
        data = bytes([rng.randrange(256)]) + stream
        try:
            one_input(data)
        except Exception:
            crash = Path(f"crash-{seed}-{i}.bin")
            crash.write_bytes(data)
            print(f"iteration {i}: unexpected exception; input written to {crash}", file=sys.stderr)
            raise
        if i and i % 50000 == 0:
            print(f"{i} inputs, no unexpected exception")
    print(f"{iterations} inputs, no unexpected exception")
    return 0


def make_corpus(directory: Path) -> int:
    """Write the captured PDUs as fuzz inputs: each with a few control bytes, and all in a row."""
    directory.mkdir(parents=True, exist_ok=True)
    pool = seeds()
    for i, pdu in enumerate(pool):
        for control in (0x00, 0x93, 0xF1):
            (directory / f"seed-{i:02d}-{control:02x}.bin").write_bytes(bytes([control]) + pdu)
    (directory / "seed-all.bin").write_bytes(b"\x85" + b"".join(pool))
    print(f"wrote {3 * len(pool) + 1} inputs to {directory}")
    return 0


def main() -> int:
    if len(sys.argv) == 3 and sys.argv[1] == "--make-corpus":
        return make_corpus(Path(sys.argv[2]))
    if len(sys.argv) > 1 and sys.argv[1] == "--stress":
        parser = argparse.ArgumentParser()
        parser.add_argument("--stress", type=int, required=True, metavar="N")
        parser.add_argument("--seed", type=int, default=1)
        args = parser.parse_args()
        return stress(args.stress, args.seed)
    if atheris is None:
        print("atheris is not installed: pip install atheris, or use --stress N", file=sys.stderr)
        return 2
    atheris.Setup(sys.argv, one_input)
    atheris.Fuzz()
    return 0


if __name__ == "__main__":
    sys.exit(main())
