"""Every tunable of the GPU kernels, in one place.

Tests shrink these (tiny tiles, a few threads per block) so that small inputs span
several blocks and every edge-tile path runs under the simulator.
"""

# gemm_tiled: each block computes a TILE_M x TILE_N tile of C, stepping through K in
# slices of TILE_K staged in shared memory; each thread holds a THREAD_M x THREAD_N
# block of outputs in registers (so a block has (TILE_M/THREAD_M) x (TILE_N/THREAD_N)
# threads: 16 x 16 = 256 with these values).
TILE_M, TILE_N, TILE_K = 64, 64, 16
THREAD_M, THREAD_N = 4, 4

# gemm_tc: a block has WARPS_M x WARPS_N warps, each computing a 16 x 16 tile of C
# (gpu/gemm.py; the tile is the instruction's shape, not a tunable).
WARPS_M, WARPS_N = 2, 2

# gemm_naive and the model's elementwise and per-row kernels: threads per block.
THREADS = 128
# gemm_naive's 2-D blocks: NAIVE_BLOCK x NAIVE_BLOCK threads.
NAIVE_BLOCK = 16

# The fused step (gpu/fused.py): one block of FUSED_THREADS threads runs whole training
# steps, for models of at most FUSED_MAX_PARAMS parameters. One block is one
# multiprocessor of the GPU's hundred-odd: worth it while launch latency (some 5 us a
# launch, 54 launches a step) outweighs the work. The reference's 4,192 parameters are
# far inside; where multi-launch overtakes it is for a GPU to measure (not done yet).
# 128 threads: ptxas gives the fused kernel 255 registers a thread, and a multiprocessor
# has 64K, which 256 threads would take whole.
FUSED_THREADS = 128
FUSED_MAX_PARAMS = 100_000
