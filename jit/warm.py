"""python -m jit.warm [--wait]: compile the jit tier into numba's cache, mark it ready.

What a first run of the command line starts in the background (jit.JitGPT, wait=False);
also a way to pay the compile up front. The compiled model serves every config: its
argument types do not depend on the sizes. One at a time (jit.compile_lock): while
another compile holds the lock, this one exits, or with --wait waits for it.
"""
import os
import sys

from . import JitGPT, cache_folder, compile_lock, is_compiled


def main(argv):
    os.makedirs(cache_folder(), exist_ok=True)
    with compile_lock(wait='--wait' in argv) as held:
        if not held or is_compiled():      # another compile holds the lock, or has run
            return 0
        from microgpt.config import GPTConfig
        JitGPT(GPTConfig(n_embd=4, n_head=1, block_size=2), vocab_size=2)
    return 0


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
