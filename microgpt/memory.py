"""Peak memory of this process, for reports. Standard library only, and tiny: the
benchmarks import it into a bare interpreter to measure that interpreter's baseline."""
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
