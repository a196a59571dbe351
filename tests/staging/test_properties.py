from governance.staging.properties import parse_properties


def as_dict(text: str) -> dict[str, str]:
    return {p.key: p.value for p in parse_properties(text)}


def test_all_java_separators_and_comments():
    text = "# comment\n! also comment\na=1\nb: 2\nc 3\n  d   =   4  \ne\n"
    assert as_dict(text) == {"a": "1", "b": "2", "c": "3", "d": "4  ", "e": ""}


def test_continuation_lines_drop_leading_whitespace_and_track_first_line():
    props = parse_properties("x=1\nmodel.description = first \\\n      second \\\n  third\ny=2\n")
    desc = next(p for p in props if p.key == "model.description")
    assert desc.value == "first second third"
    assert desc.line == 2
    assert next(p for p in props if p.key == "y").line == 5


def test_escapes_unicode_and_escaped_separators():
    props = as_dict("key\\=with\\:seps = tab\\there\\nnew \\u00e9t\\u00e9\nowner = Jürgen\n")
    assert props["key=with:seps"] == "tab\there\nnew été"
    assert props["owner"] == "Jürgen"


def test_even_backslashes_do_not_continue():
    assert as_dict("a = ends with backslash\\\\\nb = 2\n") == {"a": "ends with backslash\\", "b": "2"}


def test_bom_is_ignored():
    assert as_dict("\ufeffmodel.name=x\n") == {"model.name": "x"}
