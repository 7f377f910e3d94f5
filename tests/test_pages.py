"""release_pages: pages of a memory-mapped file leave the resident set; the data stays."""

import sys

import numpy as np

from minibitnet.pages import release_pages
from minibitnet.formats.safetensors import SafetensorsFile, TensorSpec, write_safetensors


def resident_file_kb():
    for line in open("/proc/self/status"):
        if line.startswith("RssFile:"):
            return int(line.split()[1])
    raise AssertionError("no RssFile line")


def test_released_view_reads_back_the_same_bytes(tmp_path):
    data = np.random.default_rng(0).integers(0, 256, (2048, 4096), dtype=np.uint8)  # 8 MB
    write_safetensors(tmp_path / "m.safetensors", [TensorSpec("w", "U8", data.shape)],
                      lambda spec: data)
    view = SafetensorsFile(tmp_path / "m.safetensors").array("w")
    assert int(view.sum(dtype=np.int64)) == int(data.sum(dtype=np.int64))  # fault every page in
    if sys.platform.startswith("linux"):
        before = resident_file_kb()
        assert release_pages(view)
        assert before - resident_file_kb() > 6 * 1024  # most of the 8 MB left the resident set
    else:
        release_pages(view)
    assert np.array_equal(view, data)  # and faults back in unchanged


def test_arrays_that_are_not_mapped_are_left_alone():
    assert release_pages(np.zeros((4, 4), np.uint8)) is False
    assert release_pages(np.zeros(0, np.uint8)) is False
