"""Planning presentation contexts for bulk sends (dicomnet.context_planning; PS3.8 9.3.2.2)."""

from __future__ import annotations

import math
from collections import Counter
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dicomnet.acse import ContextDefinition, build_associate_rq
from dicomnet.context_planning import (
    MAX_CONTEXTS,
    AssociationPlan,
    contexts_for_class,
    plan_contexts,
)
from dicomnet.part10 import FileInfo, NotDicomError
from tests.storage.send_support import (
    BIG_ENDIAN,
    CT_IMAGE_STORAGE,
    DEFLATED,
    EXPLICIT,
    IMPLICIT,
    J2K_LOSSLESS,
    RLE,
    ct_dataset,
    write_part10,
)

MR = "1.2.840.10008.5.1.4.1.1.4"
DEFAULTS = (EXPLICIT, IMPLICIT)


def info(sop_class: str, syntax: str, n: int = 0) -> FileInfo:
    return FileInfo(sop_class, f"1.2.3.{n}", syntax, offset=300, size=1000, path=f"/f/{n}.dcm")


def test_one_syntax_gets_one_context_with_the_fallback() -> None:
    assert contexts_for_class(CT_IMAGE_STORAGE, [EXPLICIT, EXPLICIT]) == [
        ContextDefinition(CT_IMAGE_STORAGE, (EXPLICIT, IMPLICIT))
    ]
    assert contexts_for_class(CT_IMAGE_STORAGE, [IMPLICIT]) == [
        ContextDefinition(CT_IMAGE_STORAGE, (IMPLICIT, EXPLICIT))
    ]


def test_explicit_and_implicit_each_alone() -> None:
    """Both in use: each its own context, so that both go as they are, whatever the peer picks."""
    assert contexts_for_class(CT_IMAGE_STORAGE, [IMPLICIT, EXPLICIT, IMPLICIT]) == [
        ContextDefinition(CT_IMAGE_STORAGE, (IMPLICIT,)),
        ContextDefinition(CT_IMAGE_STORAGE, (EXPLICIT,)),
    ]


def test_compressed_and_other_native_syntaxes_alone_plus_the_fallback() -> None:
    contexts = contexts_for_class(CT_IMAGE_STORAGE, [RLE, RLE, J2K_LOSSLESS, DEFLATED, BIG_ENDIAN])
    assert contexts[0] == ContextDefinition(CT_IMAGE_STORAGE, DEFAULTS)
    assert contexts[1] == ContextDefinition(CT_IMAGE_STORAGE, (RLE,))  # most used first
    assert {cx.transfer_syntaxes for cx in contexts[2:]} == {
        (J2K_LOSSLESS,),
        (DEFLATED,),
        (BIG_ENDIAN,),
    }
    assert len(set(contexts)) == len(contexts)  # no duplicates


def test_few_files_one_association() -> None:
    files = [info(CT_IMAGE_STORAGE, EXPLICIT, n) for n in range(5)] + [
        info(MR, RLE, 5),
        info(CT_IMAGE_STORAGE, EXPLICIT, 6),
    ]
    (plan,) = plan_contexts(files)
    assert plan.files == tuple(files)  # order kept
    assert plan.contexts == (
        ContextDefinition(CT_IMAGE_STORAGE, DEFAULTS),
        ContextDefinition(MR, DEFAULTS),
        ContextDefinition(MR, (RLE,)),
    )


def test_nothing_to_plan() -> None:
    assert plan_contexts([]) == []


@pytest.mark.parametrize("bad", [0, 1, 129])
def test_max_contexts_is_checked(bad: int) -> None:
    with pytest.raises(ValueError, match="max_contexts"):
        plan_contexts([info(CT_IMAGE_STORAGE, EXPLICIT)], max_contexts=bad)


