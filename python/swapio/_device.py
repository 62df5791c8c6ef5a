"""Which memory goes by swapio's device path: DLPack producers on CUDA."""

# DLPack device types of memory swapio moves by its device path.
DL_CUDA, DL_CUDA_MANAGED = 2, 13


def cuda_ordinal(obj):
    """The CUDA device ordinal of *obj*'s memory, from its
    ``__dlpack_device__()`` (kDLCUDA or kDLCUDAManaged), else None."""
    dev = getattr(obj, "__dlpack_device__", None)
    if dev is None:
        return None
    kind, index = dev()
    return index if kind in (DL_CUDA, DL_CUDA_MANAGED) else None
