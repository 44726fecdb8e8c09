"""The one resumable-shard writer (svslm.utils.shards) of stages 2 and 3."""
from __future__ import annotations

import kaldiio
import numpy as np
import pytest

from svslm.utils.shards import Shards


def test_shards_are_done_only_when_they_cover_their_keys(tmp_path):
    keys = [f"u{i}" for i in range(5)]
    shards = Shards(tmp_path, "codec_ssl", keys, 2, side_files=("bad",), failures="bad")
    assert shards.units == [["u0", "u1"], ["u2", "u3"], ["u4"]]
    arrays = {u: np.full((3, 9), i, dtype=np.int32) for i, u in enumerate(keys)}
    shards.write(0, {"u0": arrays["u0"]}, {"bad": {"u1": "unreadable\naudio"}})
    assert shards.done(0) and not shards.done(1)
    with pytest.raises(FileNotFoundError, match="shard 1 of 3 is not finished"):
        shards.merged()
    shards.write(1, {u: arrays[u] for u in ("u2", "u3")}, {"bad": {}})
    shards.write(2, {"u4": arrays["u4"]}, {"bad": {}})
    scp = shards.merged()
    assert sorted(scp) == ["u0", "u2", "u3", "u4"] and shards.merged("bad") == {"u1": "unreadable audio"}
    assert all(np.array_equal(kaldiio.load_mat(scp[u]), arrays[u]) for u in scp)
    assert not list(tmp_path.glob(".*"))  # no temporary files left
    # Other shard sizes cut other shards: the files on disk do not cover them, so they are redone.
    assert not Shards(tmp_path, "codec_ssl", keys, 3, side_files=("bad",), failures="bad").done(0)
    with pytest.raises(ValueError, match="side files"):
        shards.write(0, {}, {})
