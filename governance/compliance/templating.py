"""The Jinja2 environment of the compliance documents (report, model card): templates in ``templates/``.

HTML templates are autoescaped; Markdown ones escape every value from the record through the filters
below (``governance.safe_output``), so a record cannot add links, images, HTML or table cells.
"""

from __future__ import annotations

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

from governance.compliance.times import iso
from governance.safe_output import markdown_block, markdown_code, markdown_text


def template_environment() -> Environment:
    """Strict (an unknown name is an error, not an empty string), with the ``md``, ``md_code``, ``md_block``
    and ``iso`` filters."""
    env = Environment(loader=PackageLoader("governance.compliance", "templates"),
                      autoescape=select_autoescape(["html.j2"]), undefined=StrictUndefined,
                      trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True)
    env.filters["md"] = markdown_text
    env.filters["md_code"] = markdown_code
    env.filters["md_block"] = markdown_block
    env.filters["iso"] = iso
    return env
