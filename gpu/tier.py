"""The cuda tier: the twin model (microgpt/twin) on numba.cuda kernels (gpu/kernels.py).
Parameters, gradients, Adam's moments and activations live on the device; a training
step moves the token ids in and the loss out, sampling one row of probabilities out."""
import functools
import os

from numba import cuda

from microgpt.twin import TwinGPT

from . import tuning
from .fused import train_steps as train_steps_fused
from .kernels import PRECISIONS, CudaKernels

if not cuda.is_available():
    raise ImportError("no CUDA GPU here (NUMBA_ENABLE_CUDASIM=1 runs the cuda tier on "
                      "numba's CPU simulator, slowly)")
if os.environ.get('NUMBA_ENABLE_CUDASIM') != '1' and cuda.implementation != 'NVIDIA':
    # numba's own CUDA target: deprecated, and fp64 would contract (gpu/nvvm.py)
    raise ImportError("the cuda tier needs NVIDIA's numba-cuda: pip install -e '.[cuda]'")


class CudaGPT(TwinGPT):
    precisions = tuple(PRECISIONS)
    cannot_time = ("numba's CUDA simulator stands in for a GPU here: nothing to time"
                   if os.environ.get('NUMBA_ENABLE_CUDASIM') == '1' else None)

    @classmethod
    def for_command_line(cls, precision):
        return functools.partial(cls, precision=precision)

    @classmethod
    def needed_bytes(cls, config, vocab_size):
        """None: the arrays live on the GPU, not in this machine's memory."""
        return None

    def __init__(self, config, vocab_size, precision='fp64', fused=None):
        """fused: train each chunk of steps in one launch (gpu/fused.py); by default
        in fp64 for models of at most tuning.FUSED_MAX_PARAMS parameters."""
        if precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}")
        self.kernels = CudaKernels(precision)
        super().__init__(config, vocab_size)
        if fused is None:
            fused = precision == 'fp64' and self.num_params <= tuning.FUSED_MAX_PARAMS
        if fused and precision != 'fp64':
            raise ValueError("the fused step runs fp64 only")
        self.fused = fused

    def train_steps(self, tokens, lengths, first_step):
        if not self.fused:
            return super().train_steps(tokens, lengths, first_step)
        K = self.kernels
        schedule = self.adam_schedule(first_step, tokens.shape[0])
        losses = K.zeros(tokens.shape[0])
        train_steps_fused(self.flat, self.batch, K.to_device(tokens), K.to_device(lengths),
                          K.to_device(schedule), self.hp, self.adam_step(first_step),
                          self.orders, losses, tuning.FUSED_THREADS)
        return K.to_host(losses).tolist()
