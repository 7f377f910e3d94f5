"""The ternary kernels: a registry of named backends and the accelerators that plug into it.

Every kernel takes int8 activations and a packed ternary matrix and returns the exact int32
product (``core.bitlinear.ternary_matmul`` is the definition), so the logits of every backend
are bit-identical.
"""
