import os

from torch.distributed.checkpoint import FileSystemReader, FileSystemWriter

import swapio

class Writer(FileSystemWriter):
    def __init__(self, path: str | os.PathLike[str]
                 | list[str | os.PathLike[str]]
                 | tuple[str | os.PathLike[str], ...],
                 single_file_per_rank: bool = True, sync_files: bool = True,
                 thread_count: int = 1,
                 per_thread_copy_ahead: int = 10_000_000,
                 cache_staged_state_dict: bool = False,
                 overwrite: bool = True, *,
                 handle: swapio.Handle | None = None) -> None: ...

class Reader(FileSystemReader):
    def __init__(self, path: str | os.PathLike[str], *,
                 handle: swapio.Handle | None = None,
                 batch_bytes: int = ...) -> None: ...
