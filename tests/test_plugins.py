"""Plugins: loading, blocking, validation, the SOP class registry and the Verification SCP."""

from __future__ import annotations

import logging
import shutil
import sys
from collections.abc import Iterator
from importlib import metadata
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from pydicom.dataset import Dataset

import dicomnet.plugins.verification as verification_plugin
from dicomnet import hookspecs, plugin_manager, sop_class
from dicomnet.dimse_messages import CEchoRQ, CEchoRSP, CStoreRQ, CStoreRSP
from dicomnet.events import (
    EVT_C_ECHO,
    EVT_C_STORE,
    EVT_PDU_RECV,
    HandlerTable,
    InterventionEvent,
    trigger_intervention,
)
from dicomnet.hookspecs import hookimpl
from dicomnet.pdu import AAssociateRJ, AAssociateRQ
from dicomnet.plugin_manager import (
    AUTOLOAD_ENV,
    BUILTIN_PLUGINS,
    ENTRY_POINT_GROUP,
    PluginError,
    ServiceRegistry,
    make_plugin_manager,
)
from dicomnet.service import (
    PROCESSING_FAILURE,
    InvalidHandlerResult,
    ServiceClass,
    handler_failure,
    status_from_handler_result,
)
from dicomnet.status import STORAGE_SERVICE_CLASS_STATUS, VERIFICATION_SERVICE_CLASS_STATUS

VERIFICATION_UID = "1.2.840.10008.1.1"
ACME_UID = "1.2.826.0.1.3680043.8.498.99999.1"
PRIVATE_UID = "1.2.826.0.1.3680043.8.498.99999.2"
FIXTURES = Path(__file__).parent / "fixtures"
ROOT = Path(__file__).parent.parent


def registry_of(*plugins: Any, block: tuple[str, ...] = ()) -> ServiceRegistry:
    return ServiceRegistry.from_plugin_manager(make_plugin_manager(list(plugins), block=block))


def declaring(*services: ServiceClass, name: str = "Declares") -> object:
    """A plugin object whose dicomnet_service_classes() returns ``services``."""

    class Plugin:
        @hookimpl
        def dicomnet_service_classes(self) -> list[ServiceClass]:
            return list(services)

    Plugin.__name__ = name
    return Plugin()


def service(name: str, *uids: str, **kwargs: Any) -> ServiceClass:
    return ServiceClass(
        name=name,
        sop_classes={uid: f"{name.title()}{i}" for i, uid in enumerate(uids)},
        status_table=VERIFICATION_SERVICE_CLASS_STATUS,
        **kwargs,
    )


@pytest.fixture(autouse=True)
def _fresh_default_registry() -> Iterator[None]:
    plugin_manager.reset_default_registry()
    yield
    plugin_manager.reset_default_registry()


# -- minimal builds, blocking, names ------------------------------------------------------------


def test_minimal_build_has_exactly_verification() -> None:
    pm = make_plugin_manager(["verification"])
    assert [name for name, _ in pm.list_name_plugin()] == ["verification"]
    registry = ServiceRegistry.from_plugin_manager(pm)
    assert dict(registry.all_sop_classes()) == {VERIFICATION_UID: "Verification"}
    assert [s.name for s in registry.services] == ["verification"]
    svc = registry.service_for(VERIFICATION_UID)
    assert svc is verification_plugin.VERIFICATION
    assert svc.requests == frozenset({0x0030})
    assert svc.events == (EVT_C_ECHO,)
    assert svc.scp is verification_plugin.verification_scp
    assert registry.plugin_for(VERIFICATION_UID) == "verification"
    assert registry.context_list("VerificationPresentationContexts") == (VERIFICATION_UID,)
    assert registry.service_for("1.2.840.10008.5.1.4.1.1.2") is None
    assert VERIFICATION_UID in registry and len(registry) == 1


def test_default_build_loads_every_builtin() -> None:
    pm = make_plugin_manager()
    for name in BUILTIN_PLUGINS:
        assert pm.has_plugin(name)


def test_blocked_builtin_is_not_loaded() -> None:
    registry = ServiceRegistry.from_plugin_manager(make_plugin_manager(block=["verification"]))
    assert registry.service_for(VERIFICATION_UID) is None
    # a blocked name wins over a list that asks for it
    assert len(registry_of("verification", block=("verification",))) == 0


