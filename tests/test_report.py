"""scripts/report.py rewrites only what stands between its markers, and the pages it
writes carry them."""
import sys

import pytest

from conftest import ROOT

sys.path.insert(0, str(ROOT / 'scripts'))
import report  # noqa: E402


def test_the_pages_carry_the_reports_markers():
    for path, names in ((ROOT / 'README.md', ['figures']),
                        (ROOT / 'docs' / 'performance.md', ['figures', 'sweep', 'busy'])):
        text = path.read_text()
        for name in names:
            assert text.count(f'<!-- report:{name} -->\n') == 1, (path, name)
            assert text.count(f'\n<!-- /report:{name} -->') == 1, (path, name)


def test_rewrite_replaces_between_the_markers_only(tmp_path):
    page = tmp_path / 'page.md'
    page.write_text('# Title\n\n<!-- report:figures -->\nold\ntable\n<!-- /report:figures -->\n'
                    '\nkept\n')
    report.rewrite(str(page), 'figures', 'new | table')
    assert page.read_text() == ('# Title\n\n<!-- report:figures -->\nnew | table\n'
                                '<!-- /report:figures -->\n\nkept\n')
    with pytest.raises(SystemExit, match='no report:sweep markers'):
        report.rewrite(str(page), 'sweep', 'x')


def test_the_stamp_names_the_commit_and_the_versions():
    text = report.stamp()
    assert 'commit ' in text and 'Python ' in text and 'cores of ' in text
