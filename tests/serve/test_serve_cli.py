"""``dicomnet serve`` as a process: signals, the configuration file, workers, rescan, and
the command line's usage errors."""

from __future__ import annotations

import os
import signal
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from dicomnet.contrib.cli import main
from dicomnet.contrib.receive import make_storage_ae
from dicomnet.contrib.serve import load_config

from ..pacs.conftest import write_part10
from .conftest import (
    STUDY_MOVE,
    MakeSCU,
    StartServe,
    associate,
    find,
    instances,
    query,
    store,
)

pytestmark = [pytest.mark.leakcheck, pytest.mark.timeout(120)]


def serve_args(directory: Path, *more: str) -> list[str]:
    return ["--port", "0", "--bind", "127.0.0.1", "--aet", "PACS", "--dir", str(directory), *more]


def study_uids(scu: Any, host: str, port: int, **kwargs: Any) -> set[str]:
    found, final = find(scu, host, port, query("STUDY", StudyInstanceUID=""), **kwargs)
    assert final.Status == 0
    return {ds.StudyInstanceUID for ds in found}


def process_group(pgid: int) -> list[int]:
    """The processes still in process group ``pgid`` (zombies included)."""
    members = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        if int(fields[2]) == pgid:
            members.append(int(entry))
    return members


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_stops_cleanly_on_a_signal_and_keeps_what_it_stored(
    start_serve: StartServe, make_scu: MakeSCU, tmp_path: Path, signum: int
) -> None:
    folder = tmp_path / "pacs"
    serve = start_serve(*serve_args(folder, "-v"))
    assert store(make_scu(), serve.host, serve.port, instances()[:6]) == [0] * 6
    # an association still open when the signal comes is aborted
    idle = associate(make_scu(), serve.host, serve.port)
    assert serve.stop(signum) == 0
    assert idle.is_aborted or not idle.is_established
    assert f"{signal.Signals(signum).name}: stopping" in serve.stderr
    assert "Traceback" not in serve.stderr
    assert process_group(serve.proc.pid) == []
    assert list((folder / ".incoming").iterdir()) == []

    again = start_serve(*serve_args(folder))
    assert study_uids(make_scu(), again.host, again.port) == {"1.2.3.1", "1.2.3.2"}
    assert again.stop() == 0


def test_configuration_file(
    start_serve: StartServe, make_scu: MakeSCU, tmp_path: Path
) -> None:
    dest_folder = tmp_path / "dest"
    dest_folder.mkdir()
    dest_ae, _ = make_storage_ae(dest_folder, ae_title="DEST")
    dest = dest_ae.start_server(("127.0.0.1", 0), block=False)
    assert dest is not None
    try:
        config_dir = tmp_path / "etc"
        config_dir.mkdir()
        config = config_dir / "pacs.toml"
        config.write_text(
            "# dicomnet serve\n"
            "port = 1  # overridden on the command line\n"
            'aet = "FROMFILE"\n'
            'dir = "data"  # relative to this file\n'
            'bind = "127.0.0.1"\n'
            "require-called-aet = true\n"
            "no_fsync = true\n"
            "max-associations = 4\n"
            "[move-dest]\n"
            f'DEST = "127.0.0.1:{dest.server_address[1]}"\n'
        )
        serve = start_serve("--config", str(config), "--port", "0")
        assert "as 'FROMFILE'" in serve.stderr
        assert f"storing in {config_dir / 'data'}" in serve.stderr
        scu = make_scu()
        # the called AE title is checked
        wrong = scu.associate(serve.host, serve.port, ae_title="PACS")
        assert wrong.is_rejected
        assoc = associate(scu, serve.host, serve.port, ae_title="FROMFILE")
        assert [assoc.send_c_store(ds).Status for ds in instances()[:3]] == [0, 0, 0]
        responses = list(
            assoc.send_c_move(query("STUDY", StudyInstanceUID="1.2.3.1"), "DEST", STUDY_MOVE)
        )
        assoc.release()
        assert responses[-1][0].Status == 0
        assert len(list(dest_folder.iterdir())) == 3
        assert len(list((config_dir / "data").rglob("*.dcm"))) == 3
        assert serve.stop() == 0
    finally:
        dest_ae.shutdown()


def test_load_config(tmp_path: Path) -> None:
    config = tmp_path / "c.toml"
    config.write_text(
        'dir = "/srv/pacs"\n'
        'worklist_dir = "wl"\n'
        'move-dest = ["A=h1:104", "B=[::1]:11112"]\n'
        "idle-timeout = 0\n"
    )
    assert load_config(config) == {
        "directory": "/srv/pacs",
        "worklist_dir": str(tmp_path / "wl"),
        "move_dest": ["A=h1:104", "B=[::1]:11112"],
        "idle_timeout": 0,
    }
    config.write_text('[move-dest]\nA = { host = "::1", port = 104, tls = true }\nB = "h:1"\n')
    assert load_config(config) == {"move_dest": ["A=[::1]:104+tls", "B=h:1"]}
    for text, message in [
        ("colour = 1\n", "unknown option 'colour'"),
        ("port = \n", "cannot read"),
        ("move-dest = 3\n", "move-dest"),
        ('[move-dest]\nA = { host = "h" }\n', "move-dest 'A'"),
    ]:
        config.write_text(text)
        with pytest.raises(ValueError, match=message):
            load_config(config)