def test_empty_list_is_an_empty_build() -> None:
    pm = make_plugin_manager([])
    assert pm.list_name_plugin() == []
    assert len(ServiceRegistry.from_plugin_manager(pm)) == 0


def test_unknown_plugin_name_is_a_clear_error() -> None:
    with pytest.raises(PluginError, match=r"unknown plugin 'verifikation'.*verification"):
        make_plugin_manager(["verifikation"])


def test_unimportable_module_name_is_an_error() -> None:
    with pytest.raises(PluginError, match=r"cannot import the plugin module 'nowhere\.plugin'"):
        make_plugin_manager(["nowhere.plugin"])


def test_plugins_given_as_module_object_and_dotted_name() -> None:
    pm = make_plugin_manager([verification_plugin])
    assert pm.get_plugin("verification") is verification_plugin  # named like the built-in
    pm = make_plugin_manager(["dicomnet.plugins.verification"])
    assert pm.is_registered(verification_plugin)
    # the same plugin listed twice is registered once
    pm = make_plugin_manager(["verification", verification_plugin])
    assert len(pm.get_plugins()) == 1


def test_plain_object_plugin() -> None:
    registry = registry_of(declaring(service("widgets", PRIVATE_UID)))
    assert registry.service("widgets").sop_classes == {PRIVATE_UID: "Widgets0"}


def test_builtin_plugins_match_our_entry_points() -> None:
    """pyproject.toml declares every built-in in the entry-point group, and nothing else."""
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    table = project["project"]["entry-points"][ENTRY_POINT_GROUP]
    assert table == {name: f"dicomnet.plugins.{name}" for name in BUILTIN_PLUGINS}


def test_builtins_load_without_installed_entry_points(monkeypatch: pytest.MonkeyPatch) -> None:
    """From a source tree (no dist-info of ours) a built-in is imported by module name."""
    monkeypatch.setattr(plugin_manager, "_entry_points", dict)
    pm = make_plugin_manager()
    assert pm.get_plugin("verification") is verification_plugin


def own_entry_points(**names: str) -> dict[str, tuple[metadata.EntryPoint, str]]:
    """What an installed dicomnet distribution would declare."""
    return {
        name: (metadata.EntryPoint(name, value, ENTRY_POINT_GROUP), "dicomnet")
        for name, value in names.items()
    }


def test_builtins_load_through_our_entry_points(monkeypatch: pytest.MonkeyPatch) -> None:
    loaded: list[str] = []
    real_load = metadata.EntryPoint.load

    def load(self: metadata.EntryPoint) -> Any:
        loaded.append(self.name)
        return real_load(self)

    monkeypatch.setattr(metadata.EntryPoint, "load", load)
    monkeypatch.setattr(
        plugin_manager,
        "_entry_points",
        lambda: own_entry_points(verification="dicomnet.plugins.verification"),
    )
    assert make_plugin_manager().get_plugin("verification") is verification_plugin
    assert loaded == ["verification"]


def test_our_entry_points_load_even_without_autoload(monkeypatch: pytest.MonkeyPatch) -> None:
    """A built-in declared in pyproject.toml but missing from BUILTIN_PLUGINS is still ours."""
    monkeypatch.setattr(plugin_manager, "BUILTIN_PLUGINS", ())
    monkeypatch.setattr(
        plugin_manager,
        "_entry_points",
        lambda: own_entry_points(verification="dicomnet.plugins.verification"),
    )
    monkeypatch.setenv(AUTOLOAD_ENV, "1")
    assert make_plugin_manager().has_plugin("verification")


def test_missing_builtin_module_is_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(plugin_manager, "BUILTIN_PLUGINS", ("teleportation",))
    monkeypatch.setattr(plugin_manager, "_entry_points", dict)
    with pytest.raises(PluginError, match="built-in plugin 'teleportation'"):
        make_plugin_manager()


# -- validation at registration ------------------------------------------------------------------


def test_misspelt_hook_is_an_error_at_start_up() -> None:
    class Typo:
        @hookimpl
        def dicomnet_service_clases(self) -> list[ServiceClass]:
            return []

    with pytest.raises(PluginError, match="dicomnet_service_clases"):
        make_plugin_manager([Typo()])


