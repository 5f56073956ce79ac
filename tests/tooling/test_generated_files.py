"""Every generated file is current, and the RBAC the chart grants is the table of kinds."""

from pathlib import Path

import pytest

from taskstore_dev import generate, paths, rbac
from taskstore_operator.api.kinds import KINDS, MANAGED_KINDS, Grant


def test_no_generated_file_is_stale() -> None:
    stale = [g.path for g in generate.GENERATED if g.path.read_text() != g.render()]
    assert not stale, f"stale: {stale}; run make generate"


def test_check_names_a_stale_file(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    stale = tmp_path / "_rules.tpl"
    stale.write_text("# edited by hand\n")
    monkeypatch.setattr(paths, "REPO_ROOT", tmp_path)
    monkeypatch.setattr(
        generate, "GENERATED", (generate.Generated(stale, rbac.render_rules_template),)
    )
    assert generate.main(["--check"]) == 1
    assert "_rules.tpl is stale; run make generate" in capsys.readouterr().err
    assert stale.read_text() == "# edited by hand\n"
    assert generate.main([]) == 0
    assert stale.read_text() == rbac.render_rules_template()


def test_every_kind_is_granted_in_one_template() -> None:
    text = rbac.render_rules_template()
    for kind in KINDS:
        assert f'resources: ["{kind.resource}"]' in text, kind.kind
    for _, (name, comment) in rbac.TEMPLATES.items():
        assert f'{{{{/* {comment} */}}}}\n{{{{- define "{name}" -}}}}' in text
    assert set(rbac.TEMPLATES) == set(Grant)


def test_kinds_give_api_versions_and_resources() -> None:
    by_kind = {k.kind: k for k in MANAGED_KINDS}
    assert by_kind["StatefulSet"].api_version == "apps/v1"
    assert by_kind["Secret"].api_version == "v1"
    status = next(k for k in KINDS if k.subresource)
    assert status.resource == "taskstores/status"
    assert status.api_version == "tealagents.io/v1alpha1"


def test_the_docs_table_lies_between_its_markers() -> None:
    doc = paths.INSTALL_DOC.read_text()
    assert doc.count(rbac.TABLE_BEGIN) == 1
    assert rbac.render_rbac_table() in doc
