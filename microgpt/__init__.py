"""microgpt: Karpathy's microGPT in tiers, from the scalar spec to GPU kernels."""
__version__ = '0.1.0'
