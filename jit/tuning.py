"""Every tunable of the jit kernels, in one place (jit/__init__.py keys the compiled
model's cache by this file too: numba compiles these values in)."""

# A product runs on all of numba's threads (NUMBA_NUM_THREADS, default: every core) when
# it has at least this many multiply-adds; below, a parallel region's start-up (some
# microseconds) costs more than it saves, so it runs on the calling thread. The
# default model's largest product is 16 x 64 x 16 = 16,384 multiply-adds: serial.
PARALLEL_MIN_MACS = 2 ** 18
# A parallel product splits its outputs into slices of at least CHUNK_MIN_WIDTH columns
# (so the innermost loop still vectorizes), at most MAX_CHUNKS of them, which numba
# shares out among its threads. Fixed by the shapes, not the thread count: compiled
# code that asks for the thread count cannot be cached.
CHUNK_MIN_WIDTH = 64
MAX_CHUNKS = 64
# The products sum their terms a tile of TILE terms at a time, in order, so that the
# tile of weights a thread works on (TILE x CHUNK_MIN_WIDTH or more, 128 KB and up)
# stays in its core's cache while every row goes by.
TILE = 256
# A product of fewer rows than this (sampling's one) takes a dot product per output
# instead of first transposing the weights: the copy would cost more than the product.
DOT_MAX_ROWS = 4
