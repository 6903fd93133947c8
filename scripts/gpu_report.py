#!/usr/bin/env python3
"""Every kernel of the cuda tier, compiled for real GPUs on a machine with none.

    python scripts/gpu_report.py [--json PATH] [--write-docs]

1. Records (in a subprocess, under numba's CUDA simulator) which kernels one training
   step and one sampling step launch, with which argument types, in each precision
   (fp64 both fused, gpu/fused.py, and op by op), at n_embd 8, n_head 2, block_size 8,
   batch 1 and 3 (gpu/launch.py).
2. Compiles each recorded kernel with exactly those types to PTX for sm_80 and sm_90
   (numba-cuda, NVVM, with gpu/nvvm.py's fp64 policy), assembles it with ptxas and
   disassembles it with nvdisasm (gpu/ptx.py).
3. Prints a table per kernel: registers, shared memory and spill bytes (ptxas, sm_90),
   float64 instructions in the PTX, fma.rn.f64 (and, for fp64, how many NVVM's default
   contraction would have made) and fma.rn.f32 in the PTX, HMMA in the SASS; the
   launches a training step takes; the fma that libdevice's exp, log and pow bring.

--json writes all of it, per architecture, for tests/test_gpu_compile.py; --write-docs
rewrites the table between docs/gpu.md's report:kernels markers. Needs the `cuda` extra.
"""
import argparse
import json
import os
import subprocess
import sys

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..')
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

# (label, precision, fused): fp64 trains fused at this size by default (gpu/fused.py);
# its op-by-op kernels are recorded too, as larger models launch them
RUNS = (('fp64', 'fp64', False), ('fp64 fused', 'fp64', True), ('fp32', 'fp32', False),
        ('tc', 'tc', False))
BATCHES = (1, 3)
TINY = dict(n_embd=8, n_head=2, block_size=8)
# Documents as token ids, [BOS, ..., BOS] (vocab 27, BOS 26): what a step trains on
DOCS = [[26, 4, 12, 12, 0, 26], [26, 0, 13, 13, 26], [26, 9, 14, 7, 13, 26]]


def record():
    """Run under the simulator: {label: {'launches': [launch, ...], 'per_step': {batch:
    n}}}, a launch being [kernel key, argument descriptions], each once."""
    from gpu.launch import recording
    from gpu.tier import CudaGPT
    from microgpt.config import GPTConfig
    out = {}
    for label, precision, fused in RUNS:
        launches, counts = [], {}
        for batch in BATCHES:
            model = CudaGPT(GPTConfig(**TINY, batch_size=batch), 27, precision=precision,
                            fused=fused)
            with recording() as step:
                model.train_step(DOCS[:batch], 0)
            counts[batch] = len(step)
            launches += step
        with recording() as sample:
            model.next_probs(26, 0, model.new_cache(), 0.5)
        launches += sample
        unique = {json.dumps(x): x for x in launches}     # each kernel and types once
        out[label] = {'launches': list(unique.values()), 'per_step': counts}
    return out


def recorded():
    env = dict(os.environ, NUMBA_ENABLE_CUDASIM='1')
    p = subprocess.run([sys.executable, os.path.abspath(__file__), '--record'], env=env,
                       capture_output=True, text=True)
    if p.returncode != 0:
        raise SystemExit(f"gpu_report: recording under the simulator failed:\n{p.stderr}")
    return json.loads(p.stdout)


