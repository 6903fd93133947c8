"""Where the documents come from, and how they are held.

Standard library only. The reference reads `input.txt` and downloads makemore's
names.txt when it is missing; we add `--data PATH`, `$MICROGPT_DATA`, a checked
download and a cache. The data set itself is never part of the project.
"""
import os
import random
from array import array

from .gpt import NAMES_SHA256, NAMES_URL


class DataError(Exception):
    """The data cannot be found or read; the CLI prints it on one line."""


class Docs:
    """The documents: every line of the text, strip()ped, empty lines dropped, in order.

    They are kept as one string and one array of spans, each a document's start offset
    and length packed into one integer (4 bytes each for names.txt), rather than as a
    list of 32,033 small `str` objects (which would cost more memory than the whole
    model). shuffle() shuffles the spans themselves, which draws exactly what the
    reference's random.shuffle(docs) draws, since shuffle's draws depend only on the
    length.
    """

    def __init__(self, text):
        self.text = text
        spans, longest = array('Q'), 0            # start << 32 | length, while parsing
        pos = 0
        while pos <= len(text):
            end = text.find('\n', pos)
            if end < 0:
                end = len(text)
            line = text[pos:end]
            doc = line.strip()
            if doc:
                start = pos + len(line) - len(line.lstrip())
                spans.append(start << 32 | len(doc))
                longest = max(longest, len(doc))
            pos = end + 1
        # as few bits for the length as the longest document needs; 4-byte spans if they fit
        self.len_bits = longest.bit_length()
        typecode = 'I' if len(text) << self.len_bits < 2**32 else 'Q'
        self.spans = array(typecode, ((x >> 32) << self.len_bits | (x & 0xFFFFFFFF)
                                      for x in spans))

    def __len__(self):
        return len(self.spans)

    def __getitem__(self, i):
        span = self.spans[i]
        start = span >> self.len_bits
        return self.text[start:start + (span & ((1 << self.len_bits) - 1))]

    def shuffle(self):
        random.shuffle(self.spans)

    def chars(self):
        """The set of characters the documents use."""
        chars = set()
        for i in range(len(self)):
            chars.update(self[i])
        return chars


def load_docs(path):
    """Read a UTF-8 text file into Docs; universal newlines, as the reference's open()."""
    try:
        with open(path, encoding='utf-8') as f:
            text = f.read()
    except FileNotFoundError:
        raise DataError(f"data file not found: {path}") from None
    except IsADirectoryError:
        raise DataError(f"data path is a directory, not a file: {path}") from None
    except UnicodeDecodeError as e:
        raise DataError(f"data file is not valid UTF-8: {path} (byte {e.object[e.start]:#04x} "
                        f"at offset {e.start})") from None
    except OSError as e:
        raise DataError(f"cannot read data file {path}: {e.strerror}") from None
    docs = Docs(text)
    if not len(docs):
        raise DataError(f"data file has no non-empty lines: {path}")
    return docs


def cache_path():
    root = os.environ.get('XDG_CACHE_HOME') or os.path.join(os.path.expanduser('~'), '.cache')
    return os.path.join(root, 'microgpt', 'names.txt')


def find_data(path=None, fetch=None):
    """The data file to use: --data, else ./input.txt, else $MICROGPT_DATA, else the
    cached names.txt, else a fresh download into the cache (checked by sha256)."""
    if path is not None:
        return path
    if os.path.exists('input.txt'):
        return 'input.txt'
    if os.environ.get('MICROGPT_DATA'):
        return os.environ['MICROGPT_DATA']
    cached = cache_path()
    if not os.path.exists(cached):
        download_names(cached, fetch=fetch)
    return cached


def download_names(dest, fetch=None):
    """makemore's names.txt at its pinned commit into `dest`, checked by sha256."""
    url = os.environ.get('MICROGPT_NAMES_URL') or NAMES_URL  # a mirror, checked alike
    download(url, dest, NAMES_SHA256, fetch=fetch)


def _urlopen_bytes(url):
    import urllib.request  # imported here: it costs memory and start-up time
    with urllib.request.urlopen(url, timeout=30) as r:
        return r.read()


def download(url, dest, sha256, fetch=None):
    """Fetch `url` into `dest`, atomically, if its sha256 matches; else raise DataError.

    `fetch(url) -> bytes` defaults to urllib; tests inject their own or use file:// URLs.
    """
    fetch = fetch or _urlopen_bytes
    try:
        payload = fetch(url)
    except Exception as e:  # any network failure means the same thing to the user
        raise DataError(f"no data: could not download {url} ({e}); "
                        f"pass --data PATH or set MICROGPT_DATA") from None
    import hashlib  # imported here: OpenSSL costs ~3.5 MB of RSS, and only a download needs it
    got = hashlib.sha256(payload).hexdigest()
    if got != sha256:
        raise DataError(f"downloaded {url} has sha256 {got}, expected {sha256}; "
                        f"pass --data PATH to use a local copy")
    write_atomic(dest, payload)


def write_atomic(path, payload):
    """Write bytes to `path` via a temporary file in the same folder and a rename,
    so a reader sees the old file or the whole new one, never a partial one. (The
    temporary file is made here, O_EXCL, rather than by tempfile, which imports shutil
    and its compressors: 1.3 MB of RSS, a third of the lean tier's whole budget.)"""
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    umask = os.umask(0)
    os.umask(umask)
    for attempt in range(100):
        tmp = os.path.join(folder, f'.{os.path.basename(path)}.{os.getpid()}.{attempt}.tmp')
        try:
            fd = os.open(tmp, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666 & ~umask)
            break
        except FileExistsError:
            continue
    else:
        raise FileExistsError(f"no free temporary name beside {path}")
    try:
        with os.fdopen(fd, 'wb') as f:
            f.write(payload)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise
