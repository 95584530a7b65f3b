"""Channel.write over a non-blocking socket: partial writes, full buffers, the write timeout."""

from __future__ import annotations

import array
import contextlib
import os
import socket
import threading
from collections.abc import Iterator

import pytest

from dicomnet.transport import Channel


def _bytes(buffer: bytes | bytearray | memoryview) -> bytes:
    return bytes(memoryview(buffer).cast("B"))


@contextlib.contextmanager
def channel_pair(write_timeout: float | None = None) -> Iterator[tuple[Channel, socket.socket]]:
    left, right = socket.socketpair()
    left.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
    channel = Channel(left, write_timeout=write_timeout)
    try:
        yield channel, right
    finally:
        channel.close()
        right.close()


def test_a_batch_larger_than_the_socket_buffer_arrives_whole_and_in_order() -> None:
    with channel_pair(10) as (channel, right):
        batch: list[bytes | bytearray | memoryview] = [os.urandom(100_000) for _ in range(20)]
        batch.append(memoryview(array.array("H", range(1000))))  # items of 2 bytes
        batch += [b"", bytearray(b"xyz"), memoryview(b"0123456789")[3:7]] * 400  # > IOV_MAX
        expected = b"".join(_bytes(b) for b in batch)
        received = bytearray()

        def read() -> None:
            while len(received) < len(expected):
                chunk = right.recv(65536)
                if not chunk:
                    return
                received.extend(chunk)

        reader = threading.Thread(target=read)
        reader.start()
        channel.write(batch)
        reader.join(10)
        assert bytes(received) == expected


def test_a_small_batch_goes_out_with_one_call() -> None:
    with channel_pair() as (channel, right):
        channel.write([b"\x04\x00", memoryview(b"abcdef")[1:], bytearray(b"!")])
        assert right.recv(100) == b"\x04\x00bcdef!"


def test_a_peer_that_reads_nothing_makes_the_write_time_out() -> None:
    with channel_pair(0.2) as (channel, _right), pytest.raises(TimeoutError):
        channel.write([b"x" * 20_000_000])