def test_unmarked_dicomnet_function_is_a_hook_too() -> None:
    """Like pytest_* in pytest: a forgotten marker does not make a hook vanish."""
    unmarked = ModuleType("unmarked_plugin")
    unmarked.dicomnet_service_classes = lambda: [service("unmarked", PRIVATE_UID)]  # type: ignore[attr-defined]
    assert registry_of(unmarked).service_for(PRIVATE_UID) is not None

    typo = ModuleType("typo_plugin")
    typo.dicomnet_servce_classes = lambda: []  # type: ignore[attr-defined]
    with pytest.raises(PluginError, match="dicomnet_servce_classes"):
        make_plugin_manager([typo])


def test_marker_of_another_project_is_not_silently_ignored() -> None:
    import pluggy

    other = pluggy.HookimplMarker("someone-else")

    class Plugin:
        @other
        def dicomnet_service_classes(self) -> list[ServiceClass]:
            return [service("elsewhere", PRIVATE_UID)]

    assert registry_of(Plugin()).service("elsewhere")


def test_hook_with_unknown_argument_is_an_error() -> None:
    class Plugin:
        @hookimpl
        def dicomnet_accept_association(self, assoc: Any, reqest: Any) -> None:
            return None

    with pytest.raises(PluginError, match="reqest"):
        make_plugin_manager([Plugin()])


def test_same_sop_class_claimed_by_two_plugins_names_both() -> None:
    first = declaring(service("alpha", PRIVATE_UID), name="AlphaPlugin")
    second = declaring(service("beta", PRIVATE_UID), name="BetaPlugin")
    pm = make_plugin_manager([first, second])
    with pytest.raises(PluginError) as info:
        ServiceRegistry.from_plugin_manager(pm)
    message = str(info.value)
    assert PRIVATE_UID in message
    assert "AlphaPlugin" in message and "BetaPlugin" in message
    assert "'alpha'" in message and "'beta'" in message


def test_verification_claimed_again_by_a_third_party() -> None:
    rogue = declaring(service("echo2", VERIFICATION_UID), name="Rogue")
    with pytest.raises(PluginError, match=r"1\.2\.840\.10008\.1\.1.*'verification'.*Rogue"):
        registry_of("verification", rogue)


def test_duplicate_service_class_names() -> None:
    first = declaring(service("twin", PRIVATE_UID), name="One")
    second = declaring(service("twin", ACME_UID), name="Two")
    with pytest.raises(PluginError, match=r"two service classes are named 'twin'.*One.*Two"):
        registry_of(first, second)


def test_duplicate_context_list() -> None:
    first = declaring(service("a", PRIVATE_UID, context_lists={"XContexts": [PRIVATE_UID]}),
                      name="A")
    second = declaring(service("b", ACME_UID, context_lists={"XContexts": [ACME_UID]}), name="B")
    with pytest.raises(PluginError, match="XContexts"):
        registry_of(first, second)


def test_failing_hook_names_its_plugin() -> None:
    class Broken:
        @hookimpl
        def dicomnet_service_classes(self) -> list[ServiceClass]:
            raise RuntimeError("boom")

    with pytest.raises(PluginError, match=r"Broken.*boom"):
        registry_of(Broken())


@pytest.mark.parametrize("result", [service("single", PRIVATE_UID), "verification", 42])
def test_declaration_hook_must_return_a_sequence(result: object) -> None:
    class Odd:
        @hookimpl
        def dicomnet_service_classes(self) -> object:
            return result

    with pytest.raises(PluginError, match=r"sequence|not a ServiceClass"):
        registry_of(Odd())


def test_declared_object_must_be_a_service_class() -> None:
    with pytest.raises(PluginError, match="not a ServiceClass"):
        registry_of(declaring("storage", name="Confused"))  # type: ignore[arg-type]


# -- extra SOP classes -----------------------------------------------------------------------


class PrivateEcho:
    @hookimpl
    def dicomnet_extra_sop_classes(self) -> list[tuple[str, str, str]]:
        return [("verification", PRIVATE_UID, "AcmePrivateEcho")]