def check(plans: list[AssociationPlan], files: list[FileInfo], max_contexts: int) -> None:
    """Every file exactly once, on a plan that proposes its class with its syntax and the
    fallback; no plan over the limit; no duplicate context in a plan."""
    assert sorted(id(f) for p in plans for f in p.files) == sorted(id(f) for f in files)
    for plan in plans:
        assert 0 < len(plan.contexts) <= max_contexts
        assert len(set(plan.contexts)) == len(plan.contexts)
        build_associate_rq(calling_ae_title="A", called_ae_title="B", contexts=plan.contexts)
        for file in plan.files:
            proposed = [
                cx.transfer_syntaxes
                for cx in plan.contexts
                if cx.abstract_syntax == file.sop_class_uid
            ]
            assert any(file.transfer_syntax in ts for ts in proposed), file
            assert {EXPLICIT, IMPLICIT} <= {ts for tss in proposed for ts in tss}, file


def test_past_128_contexts_several_associations() -> None:
    """70 SOP classes x 2 syntaxes = 140 contexts: two associations, each file once."""
    from dicomnet import _sop_groups

    classes = sorted(_sop_groups.SERVICE_GROUPS["storage"])[:70]
    files = [
        info(uid, syntax, n)
        for n, (uid, syntax) in enumerate(
            (uid, syntax) for uid in classes for syntax in (EXPLICIT, RLE)
        )
    ]
    plans = plan_contexts(files)
    assert len(plans) == math.ceil(140 / MAX_CONTEXTS) == 2
    check(plans, files, MAX_CONTEXTS)


def test_one_class_with_too_many_syntaxes_is_split() -> None:
    syntaxes = [f"1.2.840.10008.1.2.4.{n}" for n in range(50, 60)]
    files = [info(CT_IMAGE_STORAGE, ts, n) for n, ts in enumerate(syntaxes)]
    plans = plan_contexts(files, max_contexts=4)
    check(plans, files, 4)
    assert len(plans) == math.ceil(len(syntaxes) / 3)


SYNTAXES = [EXPLICIT, IMPLICIT, DEFLATED, BIG_ENDIAN, RLE, J2K_LOSSLESS, "1.2.840.10008.1.2.4.80"]


@settings(max_examples=80, deadline=None)
@given(
    pairs=st.lists(
        st.tuples(st.integers(0, 60), st.sampled_from(SYNTAXES)), min_size=1, max_size=300
    ),
    max_contexts=st.sampled_from([2, 3, 7, 16, 128]),
)
def test_plans_cover_every_file_once(pairs: list[tuple[int, str]], max_contexts: int) -> None:
    files = [info(f"1.2.840.10008.5.1.4.1.1.{c}", ts, n) for n, (c, ts) in enumerate(pairs)]
    plans = plan_contexts(files, max_contexts=max_contexts)
    check(plans, files, max_contexts)
    # bin packing by whole SOP classes: never more associations than classes need alone
    needed = Counter(f.sop_class_uid for f in files)
    assert len(plans) <= len(needed) * math.ceil(len(SYNTAXES) / max(1, max_contexts - 2))
    # and no two associations could have been one: first fit opens a new association only
    # for a SOP class that fits in none of the earlier ones (so at most one is half full
    # or less). The number of associations is not compared with total / max_contexts:
    # whole SOP classes are packed, and the optimum may be far above that (6 classes of
    # 2 contexts need 6 associations of 3).
    sizes = sorted(len(p.contexts) for p in plans)
    for n, small in enumerate(sizes):
        for other in sizes[n + 1 :]:
            assert small + other > max_contexts, sizes


def test_plan_from_paths_reads_the_meta(tmp_path: Path) -> None:
    a = write_part10(tmp_path / "a.dcm", ct_dataset(seed=1), EXPLICIT)
    b = write_part10(tmp_path / "b.dcm", ct_dataset(seed=2), IMPLICIT)
    (plan,) = plan_contexts([a, b])
    assert [f.path for f in plan.files] == [str(a), str(b)]
    assert {f.transfer_syntax for f in plan.files} == {EXPLICIT, IMPLICIT}
    (tmp_path / "c.txt").write_text("not DICOM at all")
    with pytest.raises(NotDicomError):
        plan_contexts([tmp_path / "c.txt"])
