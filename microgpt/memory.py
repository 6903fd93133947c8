"""Memory: this process's peak, for reports, and what a run will need, checked before
it starts. Standard library only, and tiny: the benchmarks import it into a bare
interpreter to measure that interpreter's baseline."""
import sys


def peak_rss_mb():
    """This process's peak resident set size so far, in MB (2**20 bytes).

    On Linux, VmHWM from /proc/self/status: the high-water mark of this program's own
    memory. resource.getrusage's ru_maxrss is the fallback elsewhere; on Linux it also
    counts the parent's memory copied in at fork, before the exec of this program, so a
    run started from a large process (pytest, say) would look that large.
    """
    try:
        with open('/proc/self/status') as f:
            for line in f:
                if line.startswith('VmHWM:'):
                    return int(line.split()[1]) / 1024     # kB
    except OSError:
        pass
    import resource
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss / 2**20 if sys.platform == 'darwin' else rss / 2**10   # bytes vs KiB


def available_bytes():
    """The memory a run may still take: MemAvailable (Linux), or less where a cgroup
    limit says so; None where neither can be read."""
    found = []
    try:
        with open('/proc/meminfo') as f:
            for line in f:
                if line.startswith('MemAvailable:'):
                    found.append(int(line.split()[1]) * 1024)
    except OSError:
        pass
    try:
        with open('/sys/fs/cgroup/memory.max') as f:
            limit = f.read().strip()
        with open('/sys/fs/cgroup/memory.current') as f:
            used = int(f.read())
        if limit != 'max':
            found.append(int(limit) - used)
    except (OSError, ValueError):
        pass
    return min(found) if found else None


# Measured here with tracemalloc (Python 3.11, at n_embd 16-32, block_size 16-32): the
# scalar tier holds ~125 bytes per parameter (a Value and its float) and, while a step's
# graph lives, ~600 bytes per multiply-add of its forward pass (the Values of both
# operands' products and sums, their tuples of children and local gradients); lean ~80
# bytes per parameter (weights, their transposes, gradients, Adam's moments, as lists of
# floats) and ~2,500 bytes per position and unit of width (its tape's saved vectors).
SCALAR_PER_PARAM, SCALAR_PER_MAC = 130, 650
LEAN_PER_PARAM, LEAN_PER_POSITION_WIDTH = 130, 2500


def needed_bytes(tier, config, vocab_size):
    """About how much memory training `config` takes on `tier`, in bytes, computed
    from the shapes: exactly the arrays' sizes for the twin tiers (numpy, jit; cuda's
    host side is jit's), the estimates above for scalar and lean."""
    V, T, C, L = vocab_size, config.block_size, config.n_embd, config.n_layer
    B, H = config.batch_size, config.n_head
    params = (2 * V + T) * C + 12 * L * C * C
    positions = B * T                        # at most: every document a full block
    if tier == 'scalar':
        macs = positions * (12 * L * C * C + V * C + L * T * C)
        return SCALAR_PER_PARAM * params + SCALAR_PER_MAC * macs
    if tier == 'lean':
        return LEAN_PER_PARAM * params + LEAN_PER_POSITION_WIDTH * positions * (L * C + V)
    from types import SimpleNamespace

    from .twin.model import acts_size
    hp = SimpleNamespace(vocab_size=V, block_size=T, n_embd=C, n_head=H, n_layer=L)
    R = positions                            # the twin's workspace rows
    orders = 11 * C + V + R + 5 * R                          # int64: Orders and a Batch
    floats = 4 * params + 2 * acts_size(hp, R) + orders      # params, grads, m, v; acts, dacts
    if tier == 'numpy':   # its transients: the products it sums in order, a block at a time
        from .twin.numpy_kernels import BLOCK
        floats += 2 * BLOCK + 8 * R * T * C                  # (and attention's key windows)
    else:                 # jit: a transposed weight per product
        floats += 4 * C * C
    return 8 * floats


def check_fits(tier, config, vocab_size):
    """None if the run fits in the memory available here; else why not, in one line."""
    need, have = needed_bytes(tier, config, vocab_size), available_bytes()
    if have is None or need <= have:
        return None
    gib = 2 ** 30
    return (f"this config needs about {need / gib:.1f} GiB of memory on tier {tier}, and "
            f"{have / gib:.1f} GiB is available here; make it smaller (--n-embd, --n-layer, "
            f"--block-size, --batch-size)")
