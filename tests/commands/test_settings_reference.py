"""docs/configuration.md documents every setting exactly as the code defines it."""

from pathlib import Path

from analyzer.settings import Settings
from analyzer.settings_reference import reference_markdown


def test_configuration_reference_is_current():
    current = Path("docs/configuration.md").read_text()
    assert current == reference_markdown(), "settings changed: run `make docs` and commit"


def test_every_field_is_documented_with_a_default():
    for group_name, group in Settings.model_fields.items():
        for name, field in group.default_factory().__class__.model_fields.items():
            assert field.description, f"{group_name}.{name} has no description"
            assert "default" in field.description.lower(), f"{group_name}.{name} names no default"
