"""Reading documents like the reference, finding the data, and the checked download."""
import hashlib
import os

import pytest

from microgpt import data
from microgpt.data import DataError, Docs, download, find_data, load_docs

TRICKY = ('  emma \r\nolivia\n\n\t\nzoë  naïve\r\n Ωμέγα\rMcDonald-O\'Brien, Jr.\n'
          'a-very-long-line-that-is-longer-than-any-block-size\n\u2003\u2028 x \n   ')


def reference_docs(path):
    # What the reference does: text-mode open (universal newlines), strip, split('\n').
    with open(path, encoding='utf-8') as f:
        return [l.strip() for l in f.read().strip().split('\n') if l.strip()]


def test_docs_are_the_reference_lines(tmp_path):
    path = tmp_path / 'tricky.txt'
    path.write_bytes(TRICKY.encode('utf-8'))
    docs = load_docs(path)
    assert [docs[i] for i in range(len(docs))] == reference_docs(path)
    assert set(''.join(reference_docs(path))) == docs.chars()


def test_docs_of_the_reference_data(data_path):
    docs = load_docs(data_path)
    assert [docs[i] for i in range(len(docs))] == reference_docs(data_path)
    assert len(docs) == 32033


def test_docs_too_long_for_4_byte_spans_take_8():
    text = 'ann\n' + 'b' * 70000 + '\n carl \n'    # 17 bits of offset leave 15 for a length
    docs = Docs(text)
    assert docs.spans.typecode == 'Q'
    assert [docs[i] for i in range(len(docs))] == ['ann', 'b' * 70000, 'carl'] == docs[:]
    assert Docs('ann\n' + 'b' * 30000 + '\n').spans.typecode == 'I'


def test_a_run_holds_only_the_documents_it_reads(data_path):
    """With reads=n, shuffle() keeps the first n shuffled documents alone: the same as
    shuffling them all, with len() and chars() still those of every document."""
    import random
    everything, kept = load_docs(data_path), load_docs(data_path, reads=1000)
    random.seed(42)
    everything.shuffle()
    after_all = random.getstate()
    random.seed(42)
    kept.shuffle()
    assert random.getstate() == after_all           # the same draws, no more
    assert len(kept.spans) == 1000 and len(kept.text) < 10000
    assert [kept[i] for i in range(1000)] == [everything[i] for i in range(1000)]
    assert len(kept) == len(everything) == 32033
    assert kept.chars() == everything.chars()
    with pytest.raises(IndexError, match='document 1000 of 32033 is not held'):
        kept[1000]
    assert kept[990:1000] == [everything[i] for i in range(990, 1000)]   # a slice, as a list
    assert everything[32030:40000] == [everything[i] for i in range(32030, 32033)]
    with pytest.raises(IndexError, match='document 1000 of 32033 is not held'):
        kept[995:1001]
    with pytest.raises(RuntimeError, match='shuffling again'):
        kept.shuffle()


def test_joined_documents_are_their_concatenation(tmp_path):
    """Docs.joined(start, stop): the documents of a slice in one string, and their
    lengths; one slice of the text once a run's documents are packed (reads=n), else
    document by document; a document not held is an error either way."""
    import random
    path = tmp_path / 'tricky.txt'
    path.write_bytes(TRICKY.encode('utf-8'))
    for reads in (None, 5):
        docs = load_docs(path, reads=reads)
        random.seed(3)
        docs.shuffle()
        assert docs.packed == (reads is not None)
        held = len(docs.spans)
        for start, stop in ((0, held), (1, 4), (held - 1, held), (2, 2)):
            expected = docs[start:stop]
            text, lengths = docs.joined(start, stop)
            assert (text, list(lengths)) == (''.join(expected), [len(d) for d in expected])
    with pytest.raises(IndexError, match='document 5 of 7 is not held'):
        docs.joined(3, 6)


def test_docs_of_empty_text():
    assert len(Docs('')) == 0 and len(Docs('\n \n')) == 0


def test_find_data_precedence(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv('XDG_CACHE_HOME', str(tmp_path / 'cache'))
    monkeypatch.setenv('MICROGPT_DATA', 'from-env.txt')
    assert find_data('explicit.txt') == 'explicit.txt'
    assert find_data() == 'from-env.txt'
    (tmp_path / 'input.txt').write_text('ann\n')
    assert find_data() == 'input.txt'
    os.remove('input.txt')
    monkeypatch.delenv('MICROGPT_DATA')
    cached = tmp_path / 'cache' / 'microgpt' / 'names.txt'
    cached.parent.mkdir(parents=True)
    cached.write_text('bob\n')
    assert find_data() == str(cached)


def test_download_from_file_url_into_the_cache(tmp_path, monkeypatch):
    payload = 'ann\nbob\ncarl\n'.encode()
    src = tmp_path / 'names.txt'
    src.write_bytes(payload)
    (tmp_path / 'work').mkdir()
    monkeypatch.chdir(tmp_path / 'work')  # no input.txt here
    monkeypatch.delenv('MICROGPT_DATA', raising=False)
    monkeypatch.setenv('XDG_CACHE_HOME', str(tmp_path / 'cache'))
    monkeypatch.setenv('MICROGPT_NAMES_URL', src.as_uri())
    monkeypatch.setattr(data, 'NAMES_SHA256', hashlib.sha256(payload).hexdigest())
    path = find_data()
    assert path == str(tmp_path / 'cache' / 'microgpt' / 'names.txt')
    assert open(path, 'rb').read() == payload
    assert os.listdir(tmp_path / 'cache' / 'microgpt') == ['names.txt']  # no temp left


def test_download_sha256_mismatch_writes_nothing(tmp_path):
    dest = tmp_path / 'cache' / 'names.txt'
    with pytest.raises(DataError, match='has sha256 .*, expected 0a30b555'):
        download('https://example.invalid/names.txt', dest, data.NAMES_SHA256, data.NAMES_SIZE,
                 fetch=lambda url, limit: b'not the names\n')
    assert not dest.exists()


def test_download_network_failure_names_the_flag(tmp_path):
    def offline(url, limit):
        raise OSError('Network is unreachable')
    with pytest.raises(DataError, match=r'Network is unreachable.*--data PATH'):
        download(data.NAMES_URL, tmp_path / 'names.txt', data.NAMES_SHA256, data.NAMES_SIZE,
                 fetch=offline)


def test_download_of_the_real_file_checks_out(tmp_path, data_path):
    # The pinned checksum is the reference file's: an injected fetcher serves our copy.
    dest = tmp_path / 'names.txt'
    download(data.NAMES_URL, dest, data.NAMES_SHA256, data.NAMES_SIZE,
             fetch=lambda url, limit: data_path.read_bytes())
    assert dest.read_bytes() == data_path.read_bytes()


def test_interrupted_write_leaves_old_file_and_no_temp(tmp_path, monkeypatch):
    dest = tmp_path / 'names.txt'
    dest.write_bytes(b'old\n')

    def crash(src, dst):
        raise KeyboardInterrupt
    monkeypatch.setattr(os, 'replace', crash)
    with pytest.raises(KeyboardInterrupt):
        data.write_atomic(dest, b'new\n')
    assert dest.read_bytes() == b'old\n'
    assert os.listdir(tmp_path) == ['names.txt']
