"""python -m jit.warm [--wait]: compile the jit tier into numba's cache, mark it ready.

What a first run of the command line starts in the background (jit.JitGPT, wait=False);
also a way to pay the compile up front. The compiled model serves every config: its
argument types do not depend on the sizes. One at a time: a lock file holds the pid,
and while another compile holds it, this one exits, or with --wait waits for it.
"""
import os
import sys
import time

from . import COMPILING, JitGPT, cache_folder, is_compiled


def main(argv):
    folder = cache_folder()
    os.makedirs(folder, exist_ok=True)
    lock = os.path.join(folder, COMPILING)
    while True:
        try:
            fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            break
        except FileExistsError:               # another compile holds the lock
            if '--wait' not in argv:
                return 0
            time.sleep(0.5)
            if is_compiled():
                return 0
    try:
        os.write(fd, str(os.getpid()).encode())
        os.close(fd)
        from microgpt.config import GPTConfig
        JitGPT(GPTConfig(n_embd=4, n_head=1, block_size=2), vocab_size=2)
    finally:
        os.unlink(lock)
    return 0


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
