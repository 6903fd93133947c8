"""The GPU tier: GEMM kernels (gemm.py), the twin's kernels (kernels.py) and the cuda
tier (tier.py) on numba.cuda; tunables in tuning.py. Runs on numba's CUDA simulator
(NUMBA_ENABLE_CUDASIM=1) where there is no GPU."""
from . import nvvm

nvvm.use()