def test_extra_sop_class_joins_an_existing_service_class() -> None:
    extra = PrivateEcho()
    pm = make_plugin_manager(["verification", extra])
    registry = ServiceRegistry.from_plugin_manager(pm)
    svc = registry.service_for(PRIVATE_UID)
    assert svc is not None and svc.name == "verification"
    assert svc.sop_classes == {VERIFICATION_UID: "Verification", PRIVATE_UID: "AcmePrivateEcho"}
    assert registry.service_for(VERIFICATION_UID) is svc
    assert registry.plugin_for(PRIVATE_UID) == pm.get_name(extra)
    assert registry.plugin_for(VERIFICATION_UID) == "verification"
    assert registry.uid_for_keyword("AcmePrivateEcho") == PRIVATE_UID


def test_extra_sop_class_for_an_absent_service_is_skipped(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, "dicomnet.plugins"):
        registry = registry_of(PrivateEcho())
    assert len(registry) == 0
    assert "not loaded" in caplog.text and PRIVATE_UID in caplog.text


def test_extra_sop_class_cannot_take_a_claimed_uid() -> None:
    class Thief:
        @hookimpl
        def dicomnet_extra_sop_classes(self) -> list[tuple[str, str, str]]:
            return [("verification", VERIFICATION_UID, "Stolen")]

    with pytest.raises(PluginError, match="claimed twice"):
        registry_of("verification", Thief())


def test_malformed_extra_is_an_error() -> None:
    class Bad:
        @hookimpl
        def dicomnet_extra_sop_classes(self) -> list[object]:
            return [("verification", PRIVATE_UID)]

    with pytest.raises(PluginError, match="service_name, uid, keyword"):
        registry_of("verification", Bad())


# -- policy hooks are firstresult ---------------------------------------------------------------


def test_policy_hooks_stop_at_the_first_answer() -> None:
    rejection = AAssociateRJ(1, 1, 3)
    calls: list[str] = []

    class NoOpinion:
        @hookimpl
        def dicomnet_accept_association(self, request: AAssociateRQ) -> None:
            calls.append("no opinion")

    class Refuses:
        @hookimpl
        def dicomnet_accept_association(self, assoc: Any, request: AAssociateRQ) -> AAssociateRJ:
            calls.append("refuses")
            return rejection

    class Knows:
        @hookimpl
        def dicomnet_resolve_move_destination(self, ae_title: str) -> tuple[str, int] | None:
            return ("10.0.0.7", 11112) if ae_title == "ARCHIVE" else None

        @hookimpl
        def dicomnet_verify_user_identity(self, identity: Any) -> tuple[bool, bytes | None]:
            return (identity == "ok", None)

    # pluggy asks the plugin registered last first
    pm = make_plugin_manager([Refuses(), NoOpinion(), Knows()])
    rq = AAssociateRQ("SCP", "SCU", presentation_contexts=())
    assert pm.hook.dicomnet_accept_association(assoc=None, request=rq) is rejection
    assert calls == ["no opinion", "refuses"]
    hook = pm.hook.dicomnet_resolve_move_destination
    assert hook(assoc=None, ae_title="ARCHIVE") == ("10.0.0.7", 11112)
    assert hook(assoc=None, ae_title="NOBODY") is None
    assert pm.hook.dicomnet_verify_user_identity(assoc=None, identity="ok") == (True, None)
    assert make_plugin_manager([]).hook.dicomnet_accept_association(
        assoc=None, request=rq
    ) is None


def test_hookspecs_document_their_semantics() -> None:
    for name in hookspecs.__all__:
        if name.startswith("dicomnet_"):
            func = getattr(hookspecs, name)
            opts = func.dicomnet_spec
            doc = func.__doc__ or ""
            expected = "**firstresult" if opts["firstresult"] else "**Collect-all"
            assert expected in doc, name


# -- the third-party distribution ---------------------------------------------------------------


