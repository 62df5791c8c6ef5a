"""Shared fixtures: a handle per engine, a scratch directory under /tmp."""

import pytest

import swapio

ENGINES = ("uring", "aio", "threads")


@pytest.fixture(params=ENGINES)
def engine(request):
    if swapio.probe(request.param) != 0:
        pytest.skip(f"{request.param} cannot run here")
    return request.param


@pytest.fixture
def handle(engine):
    with swapio.Handle(engine=engine, block_size=256 << 10) as h:
        yield h


@pytest.fixture
def path(tmp_path):
    return str(tmp_path / "t.swp")
