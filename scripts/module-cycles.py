#!/usr/bin/env python3
"""Lists import circles between the modules of each crate of the workspace.

A module is a file under a crate's `src/` (`foo.rs` and `foo/mod.rs` are module `foo`).
An edge a -> b is a `use crate::b...` or `use super::b...` (or a `crate::b::` path) in
a's file, outside comments and `#[cfg(test)]` modules; edges between a module and its
own ancestors or descendants (a `mod.rs` and the children it re-exports) do not count. A circle is a strongly connected component of
more than one module. Exit status 1 when any crate has one.

    scripts/module-cycles.py [CRATE_DIR ...]    (default: crates/* agents/* and the root)
"""
import pathlib
import re
import sys


def module_of(src: pathlib.Path, path: pathlib.Path) -> tuple:
    parts = list(path.relative_to(src).with_suffix("").parts)
    if parts[-1] in ("mod", "lib", "main"):
        parts = parts[:-1]
    return tuple(parts)


def non_test_text(text: str) -> str:
    """The file without its `#[cfg(test)] mod ... { ... }` blocks."""
    out, i = [], 0
    for match in re.finditer(r"#\[cfg\(test\)\]\s*mod\s+\w+\s*\{", text):
        if match.start() < i:
            continue
        out.append(text[i : match.start()])
        depth, j = 1, match.end()
        while j < len(text) and depth:
            depth += {"{": 1, "}": -1}.get(text[j], 0)
            j += 1
        i = j
    out.append(text[i:])
    return "".join(out)


def edges(src: pathlib.Path):
    modules = {module_of(src, p): p for p in src.rglob("*.rs")}
    graph = {m: set() for m in modules}
    for module, path in modules.items():
        text = re.sub(r"//[^\n]*", "", non_test_text(path.read_text()))
        # `use crate::{a, b::c}` and `crate::a::` paths; `super::x` relative to module.
        targets = []
        for group in re.findall(r"\bcrate::\{([^;]*?)\}\s*;", text, re.S):
            targets += [("crate", t.strip()) for t in re.split(r",(?![^{]*\})", group)]
        targets += [("crate", t) for t in re.findall(r"\bcrate::(\w+(?:::\w+)*)", text)]
        for group in re.findall(r"\bsuper::\{([^;]*?)\}\s*;", text, re.S):
            targets += [("super", t.strip()) for t in re.split(r",(?![^{]*\})", group)]
        targets += [("super", t) for t in re.findall(r"\bsuper::(\w+(?:::\w+)*)", text)]
        is_dir = path.name == "mod.rs"
        for base, target in targets:
            names = [n for n in re.split(r"::", target) if n and re.match(r"^\w+$", n)]
            if not names:
                continue
            if base == "crate":
                prefix = ()
            else:
                prefix = module if is_dir else module[:-1]
                prefix = prefix[:-1] if is_dir else prefix
            candidate = prefix
            best = None
            for name in names:
                candidate = candidate + (name,)
                if candidate in modules:
                    best = candidate
            # A module and its ancestors or descendants are one facade, not a circle.
            related = module[: len(best or ())] == best or (best or ())[: len(module)] == module
            if best and not related:
                graph[module].add(best)
    return graph


def circles(graph):
    index, low, stack, on, out, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                out.append(sorted(component))

    sys.setrecursionlimit(10000)
    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def main():
    root = pathlib.Path(__file__).resolve().parent.parent
    crates = [pathlib.Path(a) for a in sys.argv[1:]] or sorted(
        [*root.glob("crates/*"), *root.glob("agents/*"), root]
    )
    found = False
    for crate in crates:
        src = crate / "src"
        if not src.is_dir():
            continue
        for component in circles(edges(src)):
            found = True
            names = ", ".join("::".join(m) or "(root)" for m in component)
            print(f"{crate.name}: {names}")
    sys.exit(1 if found else 0)


if __name__ == "__main__":
    main()
