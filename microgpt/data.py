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

    `reads`: how many documents the run will read, from the first on (steps times batch
    size). Once shuffled, only those are held; the rest, 97% of names.txt in a default
    run, are let go. len() and chars() still describe every document.
    """

    def __init__(self, text, reads=None):
        self.text = text
        self.reads = reads
        self._chars = None
        self.packed = False       # True once the text is the documents, one after another
        self.lengths = None       # once packed, the documents' lengths again, for joined()
        # start << len_bits | length: 4 bytes a document where the text is short enough
        # that its offsets leave room for every length (names.txt: 18 bits and 14), else 8
        start_bits = len(text).bit_length()
        for typecode, bits in (('I', 32), ('Q', 64)):
            self.len_bits = bits - start_bits
            self.spans = self.parse(text, typecode, self.len_bits)
            if self.spans is not None:
                break
        self.count = len(self.spans)

    @staticmethod
    def parse(text, typecode, len_bits):
        """The documents' spans, or None if one is too long for len_bits."""
        spans, max_len = array(typecode), (1 << max(len_bits, 0)) - 1
        pos = 0
        while pos <= len(text):
            end = text.find('\n', pos)
            if end < 0:
                end = len(text)
            line = text[pos:end]
            doc = line.strip()
            if doc:
                if len(doc) > max_len:
                    return None
                start = pos + len(line) - len(line.lstrip())
                spans.append(start << len_bits | len(doc))
            pos = end + 1
        return spans

    def __len__(self):
        return self.count

    def __getitem__(self, i):
        """Document i; or, for a slice (step 1), a list of its documents."""
        if isinstance(i, slice):
            start, stop, step = i.indices(self.count)
            assert step == 1, "Docs slices go one document after the next"
            self.check_held(max(start, stop - 1))
            text, bits, mask = self.text, self.len_bits, (1 << self.len_bits) - 1
            return [text[span >> bits:(span >> bits) + (span & mask)]
                    for span in self.spans[start:stop]]
        self.check_held(i)
        span = self.spans[i]
        start = span >> self.len_bits
        return self.text[start:start + (span & ((1 << self.len_bits) - 1))]

    def joined(self, start, stop):
        """Documents start..stop-1 (a slice's bounds), one after another in one string,
        and their lengths (a list; an array slice once packed). Once packed (keep_first),
        the string is one slice of the text: no string of its own for each document."""
        start, stop, _ = slice(start, stop).indices(self.count)
        if not self.packed or start >= stop:
            docs = self[start:stop]
            return ''.join(docs), [len(doc) for doc in docs]
        self.check_held(stop - 1)
        bits, mask = self.len_bits, (1 << self.len_bits) - 1
        first, last = self.spans[start], self.spans[stop - 1]
        return self.text[first >> bits:(last >> bits) + (last & mask)], self.lengths[start:stop]

    def check_held(self, i):
        if len(self.spans) < self.count and not 0 <= i < len(self.spans):
            raise IndexError(f"document {i} of {self.count} is not held "
                             f"(this run reads the first {len(self.spans)})")

    def shuffle(self):
        if len(self.spans) < self.count:
            raise RuntimeError("the documents were cut to the ones read after a shuffle; "
                               "shuffling again would not draw what the reference draws")
        random.shuffle(self.spans)
        if self.reads is not None and self.reads < self.count:
            self.keep_first(self.reads)

    def keep_first(self, n):
        """Hold the first n documents only, in a text of their own."""
        self.chars()                             # every document's, before they go
        kept = self[:n]
        self.text = ''.join(kept)
        self.spans = array(self.spans.typecode)
        self.lengths = array(self.spans.typecode)
        start = 0
        for doc in kept:
            self.spans.append(start << self.len_bits | len(doc))
            self.lengths.append(len(doc))
            start += len(doc)
        self.packed = True

    def chars(self):
        """The set of characters the documents use."""
        if self._chars is None:
            self._chars = set()
            for i in range(len(self.spans)):
                self._chars.update(self[i])
        return self._chars


def read_regular(path, what, error, limit=None, limit_reason=None):
    """The bytes of `path`, which must be a regular file: a FIFO, a device or a socket
    is refused (reading one could hang, or never end), and so is a file larger than
    `limit` bytes (by default, an eighth of the memory available: what its parse
    could take); `limit_reason` says what the limit is. Problems raise `error` with one
    line that names `what`."""
    import stat
    limit_reason = limit_reason or 'the memory available here allows'
    if limit is None:
        from .memory import available_bytes
        have = available_bytes()
        limit = have // 8 if have is not None else None
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)   # a FIFO must not block the open
    except FileNotFoundError:
        raise error(f"{what} not found: {path}") from None
    except OSError as e:
        raise error(f"cannot read {what} {path}: {e.strerror}") from None
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode):
        os.close(fd)
        if stat.S_ISDIR(st.st_mode):
            raise error(f"{what} is a directory, not a file: {path}")
        raise error(f"{what} is not a regular file (a device, a FIFO or a socket): {path}")
    with os.fdopen(fd, 'rb', buffering=0) as f:
        try:                # readall: one buffer of the file's size, not a read's limit
            payload = f.readall() if limit is None or st.st_size <= limit else b''
        except OSError as e:
            raise error(f"cannot read {what} {path}: {e.strerror}") from None
    if limit is not None and max(st.st_size, len(payload)) > limit:
        raise error(f"{what} is over {limit:,} bytes, more than {limit_reason}: {path}")
    return payload


