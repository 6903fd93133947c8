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
# The products compute their outputs a block of 4 rows x BLOCK_COLUMNS columns at a
# time, the block's sums held in vector registers while all their terms go by, in order
# (jit.kernels.add_scaled_rows, on a jit.kernels.register_block): 4 x 16 doubles, 8
# AVX-512 registers. 16 is also the default model's width, so its products run whole
# blocks. `python scripts/bench_products.py --sizes 512` on this project's 2-core
# machine: 73.4-74.1 GFLOP/s forward and 50.3-54.6 backward on 2 threads (36.8 and 25.4
# on one), against 52.4 and 30.5 (25.7 and 14.9) when the block was an np.empty array,
# which LLVM loaded and stored at every term, and 12.4 and 15.0 for the kernels before
# the blocks; numpy's BLAS, 98.9 to 103.0 (73.4 on one thread).
BLOCK_COLUMNS = 16
# The backward products copy each slab of the matrix they read, a block of columns
# wide, into a contiguous panel when they have at least this many rows (enough to reuse
# it; the default run's documents have at most 16).
PACK_MIN_ROWS = 32
# A product of fewer rows than this (sampling's one) takes a dot product per output
# instead of first transposing the weights: the copy would cost more than the product.
DOT_MAX_ROWS = 4
# Adam runs on numba's threads, in slices of at least ADAM_SLICE parameters, from two
# slices up. Smaller models (the default has 4,192 parameters) update on the calling
# thread: a parallel region's start-up is not worth it there (measured: no faster over
# a default run, and more spread from run to run).
ADAM_SLICE = 2 ** 16
# A batch's training step runs its documents in STEP_PARTS parts at once, and then the
# parameters' gradients and Adam in as many (model.train_step), when every part has at
# least PART_MIN_ROWS rows and no product is large enough for threads of its own. 2: this
# project's machines have 2 cores. The parts are fixed by the shapes, not the thread
# count, so the compiled model can be cached; on one thread they run one after another.
# 16 rows a part: from a batch of 4 names up, two parts beat one (the README gives the
# figures, batch 4 to 24, one thread against two).
STEP_PARTS = 2
PART_MIN_ROWS = 16

# Threads on a busy machine (jit.ThreadChoice): how busy other processes keep the
# cores is read over at least THREAD_WINDOW seconds before a chunk of steps. /proc/stat
# counts in ticks of 10 ms, so 0.1 s reads each core's share to about a tenth; a run's
# set-up (the cached model's load, 0.2 s) is its first window.
THREAD_WINDOW = 0.1