@pytest.fixture
def acme_dist(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """The throwaway distribution of tests/fixtures/plugin_dist, "installed" on sys.path."""
    site = tmp_path / "site-packages"
    shutil.copytree(FIXTURES / "plugin_dist", site, ignore=shutil.ignore_patterns("*.md"))
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.delenv(AUTOLOAD_ENV, raising=False)
    yield site
    sys.modules.pop("acme_plugin", None)


def test_third_party_plugin_is_picked_up_without_code_change(acme_dist: Path) -> None:
    pm = make_plugin_manager()
    assert pm.has_plugin("acme") and pm.has_plugin("verification")
    registry = ServiceRegistry.from_plugin_manager(pm)
    widget = registry.service_for(ACME_UID)
    assert widget is not None and widget.name == "acme_widgets"
    assert registry.plugin_for(ACME_UID) == "acme"
    assert registry.service_for(VERIFICATION_UID) is verification_plugin.VERIFICATION
    # the minimal build names it like a built-in
    assert registry_of("acme").services == (widget,)


def test_third_party_sop_class_by_keyword(acme_dist: Path) -> None:
    widget = sop_class.AcmeWidgetStorage
    assert widget == ACME_UID
    assert isinstance(widget, sop_class.SOPClass)
    assert widget.keyword == "AcmeWidgetStorage"
    assert widget.service_class is not None and widget.service_class.name == "acme_widgets"
    assert sop_class.uid_to_sop_class(ACME_UID).keyword == "AcmeWidgetStorage"


def test_third_party_scp_serves_requests(acme_dist: Path) -> None:
    registry = ServiceRegistry.from_plugin_manager(make_plugin_manager(["acme"]))
    widget = registry.service_for(ACME_UID)
    assert widget is not None and widget.scp is not None and widget.serves(0x0001)
    request = CStoreRQ(MessageID=3, AffectedSOPClassUID=ACME_UID, AffectedSOPInstanceUID="1.2.3")
    call = FakeCall(request, widget.status_table)
    call.handlers.bind(EVT_C_STORE, lambda event: 0xB000)
    widget.scp(call)
    (response, _), = call.sent
    assert isinstance(response, CStoreRSP)
    assert (response.MessageIDBeingRespondedTo, response.Status) == (3, 0xB000)
    assert sys.modules["acme_plugin"].SERVED == [3]


def test_third_party_plugin_not_autoloaded_when_disabled(
    acme_dist: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(AUTOLOAD_ENV, "1")
    pm = make_plugin_manager()
    assert not pm.has_plugin("acme")
    assert pm.has_plugin("verification")  # built-ins still load, as in pytest
    plugin_manager.reset_default_registry()
    with pytest.raises(AttributeError, match="AcmeWidgetStorage"):
        _ = sop_class.AcmeWidgetStorage
    # asking for it by name still works
    assert make_plugin_manager(["acme"]).has_plugin("acme")


def test_empty_env_var_keeps_autoload(acme_dist: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(AUTOLOAD_ENV, "")
    assert make_plugin_manager().has_plugin("acme")


def test_blocked_third_party_plugin_is_skipped(acme_dist: Path) -> None:
    pm = make_plugin_manager(block=["acme"])
    assert not pm.has_plugin("acme")
    assert ServiceRegistry.from_plugin_manager(pm).service_for(ACME_UID) is None
    assert not make_plugin_manager(["acme"], block=["acme"]).has_plugin("acme")


def test_two_distributions_with_one_plugin_name(acme_dist: Path) -> None:
    other = acme_dist / "other_plugin-1.0.dist-info"
    other.mkdir()
    (other / "METADATA").write_text("Metadata-Version: 2.1\nName: other-plugin\nVersion: 1.0\n")
    (other / "entry_points.txt").write_text("[dicomnet.plugins]\nacme = other_plugin\n")
    with pytest.raises(PluginError, match=r"two distributions declare the plugin 'acme'"):
        make_plugin_manager()


def test_third_party_may_not_take_a_builtin_name(acme_dist: Path) -> None:
    impostor = acme_dist / "impostor-1.0.dist-info"
    impostor.mkdir()
    (impostor / "METADATA").write_text("Metadata-Version: 2.1\nName: impostor\nVersion: 1.0\n")
    (impostor / "entry_points.txt").write_text(
        "[dicomnet.plugins]\nverification = acme_plugin\n"
    )
    with pytest.raises(PluginError, match="built-in"):
        make_plugin_manager()


def test_broken_entry_point_names_its_distribution(acme_dist: Path) -> None:
    broken = acme_dist / "broken_plugin-2.0.dist-info"
    broken.mkdir()
    (broken / "METADATA").write_text("Metadata-Version: 2.1\nName: broken-plugin\nVersion: 2.0\n")
    (broken / "entry_points.txt").write_text("[dicomnet.plugins]\nbroken = does_not_exist\n")
    with pytest.raises(PluginError, match=r"'broken'.*broken-plugin"):
        make_plugin_manager()
    assert make_plugin_manager(block=["broken"]).has_plugin("acme")


# -- the service class value ---------------------------------------------------------------------


def test_service_class_converts_requests() -> None:
    svc = service("x", PRIVATE_UID, requests=[CEchoRQ, "C-FIND-RQ", 0x0021])
    assert svc.requests == frozenset({0x0030, 0x0020, 0x0021})
    assert svc.serves(0x0030) and not svc.serves(0x0001)


@pytest.mark.parametrize("bad", [CEchoRSP, 0x8030, "C-ECHO-RSP", True, object()])
def test_service_class_rejects_non_requests(bad: object) -> None:
    with pytest.raises((TypeError, ValueError)):
        service("x", PRIVATE_UID, requests=[bad])


def test_service_class_is_read_only() -> None:
    uids = {PRIVATE_UID: "Widget"}
    svc = ServiceClass("x", uids, VERIFICATION_SERVICE_CLASS_STATUS)
    uids[ACME_UID] = "Other"
    assert ACME_UID not in svc.sop_classes
    with pytest.raises(TypeError):
        svc.sop_classes[ACME_UID] = "Other"  # type: ignore[index]
    with pytest.raises(AttributeError):
        svc.name = "y"  # type: ignore[misc]
    assert hash(svc) == hash(ServiceClass("x", {PRIVATE_UID: "W"}, STORAGE_SERVICE_CLASS_STATUS))


def test_service_class_validation() -> None:
    with pytest.raises(ValueError, match="identifier"):
        service("no spaces", PRIVATE_UID)
    with pytest.raises(TypeError, match="intervention"):
        service("x", PRIVATE_UID, events=[EVT_PDU_RECV])
    with pytest.raises(TypeError, match="sequence of UIDs"):
        service("x", PRIVATE_UID, context_lists={"XContexts": PRIVATE_UID})
    with pytest.raises(ValueError, match="status code"):
        service("x", PRIVATE_UID, failure_status=0x10000)


# -- handler results -----------------------------------------------------------------------------


def status_dataset(code: int, comment: str | None = None) -> Dataset:
    ds = Dataset()
    ds.Status = code
    if comment is not None:
        ds.ErrorComment = comment
    return ds


def test_status_from_int_and_dataset() -> None:
    table = VERIFICATION_SERVICE_CLASS_STATUS
    assert status_from_handler_result(0x0000, table) == (0x0000, None)
    ds = status_dataset(0x0122, "no")
    assert status_from_handler_result(ds, table) == (0x0122, ds)


def test_unknown_status_is_sent_with_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, "dicomnet.service"):
        assert status_from_handler_result(0xC123, VERIFICATION_SERVICE_CLASS_STATUS) == (
            0xC123, None
        )
    assert "0xC123" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING, "dicomnet.service"):
        status_from_handler_result(0xC123, STORAGE_SERVICE_CLASS_STATUS)  # Cxxx range: known
    assert caplog.text == ""


@pytest.mark.parametrize("bad", ["0", None, True, 1.0, -1, 0x10000, Dataset()])
def test_invalid_handler_results(bad: object) -> None:
    with pytest.raises(InvalidHandlerResult):
        status_from_handler_result(bad, VERIFICATION_SERVICE_CLASS_STATUS)


def test_handler_failure_logs_the_traceback(caplog: pytest.LogCaptureFixture) -> None:
    try:
        raise KeyError("missing")
    except KeyError as exc:
        with caplog.at_level(logging.ERROR, "dicomnet.service"):
            assert handler_failure(exc, what="handler bound to X") == PROCESSING_FAILURE
            assert handler_failure(exc, status=0xC000) == 0xC000
    record = caplog.records[0]
    assert record.exc_info is not None and "handler bound to X" in record.getMessage()


# -- the Verification SCP --------------------------------------------------------------------------


class FakeContext:
    context_id = 1
    abstract_syntax = VERIFICATION_UID
    transfer_syntax = "1.2.840.10008.1.2"
    as_scu = False
    as_scp = True


class FakeCall:
    """A ServiceCall as the association implements it, over a real HandlerTable."""

    def __init__(self, request: Any, table: Any) -> None:
        self.assoc: Any = None
        self.context = FakeContext()
        self.request = request
        self.has_dataset = False
        self.is_cancelled = False
        self.status_table = table
        self.handlers = HandlerTable()
        self.sent: list[tuple[Any, Any]] = []

    def trigger(self, event: InterventionEvent, /, **attrs: Any) -> Any:
        attrs = {"request": self.request, "context": self.context, **attrs}
        return trigger_intervention(self.handlers, self.assoc, event, attrs)

    def send(self, response: Any, dataset: Any = None) -> None:
        self.sent.append((response, dataset))


def echo(handler: Any = None) -> CEchoRSP:
    call = FakeCall(CEchoRQ(MessageID=7), VERIFICATION_SERVICE_CLASS_STATUS)
    if handler is not None:
        call.handlers.bind(EVT_C_ECHO, handler)
    verification_plugin.verification_scp(call)
    (response, dataset), = call.sent
    assert dataset is None
    assert isinstance(response, CEchoRSP)
    assert response.MessageIDBeingRespondedTo == 7
    assert response.AffectedSOPClassUID == VERIFICATION_UID
    return response


def test_echo_without_handler_is_success() -> None:
    assert echo().Status == 0x0000


def test_echo_handler_sees_request_and_context() -> None:
    seen: list[Any] = []

    def handler(event: Any) -> int:
        seen.append((event.request.MessageID, event.context.context_id, event.message_id))
        return 0x0000

    assert echo(handler).Status == 0
    assert seen == [(7, 1, 7)]


@pytest.mark.parametrize("code", [0x0000, 0x0122, 0x0210, 0x0211, 0x0212])
def test_echo_handler_status_int(code: int) -> None:
    assert echo(lambda event: code).Status == code


def test_echo_handler_status_dataset() -> None:
    response = echo(lambda event: status_dataset(0x0210, "already running"))
    assert (response.Status, response.ErrorComment) == (0x0210, "already running")


def test_echo_handler_exception_is_processing_failure(caplog: pytest.LogCaptureFixture) -> None:
    def handler(event: Any) -> int:
        raise RuntimeError("database down")

    with caplog.at_level(logging.ERROR):
        assert echo(handler).Status == 0x0110
    assert "EVT_C_ECHO" in caplog.text and "database down" in caplog.text


@pytest.mark.parametrize("result", ["success", None, Dataset(), 0x12345])
def test_echo_handler_bad_result_is_processing_failure(
    result: object, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.ERROR):
        assert echo(lambda event: result).Status == 0x0110
    assert "EVT_C_ECHO" in caplog.text


def test_echo_unknown_status_is_sent(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        assert echo(lambda event: 0xC001).Status == 0xC001
    assert "0xC001" in caplog.text


def test_verification_declaration() -> None:
    svc = verification_plugin.VERIFICATION
    assert svc.name == "verification"
    assert svc.status_table is VERIFICATION_SERVICE_CLASS_STATUS
    assert svc.failure_status == 0x0110
    assert svc.reference == "PS3.4 Annex A"
    assert dict(svc.context_lists) == {"VerificationPresentationContexts": (VERIFICATION_UID,)}
    assert verification_plugin.dicomnet_service_classes() == [svc]


# -- the guide's example -----------------------------------------------------------------------


def _doc_block(header: str) -> str:
    text = (ROOT / "docs" / "plugins.md").read_text()
    for block in text.split("```python\n")[1:]:
        code = block.split("```", 1)[0]
        if code.startswith(header):
            return code
    raise AssertionError(f"no code block starting with {header!r} in docs/plugins.md")


def test_the_guides_plugin_example_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """docs/plugins.md: the acme_widgets plugin stores a widget over a real association."""
    (tmp_path / "acme_widgets.py").write_text(_doc_block("# acme_widgets.py"))
    monkeypatch.syspath_prepend(str(tmp_path))
    try:
        exec(compile(_doc_block("# try_it.py"), "try_it.py", "exec"), {"__name__": "try_it"})
    finally:
        sys.modules.pop("acme_widgets", None)
