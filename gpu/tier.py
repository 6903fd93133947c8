"""The cuda tier: the twin model (microgpt/twin) on numba.cuda kernels (gpu/kernels.py).
Parameters, gradients, Adam's moments and activations live on the device; a training
step moves the token ids in and the loss out, sampling one row of probabilities out."""
from numba import cuda

from microgpt.twin import TwinGPT

from .kernels import PRECISIONS, CudaKernels

if not cuda.is_available():
    raise ImportError("no CUDA GPU here (NUMBA_ENABLE_CUDASIM=1 runs the cuda tier on "
                      "numba's CPU simulator, slowly)")


class CudaGPT(TwinGPT):
    def __init__(self, config, vocab_size, precision='fp64'):
        if precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}")
        self.kernels = CudaKernels(precision)
        super().__init__(config, vocab_size)
