//! Two rules of the guide, checked on the product sources (`crates/ltx`, `crates/replica`,
//! `crates/vfs`, the root cdylib) so that a change that breaks them fails `make test`:
//!
//! - **No module cycles.** For the crate root and for every directory module, the graph of its
//!   children (files and sub-directories) has an edge A → B when code in A names B through
//!   `crate::…`, `super::…` or `self::…` (an item a parent re-exports with `pub use b::…` counts as
//!   B). Each of these graphs must be acyclic: a room may use another only if that one does not
//!   use it back, directly or around a loop.
//! - **No product source file over 600 lines**, not counting its trailing `#[cfg(test)]` module.
//!
//! The parsing is deliberately simple (line comments dropped, use-trees and inline paths read
//! by hand): it only has to understand the code of this repository.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

const CRATES: [&str; 4] = [
    "crates/ltx/src",
    "crates/replica/src",
    "crates/vfs/src",
    "src",
];
const MAX_LINES: usize = 600;

/// A source file: its module path (`["read", "pages"]` for read/pages.rs and read/pages/mod.rs,
/// `[]` for lib.rs) and its text split into the product part and the trailing test module.
struct Source {
    module: Vec<String>,
    product: String,
    tests: String,
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// The product part ends where the file's top-level `#[cfg(test)]` module begins.
fn split_tests(text: &str) -> (String, String) {
    let lines: Vec<&str> = text.lines().collect();
    let start = (0..lines.len()).find(|&i| {
        lines[i] == "#[cfg(test)]" && lines.get(i + 1).is_some_and(|l| l.starts_with("mod "))
    });
    match start {
        Some(i) => (lines[..i].join("\n"), lines[i..].join("\n")),
        None => (text.to_string(), String::new()),
    }
}

fn load(src: &Path) -> Vec<Source> {
    let mut files = Vec::new();
    rust_files(src, &mut files);
    files.sort();
    files
        .into_iter()
        .map(|path| {
            let rel = path.strip_prefix(src).unwrap().with_extension("");
            let mut module: Vec<String> = rel
                .components()
                .map(|c| c.as_os_str().to_string_lossy().into_owned())
                .collect();
            let last = module.last().cloned().unwrap_or_default();
            if last == "mod" || (module.len() == 1 && last == "lib") {
                module.pop();
            }
            let text = std::fs::read_to_string(&path).unwrap();
            let (product, tests) = split_tests(&text);
            Source {
                module,
                product: strip_comments(&product),
                tests: strip_comments(&tests),
            }
        })
        .collect()
}

/// Drops line comments (doc links in comments are not dependencies).
fn strip_comments(text: &str) -> String {
    let mut out = String::new();
    for line in text.lines() {
        if line.trim_start().starts_with("//") {
            continue;
        }
        let mut code = line;
        let mut quotes = 0;
        for (i, c) in line.char_indices() {
            match c {
                '"' => quotes += 1,
                '/' if quotes % 2 == 0 && line[i..].starts_with("// ") => {
                    code = &line[..i];
                    break;
                }
                _ => {}
            }
        }
        out.push_str(code);
        out.push('\n');
    }
    out
}

fn is_ident(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// Parses the path or use-tree at the start of `s` into its full paths (without a leading
/// `crate`/`super`/`self`, which the caller resolved).
fn parse_tree(s: &str) -> (Vec<Vec<String>>, usize) {
    let mut prefix: Vec<String> = Vec::new();
    let mut i = 0;
    let b = s.as_bytes();
    loop {
        while i < b.len() && (b[i] as char).is_whitespace() {
            i += 1;
        }
        if i < b.len() && b[i] == b'{' {
            i += 1;
            let mut paths = Vec::new();
            loop {
                while i < b.len() && (b[i] as char).is_whitespace() || (i < b.len() && b[i] == b',')
                {
                    i += 1;
                }
                if i >= b.len() {
                    return (paths, i);
                }
                if b[i] == b'}' {
                    return (paths, i + 1);
                }
                let (sub, used) = parse_tree(&s[i..]);
                if used == 0 {
                    return (paths, i);
                }
                i += used;
                for p in sub {
                    let mut full = prefix.clone();
                    full.extend(p.into_iter().filter(|x| x != "self"));
                    paths.push(full);
                }
                // Skip an `as alias` or anything else up to the next separator.
                while i < b.len() && b[i] != b',' && b[i] != b'}' {
                    if b[i] == b'{' {
                        break;
                    }
                    i += 1;
                }
            }
        }
        let start = i;
        while i < b.len() && is_ident(b[i] as char) {
            i += 1;
        }
        if i == start {
            // `*` or nothing: the prefix itself.
            if i < b.len() && b[i] == b'*' {
                i += 1;
            }
            return (vec![prefix], i);
        }
        prefix.push(s[start..i].to_string());
        if s[i..].starts_with("::") {
            i += 2;
        } else {
            return (vec![prefix], i);
        }
    }
}

/// Every absolute module path `text` names, for code in module `module`.
fn references(text: &str, module: &[String], relative: bool) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    let b = text.as_bytes();
    let mut i = 0;
    while i < b.len() {
        let rest = &text[i..];
        let boundary =
            i == 0 || !(is_ident(b[i - 1] as char) || b[i - 1] == b'$' || b[i - 1] == b':');
        let hit = if !boundary {
            None
        } else if rest.starts_with("crate::") {
            Some((Vec::new(), 7))
        } else if relative && rest.starts_with("self::") {
            Some((module.to_vec(), 6))
        } else if relative && rest.starts_with("super::") {
            // `a/b.rs` is module a::b and `a/mod.rs` is module a: either way `super` drops one
            // segment.
            let mut base = module.to_vec();
            let mut used = 0;
            while text[i + used..].starts_with("super::") {
                used += 7;
                base.pop();
            }
            Some((base, used))
        } else {
            None
        };
        match hit {
            Some((base, used)) => {
                let (paths, n) = parse_tree(&text[i + used..]);
                for p in paths {
                    let mut full = base.clone();
                    full.extend(p);
                    out.push(full);
                }
                i += used + n.max(1);
            }
            None => i += rest.chars().next().map_or(1, char::len_utf8),
        }
    }
    out
}

/// Names that the directory module `dir` re-exports from one of its children: `pub use
/// child::{A, B}` or `pub use crate::dir::child::A` makes `crate::dir::A` mean `child`.
fn reexports(
    sources: &[Source],
    dir: &[String],
    children: &BTreeSet<String>,
) -> BTreeMap<String, String> {
    let mut map = BTreeMap::new();
    let Some(parent) = sources.iter().find(|s| s.module == dir) else {
        return map;
    };
    for stmt in parent.product.split(';') {
        let Some(pos) = stmt.find("use ") else {
            continue;
        };
        let head = &stmt[..pos];
        if !head.trim().starts_with("pub") {
            continue;
        }
        let tree = stmt[pos + 4..].trim();
        let (base, tree) = if let Some(t) = tree.strip_prefix("crate::") {
            (Vec::new(), t)
        } else if let Some(t) = tree.strip_prefix("self::") {
            (dir.to_vec(), t)
        } else {
            (dir.to_vec(), tree)
        };
        for p in parse_tree(tree).0 {
            let mut full = base.clone();
            full.extend(p);
            if full.len() > dir.len() + 1
                && full.starts_with(dir)
                && children.contains(&full[dir.len()])
            {
                if let Some(name) = full.last() {
                    map.insert(name.clone(), full[dir.len()].clone());
                }
            }
        }
    }
    map
}

/// The child-module graph of each directory module of one crate.
fn graphs(sources: &[Source]) -> BTreeMap<Vec<String>, BTreeMap<String, BTreeSet<String>>> {
    let mut dirs: BTreeMap<Vec<String>, BTreeSet<String>> = BTreeMap::new();
    for s in sources {
        if let Some((name, parent)) = s.module.split_last() {
            dirs.entry(parent.to_vec())
                .or_default()
                .insert(name.clone());
        }
    }
    let mut out = BTreeMap::new();
    for (dir, children) in &dirs {
        let names = reexports(sources, dir, children);
        let mut edges: BTreeMap<String, BTreeSet<String>> = children
            .iter()
            .map(|c| (c.clone(), BTreeSet::new()))
            .collect();
        for s in sources {
            if s.module.len() <= dir.len() || !s.module.starts_with(dir) {
                continue;
            }
            let from = &s.module[dir.len()];
            let refs = references(&s.product, &s.module, true)
                .into_iter()
                .chain(references(&s.tests, &s.module, false));
            for r in refs {
                if r.len() <= dir.len() || !r.starts_with(dir) {
                    continue;
                }
                let name = &r[dir.len()];
                let to = if children.contains(name) {
                    Some(name.clone())
                } else {
                    names.get(name).cloned()
                };
                if let Some(to) = to.filter(|t| t != from) {
                    edges.entry(from.clone()).or_default().insert(to);
                }
            }
        }
        out.insert(dir.clone(), edges);
    }
    out
}

/// One cycle of `edges`, if there is any.
fn find_cycle(edges: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(
        n: &str,
        edges: &BTreeMap<String, BTreeSet<String>>,
        state: &mut BTreeMap<String, u8>,
        stack: &mut Vec<String>,
    ) -> Option<Vec<String>> {
        state.insert(n.to_string(), 1);
        stack.push(n.to_string());
        for m in edges.get(n).into_iter().flatten() {
            match state.get(m.as_str()).copied().unwrap_or(0) {
                1 => {
                    let at = stack.iter().position(|x| x == m).unwrap_or(0);
                    let mut cycle = stack[at..].to_vec();
                    cycle.push(m.clone());
                    return Some(cycle);
                }
                0 => {
                    if let Some(c) = visit(m, edges, state, stack) {
                        return Some(c);
                    }
                }
                _ => {}
            }
        }
        stack.pop();
        state.insert(n.to_string(), 2);
        None
    }
    let mut state = BTreeMap::new();
    for n in edges.keys() {
        if state.get(n.as_str()).copied().unwrap_or(0) == 0 {
            let mut stack = Vec::new();
            if let Some(c) = visit(n, edges, &mut state, &mut stack) {
                return Some(c);
            }
        }
    }
    None
}

/// Every cycle found in one crate, one per graph, as `crate::dir: a -> b -> a`.
fn cycles(src: &Path) -> Vec<String> {
    let sources = load(src);
    let mut found = Vec::new();
    for (dir, mut edges) in graphs(&sources) {
        // Report each cycle, then cut one of its edges and look again, so every loop shows.
        while let Some(c) = find_cycle(&edges) {
            let at = if dir.is_empty() {
                "crate".to_string()
            } else {
                format!("crate::{}", dir.join("::"))
            };
            found.push(format!("{at}: {}", c.join(" -> ")));
            if let Some(targets) = edges.get_mut(&c[0]) {
                targets.remove(&c[1]);
            }
        }
    }
    found
}

#[test]
fn product_crates_have_no_module_cycles() {
    let mut all = Vec::new();
    for krate in CRATES {
        for c in cycles(&e2e::repo_root().join(krate)) {
            all.push(format!("{krate}: {c}"));
        }
    }
    assert!(all.is_empty(), "module cycles:\n{}", all.join("\n"));
}

#[test]
fn product_source_files_stay_under_600_lines() {
    let mut long = Vec::new();
    for krate in CRATES {
        let mut files = Vec::new();
        rust_files(&e2e::repo_root().join(krate), &mut files);
        for f in files {
            let text = std::fs::read_to_string(&f).unwrap();
            let n = split_tests(&text).0.lines().count();
            if n > MAX_LINES {
                long.push(format!("{} ({n} lines)", f.display()));
            }
        }
    }
    assert!(
        long.is_empty(),
        "over {MAX_LINES} lines without tests:\n{}",
        long.join("\n")
    );
}

/// The checker itself: it must see a cycle through a re-export and through `super::`, and
/// none in a tree that only points one way.
#[test]
fn the_cycle_checker_sees_cycles() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path();
    let write = |p: &str, t: &str| {
        let p = src.join(p);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, t).unwrap();
    };
    write("lib.rs", "mod a;\nmod b;\nmod d;\npub use b::Thing;\n");
    write(
        "a.rs",
        "use crate::{b::X, d::Y};\n// crate::c is only a comment\n",
    );
    write("b.rs", "pub struct Thing;\n");
    write("d/mod.rs", "mod p;\nmod q;\npub use q::Y;\n");
    write("d/p.rs", "use super::q::Z;\n");
    write(
        "d/q.rs",
        "pub struct Z; pub struct Y;\n#[cfg(test)]\nmod tests {\n    use super::*;\n}\n",
    );
    assert!(cycles(src).is_empty(), "{:?}", cycles(src));
    write("b.rs", "pub struct Thing;\nfn f() { crate::a::g() }\n");
    write("d/q.rs", "use super::p;\npub struct Z; pub struct Y;\n");
    let found = cycles(src);
    assert_eq!(found.len(), 2, "{found:?}");
    assert!(found[0].starts_with("crate: a -> b -> a"), "{found:?}");
    assert!(found[1].starts_with("crate::d: p -> q -> p"), "{found:?}");
    write("b.rs", "pub struct Thing;\n");
    write("a.rs", "use crate::Thing;\n");
    write(
        "b.rs",
        "pub struct Thing;\nfn f() { let _ = crate::a::g; }\n",
    );
    assert_eq!(
        cycles(src).len(),
        2,
        "a re-exported item counts as its module: {:?}",
        cycles(src)
    );
}
