"""Every generated file is current, and ``make generate`` names and rewrites a stale one.

The plain manifests need helm: tests/delivery/test_manifests.py checks them.
"""

from pathlib import Path

import pytest

from taskstore_dev import generate, paths, rbac
from taskstore_operator.api.crd import CRD_NAME, render_crd_yaml
from taskstore_operator.api.kinds import BY_KIND, KINDS, Grant

WITHOUT_HELM = [g for g in generate.GENERATED if g.path != paths.MANIFEST_PATH]


@pytest.mark.parametrize("generated", WITHOUT_HELM, ids=lambda g: g.path.name)
def test_the_committed_file_is_current(generated: generate.Generated) -> None:
    assert generated.path.read_text() == generated.render(), (
        f"{generated.path.relative_to(paths.REPO_ROOT)} is stale: run make generate"
    )


def test_every_crd_copy_is_generated() -> None:
    copies = {g.path for g in generate.GENERATED if g.render is render_crd_yaml}
    assert copies == {paths.DEPLOY_CRD_PATH, paths.CHART_CRD_PATH}
    assert {path.name for path in copies} == {f"{CRD_NAME}.yaml"}


def test_check_names_stale_and_missing_files_and_writing_fixes_them(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    stale, missing = tmp_path / "_rules.tpl", tmp_path / "crds" / "copy.yaml"
    stale.write_text("# edited by hand\n")
    monkeypatch.setattr(paths, "REPO_ROOT", tmp_path)
    monkeypatch.setattr(
        generate,
        "GENERATED",
        (
            generate.Generated(stale, rbac.render_rules_template),
            generate.Generated(missing, render_crd_yaml),
        ),
    )
    assert generate.main(["--check"]) == 1
    err = capsys.readouterr().err
    assert "_rules.tpl is stale; run make generate" in err
    assert "crds/copy.yaml is stale; run make generate" in err
    assert stale.read_text() == "# edited by hand\n"  # --check writes nothing
    assert not missing.exists()
    assert generate.main([]) == 0
    assert stale.read_text() == rbac.render_rules_template()
    assert missing.read_text() == render_crd_yaml()
    assert generate.main(["--check"]) == 0


def test_every_kind_is_granted_in_one_template() -> None:
    text = rbac.render_rules_template()
    for kind in KINDS:
        assert f'resources: ["{kind.resource}"]' in text, kind.kind
    for name, comment in rbac.TEMPLATES.values():
        assert f'{{{{/* {comment} */}}}}\n{{{{- define "{name}" -}}}}' in text
    assert set(rbac.TEMPLATES) == set(Grant)


def test_kinds_give_api_versions_and_resources() -> None:
    assert BY_KIND["StatefulSet"].api_version == "apps/v1"
    assert BY_KIND["Secret"].api_version == "v1"
    status = next(k for k in KINDS if k.subresource)
    assert status.resource == "taskstores/status"
    assert status.api_version == "tealagents.io/v1alpha1"


def test_the_docs_table_lies_between_its_markers() -> None:
    doc = paths.INSTALL_DOC.read_text()
    assert doc.count(rbac.TABLE_BEGIN) == 1
    assert rbac.render_rbac_table() in doc


def test_a_document_without_markers_is_refused() -> None:
    with pytest.raises(rbac.MarkersNotFoundError, match="BEGIN RBAC table"):
        rbac.replace_table("# no markers here\n")
