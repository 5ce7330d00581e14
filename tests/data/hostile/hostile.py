"""A compromised generator: a real world, then the output folder is booby-trapped by seed.

Seeds (the trick): ``symdir`` the job folder becomes a link to the host's secret folder,
``symfile`` a link to the secret file inside it, ``fifo`` a FIFO, ``sparse`` a 1 TiB sparse
file, ``many`` 20 000 tiny files, ``deep`` a path 30 folders deep, ``hardlink`` a second
name for a file, ``chatty`` writes 8 MiB to its log (and its output is fine).
Any other seed generates normally. The host path of the secret comes from
the image (VWE_HOSTILE_SECRET); a real attacker reads its mounts in /proc/self/mountinfo.
"""

import os
import shutil
import sys
from pathlib import Path

import worldgen.agent as agent

# The image's compiled kernels go to the writable cache folder before numba is imported: numba
# creates that folder when the kernels are defined, and the agent only seeds a missing one (so
# importing `worldgen.generate` first made every boot compile from scratch: about 55 s).
agent._seed_numba_cache()

import worldgen.generate as generate  # noqa: E402

SECRET = Path(os.environ.get("VWE_HOSTILE_SECRET", "/nonexistent"))
REAL_GENERATE = generate.generate_world
REAL_DESCRIBE = agent._describe


def booby_trap(seed, out):
    if seed == "symdir":
        shutil.rmtree(out)
        os.symlink(SECRET, out)
    elif seed == "symfile":
        os.symlink(SECRET / "secret.txt", out / "secret.txt")
    elif seed == "fifo":
        os.mkfifo(out / "pipe")
    elif seed == "sparse":
        with open(out / "huge.bin", "wb") as f:
            f.truncate(1 << 40)
    elif seed == "many":
        many = out / "many"
        many.mkdir()
        for i in range(20_000):
            os.close(os.open(many / f"f{i}", os.O_CREAT | os.O_WRONLY, 0o644))
    elif seed == "deep":
        deep = out.joinpath(*["d"] * 30)
        deep.mkdir(parents=True)
        (deep / "x.txt").write_text("deep")
    elif seed == "hardlink":
        os.link(out / "world.json", out / "again.json")
    elif seed == "chatty":
        line = "x" * 1023 + "\n"
        for _ in range(8 * 1024):  # 8 MiB to the container's log
            sys.stderr.write(line)
        sys.stderr.flush()


def hostile_generate(seed_text, out_dir, **kwargs):
    world = REAL_GENERATE(seed_text, out_dir, **kwargs)
    booby_trap(seed_text, Path(out_dir))
    return world


def describe(path, root):
    # The agent's own description would hash the 1 TiB file; a hostile agent lies instead.
    if path.stat().st_size > 1 << 30:
        return {"name": str(path.relative_to(root)), "size": 1, "sha256": "0" * 64}
    return REAL_DESCRIBE(path, root)


class QuietPath(type(Path())):
    """The agent lists its output with rglob; a hostile agent hides the 20 000 files from its
    own `done` message (which would otherwise overflow the protocol's line limit)."""

    def rglob(self, pattern):
        return (p for p in super().rglob(pattern) if "many" not in p.parts)


def main():
    generate.generate_world = hostile_generate
    agent._describe = describe
    agent.Path = QuietPath
    agent.main()
