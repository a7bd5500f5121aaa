#!/usr/bin/python3
"""Checks every #include in src/ and include/ against docs/DESIGN.md's module table: a file of
module M (src/M/**, include/fedgan/M/**) may include fedgan/M/... and fedgan/X/... for the X
listed in M's "may include" cell, and a quoted relative include only from its own folder tree.
Also fails when the table's allowances form a cycle, name an unknown module, or a folder under
src/ or include/fedgan/ is missing from the table. Prints every violation with file:line.
usage: check_includes.py REPO_ROOT"""
import os, re, sys

root = sys.argv[1] if len(sys.argv) > 1 else "."
design = os.path.join(root, "docs", "DESIGN.md")


def read_table():
    lines = open(design, encoding="utf-8").read().split("\n")
    start = next(i for i, l in enumerate(lines) if "module-table: read by tests/check_includes.py" in l)
    allowed = {}
    for line in lines[start + 3:]:
        if not line.startswith("|"):
            break
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        name = cells[0].strip("`")
        deps = cells[-1]
        allowed[name] = set() if deps in ("—", "-", "") else {d.strip().strip("`") for d in deps.split(",")}
    return allowed


def main():
    allowed = read_table()
    problems = []
    for m, deps in allowed.items():
        for d in deps - set(allowed):
            problems.append(f"DESIGN.md: module {m} may include unknown module {d}")
    # The allowances must be acyclic: a module may not reach itself.
    def reach(m, seen):
        for d in allowed.get(m, ()):
            if d not in seen:
                seen.add(d)
                reach(d, seen)
        return seen
    for m in allowed:
        if m in reach(m, set()):
            problems.append(f"DESIGN.md: module {m} can reach itself through the table (a cycle)")
    include_re = re.compile(r'^\s*#\s*include\s+"([^"]+)"')
    checked = 0
    for base in ("src", os.path.join("include", "fedgan")):
        top = os.path.join(root, base)
        for module in sorted(os.listdir(top)):
            folder = os.path.join(top, module)
            if not os.path.isdir(folder):
                continue
            if module not in allowed:
                problems.append(f"{base}/{module}: a module folder missing from DESIGN.md's table")
                continue
            for dirpath, _, files in os.walk(folder):
                for f in sorted(files):
                    if not f.endswith((".cpp", ".hpp", ".h", ".cu")):
                        continue
                    path = os.path.join(dirpath, f)
                    rel = os.path.relpath(path, root)
                    for n, line in enumerate(open(path, encoding="utf-8"), 1):
                        hit = include_re.match(line)
                        if not hit:
                            continue
                        checked += 1
                        target = hit.group(1)
                        if target.startswith("fedgan/"):
                            parts = target.split("/")
                            other = parts[1] if len(parts) > 2 else ""
                            if other != module and other not in allowed[module]:
                                problems.append(f"{rel}:{n}: module {module} includes {target} "
                                                f"(module {other or '?'}), which DESIGN.md does not allow "
                                                f"(allowed: {', '.join(sorted(allowed[module])) or 'none'})")
                        else:
                            resolved = os.path.normpath(os.path.join(dirpath, target))
                            if not resolved.startswith(os.path.normpath(folder) + os.sep):
                                problems.append(f"{rel}:{n}: relative include {target} leaves module {module}")
                            elif not os.path.exists(resolved):
                                problems.append(f"{rel}:{n}: relative include {target} does not exist")
    for p in problems:
        print(p)
    print(f"check_includes: {checked} includes in {len(allowed)} modules checked, {len(problems)} problem(s)")
    sys.exit(1 if problems else 0)


if __name__ == "__main__":
    main()
