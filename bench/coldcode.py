#!/usr/bin/env python3
"""Which of a binary's code a cold start runs, and how widely it is spread.

Runs one unstripped function binary once under callgrind, against the fake Lambda Runtime API
of bench/coldstart.py (init and two invocations, the same events), then reads which of the
binary's functions ran and where they are (`nm -S`):
- the instructions the process ran from its start to its third `next` (counted, so the
  figure does not move with the machine's load);
- how many of the binary's functions ran and their bytes of code, beside its whole text;
- the 4 KiB pages and 64 KiB blocks those functions span (Linux maps a file 64 KiB around each
  page a process touches, so the blocks are what a cold start makes resident of the code);
- those bytes, and the instructions run, by crate (the first path segment of each demangled
  name: generic code counts in the crate that defines it).

usage: coldcode.py BIN [NAME] [--order FILE]
  NAME picks the event (`transfer`, `janitor`, `hello`; default an HTTP request);
  --order FILE writes the functions that ran, one mangled name per line (most instructions
  first), as a linker symbol-ordering file.
The binary must keep its symbols: e.g. CARGO_PROFILE_RELEASE_STRIP=false cargo build --release.
"""

import collections
import os
import re
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import coldstart  # noqa: E402

PAGE, BLOCK = 4096, 65536


def ran_functions(binary, name):
    """Mangled names of the binary's functions that ran, with their instruction counts, and
    the instructions the whole process ran (the loader and libc included)."""
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "callgrind.out")
        wrap = ["valgrind", "--tool=callgrind", "--demangle=no", "--compress-strings=no",
                "--compress-pos=no", f"--callgrind-out-file={out}"]
        coldstart.run_once(binary, name, wrap)
        ran = collections.Counter()
        real = os.path.realpath(binary)
        ob = fn = None
        total = 0
        with open(out) as f:
            for line in f:
                if line.startswith("totals:"):
                    total = int(line.split()[1])
                elif line.startswith("ob="):
                    ob = os.path.realpath(line[3:].strip())
                elif line.startswith("fn="):
                    fn = line[3:].strip() if ob == real else None
                    if fn:
                        ran[fn] += 0
                elif fn and line[:1].isdigit():
                    # "<line> <Ir>": the function's own instructions at that position.
                    parts = line.split()
                    if len(parts) >= 2:
                        ran[fn] += int(parts[1])
                elif line.startswith(("cob=", "cfn=", "calls=")):
                    # A call's inclusive cost follows `calls=`; it is not this function's own.
                    if line.startswith("calls="):
                        next(f, None)
        return ran, total


def symbols(binary):
    """(address, size, mangled name) of every function in the binary's text."""
    out = subprocess.run(["nm", "-S", "--defined-only", binary], capture_output=True,
                         text=True, check=True).stdout
    syms = []
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 4 and parts[2] in "tTwW":
            syms.append((int(parts[0], 16), int(parts[1], 16), parts[3]))
    return syms


def crate_of(demangled):
    name = demangled.lstrip("<&*")
    name = re.sub(r"^(dyn |mut |const )", "", name)
    m = re.match(r"([A-Za-z_][A-Za-z0-9_]*)", name)
    return m.group(1) if m else "?"


def demangle(names):
    out = subprocess.run(["c++filt"], input="\n".join(names), capture_output=True, text=True,
                         check=True).stdout
    return out.splitlines()


def text_size(binary):
    out = subprocess.run(["readelf", "-S", "-W", binary], capture_output=True, text=True,
                         check=True).stdout
    for line in out.splitlines():
        parts = line.replace("[ ", "[").split()
        if len(parts) > 5 and parts[1] == ".text":
            return int(parts[5], 16)
    return 0


def main():
    args = sys.argv[1:]
    order = None
    if "--order" in args:
        i = args.index("--order")
        order = args[i + 1]
        del args[i : i + 2]
    binary = args[0]
    name = args[1] if len(args) > 1 else os.path.basename(binary).removeprefix("filestore-")
    ran, total_instructions = ran_functions(binary, name)
    by_name = {}
    for addr, size, sym in symbols(binary):
        by_name.setdefault(sym, (addr, size))
    found = [(sym, *by_name[sym]) for sym in ran if sym in by_name and by_name[sym][1]]
    total = sum(size for _, _, size in found)
    pages = {p for _, addr, size in found for p in range(addr // PAGE, (addr + size - 1) // PAGE + 1)}
    blocks = {b for _, addr, size in found for b in range(addr // BLOCK, (addr + size - 1) // BLOCK + 1)}
    text = text_size(binary)
    print(f"{os.path.basename(binary)}: {total_instructions / 1e6:.2f} M instructions from start to"
          " the third `next` (loader and libc included)")
    print(f"  {len(found)} functions ran ({len(ran) - len(found)} not found"
          f" in the symbol table), {total / 1024:.0f} KiB of code of {text / 2**20:.1f} MiB text")
    print(f"  they span {len(pages)} pages of 4 KiB ({len(pages) * PAGE / 2**20:.1f} MiB)"
          f" and {len(blocks)} blocks of 64 KiB ({len(blocks) * BLOCK / 2**20:.1f} MiB)")
    crates, instructions = collections.Counter(), collections.Counter()
    for (sym, _, size), dem in zip(found, demangle([s for s, _, _ in found])):
        crates[crate_of(dem)] += size
        instructions[crate_of(dem)] += ran[sym]
    executed = sum(instructions.values())
    print(f"  code that ran, by crate: KiB, and share of the {executed / 1e6:.2f} M instructions"
          " the binary's own functions ran")
    for crate, size in crates.most_common(20):
        print(f"    {crate:<28} {size / 1024:7.1f} KiB {100 * size / total:5.1f}%"
              f" {100 * instructions[crate] / executed:5.1f}% of instructions")
    if order:
        with open(order, "w") as f:
            for sym in sorted((s for s, _, _ in found), key=lambda s: -ran[s]):
                f.write(sym + "\n")
        print(f"  wrote {len(found)} names to {order}")


if __name__ == "__main__":
    main()