def run(*args: str) -> Any:
    return CliRunner().invoke(main, ["serve", *args], catch_exceptions=False)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--port", "0"], "Missing option '--dir'"),
        (["--dir", "x"], "Missing option '--port'"),
        (["--port", "0", "--dir", "x", "--move-dest", "DEST"], "AE=HOST:PORT"),
        (["--port", "0", "--dir", "x", "--move-dest", "DEST=h:0"], "port 1 to 65535"),
        (["--port", "0", "--dir", "x", "--aet", "A\\B"], "not an AE title"),
        (["--port", "0", "--dir", "x", "--max-pdu", "3"], "between 7"),
        (["--port", "0", "--dir", "x", "--workers", "0"], "--workers"),
    ],
)
def test_usage_errors_exit_2(args: list[str], message: str) -> None:
    result = run(*args)
    assert result.exit_code == 2
    assert message in result.stderr


def test_config_errors_exit_2(tmp_path: Path) -> None:
    config = tmp_path / "c.toml"
    config.write_text("colour = 1\n")
    result = run("--config", str(config))
    assert result.exit_code == 2
    assert "unknown option 'colour'" in result.stderr
    result = run("--config", str(tmp_path / "missing.toml"))
    assert result.exit_code == 2


def test_tls_options_need_a_certificate(tmp_path: Path) -> None:
    key = tmp_path / "k.pem"
    key.write_text("x")
    result = run("--port", "0", "--dir", str(tmp_path / "d"), "--tls-key", str(key))
    assert result.exit_code == 2
    assert "--tls-cert" in result.stderr


def test_a_port_in_use_exits_2(tmp_path: Path) -> None:
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = busy.getsockname()[1]
        result = run("--port", str(port), "--bind", "127.0.0.1", "--dir", str(tmp_path / "d"))
    assert result.exit_code == 2
    assert "Cannot serve on port" in result.stderr


def test_an_unreachable_database_exits_2(tmp_path: Path) -> None:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed = sock.getsockname()[1]
    result = run(
        "--port", "0", "--dir", str(tmp_path / "d"),
        "--db", f"postgresql://nobody@127.0.0.1:{closed}/pacs",
    )  # fmt: skip
    assert result.exit_code == 2
    assert "Cannot serve" in result.stderr


def test_help_lists_serve() -> None:
    result = CliRunner().invoke(main, ["--help"])
    assert "serve" in result.stdout
    result = run("--help")
    assert result.exit_code == 0
    for option in ("--config", "--db", "--worklist-dir", "--move-dest", "--tls-cert",
                   "--max-associations", "--workers", "--rescan"):
        assert option in result.stdout


def test_workers_share_the_port_and_the_index(
    start_serve: StartServe, make_scu: MakeSCU, tmp_path: Path
) -> None:
    serve = start_serve(*serve_args(tmp_path / "pacs", "--workers", "2", "--no-fsync", "-v"))
    assert "(2 workers)" in serve.stderr
    datasets = instances()
    for ds in datasets:  # one association each: the kernel spreads them over the workers
        assert store(make_scu(), serve.host, serve.port, [ds]) == [0]
    assert study_uids(make_scu(), serve.host, serve.port) == {
        "1.2.3.1", "1.2.3.2", "1.2.3.3", "1.2.3.4"
    }
    assert serve.stop() == 0
    assert process_group(serve.proc.pid) == []


def test_a_worker_dying_at_start_up_stops_the_server(
    start_serve: StartServe, make_scu: MakeSCU, tmp_path: Path
) -> None:
    serve = start_serve(*serve_args(tmp_path / "pacs", "--workers", "2"))
    workers = [pid for pid in process_group(serve.proc.pid) if pid != serve.proc.pid]
    assert len(workers) == 2
    # a worker that dies within 5 s of its start stops everything (a crash loop)
    os.kill(workers[0], signal.SIGKILL)
    assert serve.wait() == 1
    assert "died at start-up" in serve.stderr
    assert process_group(serve.proc.pid) == []


def test_rescan_at_start(start_serve: StartServe, make_scu: MakeSCU, tmp_path: Path) -> None:
    folder = tmp_path / "pacs"
    ds = instances()[0]
    write_part10(ds, folder / "1.2.3.1" / "1.2.3.1.1" / f"{ds.SOPInstanceUID}.dcm")
    plain = start_serve(*serve_args(folder))
    assert study_uids(make_scu(), plain.host, plain.port) == set()
    assert plain.stop() == 0
    rescanned = start_serve(*serve_args(folder, "--rescan", "-v"))
    assert "Rescan: 1 files indexed" in rescanned.stderr
    assert study_uids(make_scu(), rescanned.host, rescanned.port) == {"1.2.3.1"}
    assert rescanned.stop() == 0
