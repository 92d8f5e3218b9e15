import pytest
import torch


@pytest.fixture(autouse=True)
def _one_thread():
    # Tiny models on a shared 2-core box: a second intra-op thread only adds spin-wait (40x slower under load).
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
