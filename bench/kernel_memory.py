#!/usr/bin/env python3
"""The machine's memory per awake workspace with a shell, by kernel slab cache (issue 28, item 4).

Starts `agentbox serve` on a fresh data directory, reads /proc/slabinfo and /proc/meminfo, wakes N workspaces and
opens a shell in each, reads them again and prints the growth per workspace: the largest slab caches, then
MemAvailable, Slab, SUnreclaim, PageTables, KernelStack and Percpu; and the superblocks one sandbox made of its own
(file systems in its mount table that the host does not have, plus its IPC namespace's mqueue, which no mount table
shows). Each superblock is a shrinker for which every memory cgroup of the host keeps a slot (ARCHITECTURE.md,
"Kernel memory per awake workspace"); the tables are sized by the most the host has ever had at once, so the
`kmalloc-1k` figure depends on what ran on the machine since its boot, not only on this run.

Example:
    python3 bench/kernel_memory.py --bin .build-release/release/agentbox --workspaces 1000
"""
import argparse
import time

from scratch_server import ScratchServer


def slabs():
    sizes = {}
    with open("/proc/slabinfo") as slabinfo:
        for line in slabinfo.read().splitlines()[2:]:
            fields = line.split()
            sizes[fields[0]] = int(fields[2]) * int(fields[3])  # objects × object size
    return sizes


def meminfo():
    with open("/proc/meminfo") as lines:
        return {line.split(":")[0]: int(line.split()[1]) for line in lines}


def own_superblocks(server, key):
    """Superblocks in a sandbox's mount table that the host's has not (the pool's btrfs, /usr's disk and the host's
    devtmpfs are shared), plus one for the mqueue of its IPC namespace."""
    with open("/proc/self/mountinfo") as host:
        shared = {line.split()[2] for line in host}
    table = server.call("POST", f"/v1/workspaces/{key}/exec", {"command": "cat /proc/self/mountinfo"})["stdout"]
    own = {(fields[2], fields[fields.index("-") + 1]) for fields in (line.split() for line in table.splitlines()) if fields[2] not in shared}
    return sorted(kind for _, kind in own) + ["mqueue"]


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bin", required=True, help="the agentbox binary")
    parser.add_argument("--workspaces", type=int, default=500, help="how many workspaces to wake, each with a shell (default 500)")
    parser.add_argument("--top", type=int, default=15, help="how many slab caches to print (default 15)")
    arguments = parser.parse_args()
    count = arguments.workspaces
    with ScratchServer(arguments.bin, ["--blank-workspaces", "0", "--parked-sandboxes", "0", "--idle-grace", "30m"], prefix="agentbox-kmem.") as server:
        time.sleep(2)
        slabs_before, memory_before = slabs(), meminfo()
        for index in range(count):
            server.call("PUT", f"/v1/workspaces/k{index}", {})
            server.call("POST", f"/v1/workspaces/k{index}/shells", {})
            if (index + 1) % 250 == 0:
                print(f"{index + 1} of {count} awake", flush=True)
        time.sleep(3)
        slabs_after, memory_after = slabs(), meminfo()
        growth = sorted(((slabs_after.get(name, 0) - slabs_before.get(name, 0)) / count, name) for name in slabs_after)
        print(f"per awake workspace with a shell, {count} awake:")
        for size, name in reversed(growth[-arguments.top:]):
            print(f"  {name:28s} {size / 1024:8.1f} KB")
        for name in ("MemAvailable", "Slab", "SUnreclaim", "PageTables", "KernelStack", "Percpu"):
            print(f"  {name:28s} {(memory_after[name] - memory_before[name]) / count:8.1f} KB")
        made = own_superblocks(server, "k0")
        print(f"superblocks of a sandbox's own: {len(made)} ({', '.join(made)})")
        server.stop()


if __name__ == "__main__":
    main()
