"""Templates: autoescaped HTML, strict variables, user data rendered as text, overrides."""

from __future__ import annotations

from pathlib import Path

import pytest

from gcmc_jobs.email import KINDS, Welcome, render
from gcmc_jobs.errors import TemplateRenderError


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_every_kind_renders_a_subject_an_html_and_a_text_part_with_the_tenant(kind: str) -> None:
    rendered = render(kind, KINDS[kind].model.sample())
    assert rendered.subject
    assert "\n" not in rendered.subject
    assert "Acme CPA" in rendered.html
    assert "Acme CPA" in rendered.text
    assert rendered.html.lstrip().startswith("<!DOCTYPE html>")
    assert "<html" not in rendered.text


def test_html_in_a_name_is_escaped_in_the_html_part() -> None:
    payload = Welcome.sample().model_copy(update={"client_name": "<script>alert(1)</script>"})
    rendered = render("welcome", payload)
    assert "<script>" not in rendered.html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in rendered.html
    assert "<script>alert(1)</script>" in rendered.text  # plain text is not HTML


def test_template_syntax_in_user_data_renders_as_text() -> None:
    payload = Welcome.sample().model_copy(update={"client_name": "{{ 7 * 7 }}{% raw %}"})
    rendered = render("welcome", payload)
    assert "{{ 7 * 7 }}{% raw %}" in rendered.text
    assert "49" not in rendered.text


def test_a_templates_dir_overrides_one_file_and_keeps_the_others(tmp_path: Path) -> None:
    (tmp_path / "welcome.subject.txt").write_text("Hello {{ client_name }} from {{ tenant_name }}")
    rendered = render("welcome", Welcome.sample(), templates_dir=str(tmp_path))
    assert rendered.subject == "Hello Jane Doe from Acme CPA"
    assert "Open your portal" in rendered.html  # the packaged HTML part


def test_an_undefined_variable_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "welcome.txt").write_text("Dear {{ clientName }}")
    with pytest.raises(TemplateRenderError, match="clientName"):
        render("welcome", Welcome.sample(), templates_dir=str(tmp_path))


def test_a_template_cannot_reach_python_internals(tmp_path: Path) -> None:
    (tmp_path / "welcome.txt").write_text("{{ client_name.__class__.__mro__ }}")
    with pytest.raises(TemplateRenderError):
        render("welcome", Welcome.sample(), templates_dir=str(tmp_path))