def load_docs(path, reads=None):
    """Read a UTF-8 text file into Docs; universal newlines, as the reference's open().
    `reads`: see Docs."""
    payload = read_regular(path, 'data file', DataError)
    try:
        text = payload.decode('utf-8')
    except UnicodeDecodeError as e:
        raise DataError(f"data file is not valid UTF-8: {path} (byte {e.object[e.start]:#04x} "
                        f"at offset {e.start})") from None
    del payload
    text = text.replace('\r\n', '\n').replace('\r', '\n')     # universal newlines
    docs = Docs(text, reads)
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


# The pinned names.txt's size: a download is read up to this and refused past it.
NAMES_SIZE = 228145


def download_names(dest, fetch=None):
    """makemore's names.txt at its pinned commit into `dest`, checked by sha256."""
    url = os.environ.get('MICROGPT_NAMES_URL') or NAMES_URL  # a mirror, checked alike
    download(url, dest, NAMES_SHA256, NAMES_SIZE, fetch=fetch)


def _urlopen_bytes(url, limit):
    """At most limit + 1 bytes from `url`; a file:// URL must name a regular file."""
    import urllib.parse
    import urllib.request  # imported here: it costs memory and start-up time
    parts = urllib.parse.urlsplit(url)
    if parts.scheme == 'file':
        return read_regular(urllib.request.url2pathname(parts.path), 'file', OSError,
                            limit=limit, limit_reason="names.txt's size")
    with urllib.request.urlopen(url, timeout=30) as r:
        return r.read(limit + 1)


def download(url, dest, sha256, size, fetch=None):
    """Fetch `url` into `dest`, atomically, if it is `size` bytes and its sha256
    matches; else raise DataError. Nothing past `size` bytes is read.

    `fetch(url, limit) -> bytes` defaults to urllib; tests inject their own or use
    file:// URLs.
    """
    fetch = fetch or _urlopen_bytes
    try:
        payload = fetch(url, size)
    except Exception as e:  # any network failure means the same thing to the user
        raise DataError(f"no data: could not download {url} ({e}); "
                        f"pass --data PATH or set MICROGPT_DATA") from None
    if len(payload) > size:
        raise DataError(f"downloaded {url} is over {size:,} bytes, names.txt's size; "
                        f"pass --data PATH to use a local copy")
    import hashlib  # imported here: OpenSSL costs ~3.5 MB of RSS, and only a download needs it
    got = hashlib.sha256(payload).hexdigest()
    if got != sha256:
        raise DataError(f"downloaded {url} has sha256 {got}, expected {sha256}; "
                        f"pass --data PATH to use a local copy")
    try:
        write_atomic(dest, payload)
    except OSError as e:
        raise DataError(f"cannot write the downloaded names.txt to {dest}: {e.strerror}; "
                        f"set XDG_CACHE_HOME to a writable folder, or pass --data PATH") from None


def cannot_write_in(folder):
    """None if this process can create files in `folder`; else why not (strerror). Tried
    for real, with a file made and removed: os.access says yes to root on a read-only
    file system."""
    probe = os.path.join(folder, f'.microgpt-probe-{os.getpid()}')
    try:
        os.close(os.open(probe, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
        os.unlink(probe)
    except OSError as e:
        return e.strerror
    return None


def write_atomic(path, payload):
    """Write bytes to `path` so that a reader sees the old file or the whole new one,
    never a partial one: via a temporary file in the same folder and a rename. A
    symlink stays a symlink: its target gets the write. An existing file that is not a
    regular file (a device, a FIFO) is written in place, never replaced (write_in_place).
    Temporary files left by writers that died (SIGKILL mid-write) are removed first.
    (The temporary file is made here, O_EXCL, rather than by tempfile, which imports
    shutil and its compressors: 1.3 MB of RSS, a third of the lean tier's whole budget.)"""
    import stat
    path = os.path.realpath(path)
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        mode = None
    if mode is not None and not stat.S_ISREG(mode):
        return write_in_place(path, mode, payload)
    folder = os.path.dirname(path)
    os.makedirs(folder, exist_ok=True)
    remove_dead_temps(folder)
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


def write_in_place(path, mode, payload):
    """Write to an existing character device or FIFO as it is. A FIFO with no reader is
    an error, not a wait; anything else that is not a regular file is refused."""
    import errno
    import stat
    if not (stat.S_ISCHR(mode) or stat.S_ISFIFO(mode)):
        raise OSError(errno.EINVAL, "not a regular file, a character device or a FIFO")
    try:
        fd = os.open(path, os.O_WRONLY | os.O_NONBLOCK)
    except OSError as e:
        if e.errno == errno.ENXIO:
            raise OSError(errno.ENXIO, "a FIFO with no reader") from None
        raise
    os.set_blocking(fd, True)
    with os.fdopen(fd, 'wb') as f:
        f.write(payload)


def remove_dead_temps(folder):
    """Remove write_atomic's temporary files (.NAME.PID.N.tmp) whose writer is dead."""
    try:
        names = os.listdir(folder)
    except OSError:
        return
    for name in names:
        parts = name[:-len('.tmp')].rsplit('.', 2) if name.endswith('.tmp') else ()
        if (len(parts) != 3 or not name.startswith('.') or not parts[1].isdigit()
                or not parts[2].isdigit() or process_alive(int(parts[1]))):
            continue
        try:
            os.unlink(os.path.join(folder, name))
        except OSError:
            pass


def process_alive(pid):
    """Whether a process with this pid exists (another user's counts)."""
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, OverflowError):     # no such process (or no such pid)
        return False
    except PermissionError:
        return True
    return True