def compile_all(records):
    """Each recorded (precision, kernel, types), compiled for every architecture; fp64
    kernels also with NVVM's default contraction (sm_90), to show what the policy
    removes."""
    from gpu import nvvm, ptx
    from gpu.launch import numba_type
    rows = []
    for precision, rec in records.items():
        for key, args in rec['launches']:
            key, argtypes = tuple(key), [numba_type(a) for a in args]
            row = {'precision': precision, 'kernel': key, 'args': args, 'arch': {},
                   'libdevice_calls': ptx.libdevice_calls(key)}
            for cc in ptx.ARCHS:
                text = ptx.compile_ptx(key, argtypes, cc)
                asm = ptx.assemble(text, cc)
                row['arch'][f'sm_{cc[0]}{cc[1]}'] = {
                    'registers': asm.registers, 'shared_bytes': asm.shared_bytes,
                    'spill_bytes': asm.spill_bytes, 'f64': ptx.count_f64(text),
                    'fma_f64': ptx.count_fma(text, 64), 'fma_f32': ptx.count_fma(text, 32),
                    'hmma': ptx.count_hmma(asm.sass)}
            if precision.startswith('fp64'):
                nvvm.use(False)
                try:
                    row['fma_f64_nvvm_default'] = ptx.count_fma(
                        ptx.compile_ptx(key, argtypes, (9, 0)), 64)
                finally:
                    nvvm.use()
            rows.append(row)
    return rows


def name(key):
    """A kernel's name for the table: gemm kernels with their form."""
    if key[0].startswith('_'):                 # a gemm factory: (factory, [dtype,] ta, tb, ...)
        base = key[0].strip('_').replace('_kernel', '')
        flags = [k for k in key[1:] if isinstance(k, bool)][:2]
        form = ''.join('t' if f else 'n' for f in flags)
        return f'gemm_{base} {form}'
    return key[0].replace('_kernel', '')


def fma_f64(row):
    count = row['arch']['sm_90']['fma_f64']
    default = row.get('fma_f64_nvvm_default')
    return f'{count} ({default})' if default is not None else f'{count}'


def table(rows, records, extras):
    lines = ['| precision | kernel | registers | shared bytes | spill bytes | f64 | '
             'fma.f64 (NVVM default) | fma.f32 | HMMA |',
             '| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |']
    seen = set()
    for row in rows:
        a = row['arch']['sm_90']
        line = (f"| {row['precision']} | {name(row['kernel'])} | {a['registers']} | "
                f"{a['shared_bytes']} | {a['spill_bytes']} | {a['f64']} | {fma_f64(row)} | "
                f"{a['fma_f32']} | {a['hmma']} |")
        if line not in seen:                   # types that compile alike: one line
            seen.add(line)
            lines.append(line)
    steps = ', '.join(f"{p} {', '.join(f'{n} (batch {b})' for b, n in r['per_step'].items())}"
                      for p, r in records.items())
    libdevice = ', '.join(f'{k} {v}' for k, v in extras['libdevice_fma'].items())
    before, after = extras['witness']
    return '\n'.join(lines) + (
        f"\n\nLaunches a training step: {steps}.\n\n"
        f"fma.rn.f64 that libdevice's float64 functions bring by themselves, alone in a "
        f"kernel: {libdevice}. `out[i] = a[i] * b[i] + out[i]` in float64: {before} fma with "
        f"NVVM's default, {after} with gpu/nvvm.py's policy.")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[1])
    parser.add_argument('--record', action='store_true', help=argparse.SUPPRESS)
    parser.add_argument('--json', help='write every figure, per architecture, here')
    parser.add_argument('--write-docs', action='store_true',
                        help="rewrite docs/gpu.md's kernel table")
    args = parser.parse_args(argv)
    if args.record:
        print(json.dumps(record()))
        return 0
    from gpu import ptx
    reason = ptx.missing()
    if reason:
        print(f"gpu_report: {reason}", file=sys.stderr)
        return 2
    records = recorded()
    rows = compile_all(records)
    extras = {'libdevice_fma': ptx.libdevice_fma((9, 0)),
              'witness': ptx.contraction_witness((9, 0))}
    body = table(rows, records, extras)
    print(body)
    if args.json:
        with open(args.json, 'w') as f:
            json.dump({'records': records, 'rows': rows, **extras}, f)
    if args.write_docs:
        import report
        report.rewrite(os.path.join(ROOT, 'docs', 'gpu.md'), 'kernels',
                       f"Measured {report.stamp()}, numba-cuda "
                       f"{__import__('numba_cuda').__version__}, sm_90:\n\n{body}")
    return 0


if __name__ == '__main__':
    sys.exit(main())
