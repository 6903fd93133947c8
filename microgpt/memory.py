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


def needed_bytes(tier, config, vocab_size):
    """About how much memory training `config` takes on `tier`, in bytes: the tier's
    own estimate (its model class's needed_bytes), None where this machine's memory is
    not what bounds it (the cuda tier's arrays live on the GPU)."""
    from .tiers import load
    return load(tier).needed_bytes(config, vocab_size)


def check_fits(tier, config, vocab_size):
    """None if the run fits in the memory available here; else why not, in one line."""
    need, have = needed_bytes(tier, config, vocab_size), available_bytes()
    if need is None or have is None or need <= have:
        return None
    gib = 2 ** 30
    return (f"this config needs about {need / gib:.1f} GiB of memory on tier {tier}, and "
            f"{have / gib:.1f} GiB is available here; make it smaller (--n-embd, --n-layer, "
            f"--block-size, --batch-size)")
