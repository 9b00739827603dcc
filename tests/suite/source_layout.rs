//! The source layout ARCHITECTURE.md promises, checked from the sources themselves: no source
//! file over [`MAX_FILE_LINES`] lines, no engine function over [`MAX_FN_LINES`] lines, and no
//! cycle among the engine's modules.
//!
//! A plain text scan (comments, strings and `#[cfg(test)]` items stripped, braces counted), not a
//! parser: it only has to be right on this code base, and a false alarm shows up as a failing
//! test with the offending file and line.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

const MAX_FILE_LINES: usize = 600;
const MAX_FN_LINES: usize = 100;
/// Files another change is splitting right now; remove an entry once it is under the limit.
const LONG_FILES_PENDING: &[&str] = &[];

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Every `.rs` file below `dir` (relative to the crate root), sorted.
fn rust_files_in(dir: &str) -> Vec<PathBuf> {
    let mut out = Vec::new();
    rust_files(&root().join(dir), &mut out);
    out
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let p = e.unwrap().path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
    out.sort();
}

fn rel(p: &Path) -> String {
    p.strip_prefix(root()).unwrap().display().to_string()
}

/// The source with comments, string and char literals blanked (line structure kept), so that
/// braces and paths can be counted on what is left.
fn code_only(src: &str) -> String {
    let b = src.as_bytes();
    let mut out = String::with_capacity(src.len());
    let mut i = 0;
    let keep_newlines = |s: &[u8], out: &mut String| {
        out.extend(s.iter().filter(|&&c| c == b'\n').map(|_| '\n'));
    };
    while i < b.len() {
        let rest = &b[i..];
        if rest.starts_with(b"//") {
            let end = rest.iter().position(|&c| c == b'\n').unwrap_or(rest.len());
            i += end;
        } else if rest.starts_with(b"/*") {
            let end = src[i + 2..].find("*/").map_or(b.len(), |e| i + 2 + e + 2);
            keep_newlines(&b[i..end], &mut out);
            i = end;
        } else if rest[0] == b'"' || rest.starts_with(b"r\"") || rest.starts_with(b"r#\"") {
            let (hashes, start) = match rest {
                [b'r', b'#', ..] => (1, 3),
                [b'r', ..] => (0, 2),
                _ => (0, 1),
            };
            let close = format!("\"{}", "#".repeat(hashes));
            let mut j = i + start;
            while j < b.len() && !(b[j..].starts_with(close.as_bytes())) {
                j += if hashes == 0 && b[j] == b'\\' { 2 } else { 1 };
            }
            let end = (j + close.len()).min(b.len());
            out.push_str("\"\"");
            keep_newlines(&b[i..end], &mut out);
            i = end;
        } else if rest[0] == b'\'' {
            // A char literal ('x', '\n', '\u{..}') rather than a lifetime ('a).
            let len = match rest {
                [_, b'\\', b'u', ..] => {
                    rest.iter().skip(1).position(|&c| c == b'\'').map(|p| p + 2)
                }
                [_, b'\\', _, b'\'', ..] => Some(4),
                [_, c, b'\'', ..] if *c != b'\'' => Some(3),
                _ => None,
            };
            match len {
                Some(n) => {
                    out.push_str("' '");
                    i += n;
                }
                None => {
                    out.push('\'');
                    i += 1;
                }
            }
        } else {
            let ch = src[i..].chars().next().unwrap();
            out.push(ch);
            i += ch.len_utf8();
        }
    }
    out
}

/// Line index just past the item starting at `start` (a `mod x;` or a braced item).
fn item_end(lines: &[&str], start: usize) -> usize {
    let mut depth = 0i64;
    let mut opened = false;
    for (k, l) in lines.iter().enumerate().skip(start) {
        for c in l.chars() {
            match c {
                '{' => {
                    depth += 1;
                    opened = true;
                }
                '}' => depth -= 1,
                ';' if !opened && depth == 0 => return k + 1,
                _ => {}
            }
        }
        if opened && depth == 0 {
            return k + 1;
        }
    }
    lines.len()
}

/// `code` with every `#[cfg(test)]` item blanked, and the names of the `mod x;` files it declares
/// test-only.
fn strip_test_items(code: &str) -> (String, Vec<String>) {
    let lines: Vec<&str> = code.lines().collect();
    let mut keep = vec![true; lines.len()];
    let mut test_mods = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        if lines[i].trim() == "#[cfg(test)]" {
            let end = item_end(&lines, i + 1);
            let item = lines[i + 1].trim();
            if let Some(name) = item.strip_prefix("mod ").and_then(|s| s.strip_suffix(';')) {
                test_mods.push(name.trim().to_string());
            }
            keep[i..end].iter_mut().for_each(|k| *k = false);
            i = end;
        } else {
            i += 1;
        }
    }
    let kept = lines
        .iter()
        .zip(&keep)
        .map(|(l, &k)| if k { *l } else { "" })
        .collect::<Vec<_>>()
        .join("\n");
    (kept, test_mods)
}

/// The module path of an engine file below `src/engine` (`conv/mod.rs` → `["conv"]`).
/// `path`'s module below the source folder `base` (`src/conv/mod.rs` below `src`: `["conv"]`).
fn module_below(path: &Path, base: &str) -> Vec<String> {
    let rel = path.strip_prefix(root().join(base)).unwrap();
    let mut parts: Vec<String> = rel
        .iter()
        .map(|s| s.to_string_lossy().trim_end_matches(".rs").to_string())
        .collect();
    if parts.last().is_some_and(|p| p == "mod") {
        parts.pop();
    }
    parts
}

/// Every engine module a piece of code names through `super::…`, `self::…` or
/// `crate::engine::…` (grouped imports `{a, b::c}` expanded), as absolute paths below the engine;
/// the caller cuts them to the known modules.
fn referenced_paths(code: &str, here: &[String]) -> Vec<Vec<String>> {
    referenced_paths_below(code, here, "crate::engine::")
}

/// [`referenced_paths`] for the modules below `root` (`"crate::"`: the whole crate).
fn referenced_paths_below(code: &str, here: &[String], root: &str) -> Vec<Vec<String>> {
    let mut found = Vec::new();
    let b = code.as_bytes();
    let ident = |c: u8| c.is_ascii_alphanumeric() || c == b'_';
    let mut i = 0;
    while i < b.len() {
        let boundary = i == 0 || !(ident(b[i - 1]) || b[i - 1] == b':' || b[i - 1] == b'$');
        let start = [root, "super::", "self::"]
            .into_iter()
            .find(|p| boundary && b[i..].starts_with(p.as_bytes()));
        let Some(prefix) = start else {
            i += 1;
            continue;
        };
        let mut base: Vec<String> = match prefix {
            "self::" => here.to_vec(),
            "super::" => here[..here.len().saturating_sub(1)].to_vec(),
            _ => vec![],
        };
        let mut j = i + prefix.len();
        while code[j..].starts_with("super::") {
            base.pop();
            j += "super::".len();
        }
        i = j;
        collect_tail(code, &mut i, base, &mut found);
    }
    found
}

/// Reads `a::b::{c, d::e}` at `*i`, pushing `base + path` for each leaf.
fn collect_tail(code: &str, i: &mut usize, mut base: Vec<String>, found: &mut Vec<Vec<String>>) {
    let b = code.as_bytes();
    loop {
        while *i < b.len() && b[*i].is_ascii_whitespace() {
            *i += 1;
        }
        if *i < b.len() && b[*i] == b'{' {
            *i += 1;
            loop {
                collect_tail(code, i, base.clone(), found);
                while *i < b.len() && (b[*i].is_ascii_whitespace() || b[*i] == b',') {
                    *i += 1;
                }
                if *i >= b.len() || b[*i] == b'}' {
                    *i += 1;
                    return;
                }
            }
        }
        let s = *i;
        while *i < b.len() && (b[*i].is_ascii_alphanumeric() || b[*i] == b'_') {
            *i += 1;
        }
        if s == *i {
            found.push(base);
            return;
        }
        base.push(code[s..*i].to_string());
        if code[*i..].starts_with("::") {
            *i += 2;
        } else {
            // Skip to the end of this leaf (`as x`, `*`, generics) inside a group.
            while *i < b.len() && !matches!(b[*i], b',' | b'}' | b';' | b'\n') {
                *i += 1;
            }
            found.push(base);
            return;
        }
    }
}

#[test]
fn no_source_file_is_over_the_limit() {
    let mut files = rust_files_in("src");
    files.extend(rust_files_in("tests"));
    let long: Vec<String> = files
        .iter()
        .map(|p| (rel(p), fs::read_to_string(p).unwrap().lines().count()))
        .filter(|(p, n)| *n > MAX_FILE_LINES && !LONG_FILES_PENDING.contains(&p.as_str()))
        .map(|(p, n)| format!("{p}: {n} lines"))
        .collect();
    assert!(
        long.is_empty(),
        "over {MAX_FILE_LINES} lines:\n{}",
        long.join("\n")
    );
}

#[test]
fn no_engine_function_is_over_the_limit() {
    let files = rust_files_in("src/engine");
    let mut long = Vec::new();
    let mut seen = 0;
    for p in &files {
        let code = code_only(&fs::read_to_string(p).unwrap());
        let lines: Vec<&str> = code.lines().collect();
        for (k, l) in lines.iter().enumerate() {
            let t = l.trim_start();
            let t = t
                .strip_prefix("pub")
                .map_or(t, |r| r.trim_start_matches(|c: char| c != ' ').trim_start());
            let t = t.strip_prefix("const ").unwrap_or(t);
            let t = t.strip_prefix("unsafe ").unwrap_or(t);
            if !t.starts_with("fn ") {
                continue;
            }
            let end = item_end(&lines, k);
            let body = lines[k..end].join("\n");
            if !body.contains('{') {
                continue; // a declaration without a body
            }
            seen += 1;
            if end - k > MAX_FN_LINES {
                long.push(format!("{}:{}: {} lines", rel(p), k + 1, end - k));
            }
        }
    }
    assert!(
        seen > 100,
        "the scan found only {seen} engine functions: is it broken?"
    );
    assert!(
        long.is_empty(),
        "engine functions over {MAX_FN_LINES} lines:\n{}",
        long.join("\n")
    );
}

type Module = Vec<String>;
type Edges = BTreeSet<(Module, Module)>;

/// The modules below the source folder `base` (test-only modules left out) and the edges between
/// them. Edges count between sibling modules (where two paths part): `conv::backward` naming
/// `dw` is `conv → dw`; naming `conv::geom` is `backward → geom`; naming an ancestor
/// (`super::X` for an item of the parent) is no edge, since a module and its children are one
/// unit. `root` is how the code names `base` (`"crate::engine::"`, `"crate::"`).
fn module_graph(base: &str, root: &str) -> (BTreeSet<Module>, Edges) {
    let files = rust_files_in(base);
    let mut test_only: BTreeSet<Module> = BTreeSet::new();
    let mut sources = BTreeMap::new();
    for p in &files {
        let m = module_below(p, base);
        if m == ["lib"] || m == ["main"] {
            continue; // the crate root declares the modules; the binary is another crate
        }
        let (code, test_mods) = strip_test_items(&code_only(&fs::read_to_string(p).unwrap()));
        for t in test_mods {
            let mut c = m.clone();
            c.push(t);
            test_only.insert(c);
        }
        sources.insert(m, code);
    }
    let modules: BTreeSet<Module> = sources
        .keys()
        .filter(|m| !test_only.iter().any(|t| m.starts_with(t)))
        .cloned()
        .collect();
    let mut edges = Edges::new();
    for m in &modules {
        for path in referenced_paths_below(&sources[m], m, root) {
            // The longest known module the path names.
            let Some(target) = (0..=path.len())
                .rev()
                .map(|n| path[..n].to_vec())
                .find(|p| modules.contains(p))
            else {
                continue;
            };
            let common = m.iter().zip(&target).take_while(|(a, b)| a == b).count();
            if common == target.len() || common == m.len() {
                continue; // an ancestor (or a child: declared here)
            }
            edges.insert((m[..=common].to_vec(), target[..=common].to_vec()));
        }
    }
    (modules, edges)
}

/// A cycle of `edges`, shown as `a → b → a`, if there is one (depth-first search for a back edge).
fn find_cycle(edges: &Edges) -> Option<String> {
    fn visit(
        n: &Module,
        edges: &Edges,
        state: &mut BTreeMap<Module, u8>,
        stack: &mut Vec<Module>,
    ) -> Option<Vec<Module>> {
        state.insert(n.clone(), 1);
        stack.push(n.clone());
        for (_, to) in edges.iter().filter(|(from, _)| from == n) {
            match state.get(to) {
                Some(1) => {
                    let at = stack.iter().position(|s| s == to).unwrap();
                    let mut cycle = stack[at..].to_vec();
                    cycle.push(to.clone());
                    return Some(cycle);
                }
                Some(_) => {}
                None => {
                    if let Some(c) = visit(to, edges, state, stack) {
                        return Some(c);
                    }
                }
            }
        }
        stack.pop();
        state.insert(n.clone(), 2);
        None
    }
    let mut state = BTreeMap::new();
    for (from, _) in edges {
        if !state.contains_key(from) {
            if let Some(c) = visit(from, edges, &mut state, &mut Vec::new()) {
                let names: Vec<String> = c.iter().map(|m| m.join("::")).collect();
                return Some(names.join(" → "));
            }
        }
    }
    None
}

#[test]
fn engine_modules_have_no_cycle() {
    let (modules, edges) = module_graph("src/engine", "crate::engine::");
    assert!(
        modules.len() > 15,
        "only {} engine modules found",
        modules.len()
    );
    assert!(
        edges
            .iter()
            .any(|(a, b)| a == &["conv"] && b == &["direct"]),
        "the scan should see conv use direct: {edges:?}"
    );
    if let Some(c) = find_cycle(&edges) {
        panic!("engine module cycle: {c}");
    }
}

/// No two modules anywhere in the crate name each other, directly or round a loop.
#[test]
fn crate_modules_have_no_cycle() {
    let (modules, edges) = module_graph("src", "crate::");
    assert!(modules.len() > 100, "only {} modules found", modules.len());
    if let Some(c) = find_cycle(&edges) {
        panic!("module cycle: {c}");
    }
}

/// The crate's layers, lowest first (ARCHITECTURE.md, *Layers*): a top-level module may name
/// only modules of a lower layer. Every top-level module must be listed, so a new one is placed
/// on purpose.
const LAYERS: &[&[&str]] = &[
    &["numfmt", "signals"],
    &["engine", "plotting"],
    &["model", "data"],
    &["config"],
    &["records"],
    &["experiments", "stream"],
    &["train"],
    &["snapshot"],
    &["tui"],
    &["cli"],
];

#[test]
fn layers_point_down() {
    let (modules, edges) = module_graph("src", "crate::");
    let layer = |m: &str| LAYERS.iter().position(|l| l.contains(&m));
    for m in modules.iter().filter(|m| m.len() == 1) {
        assert!(
            layer(&m[0]).is_some(),
            "top-level module `{}` is in no layer of LAYERS",
            m[0]
        );
    }
    let up: Vec<String> = edges
        .iter()
        .filter(|(a, _)| a.len() == 1)
        .filter(|(a, b)| layer(&a[0]) <= layer(&b[0]))
        .map(|(a, b)| format!("{} → {}", a[0], b[0]))
        .collect();
    assert!(
        edges
            .iter()
            .any(|(a, b)| a == &["tui"] && b == &["records"]),
        "the scan should see tui use records"
    );
    assert!(
        up.is_empty(),
        "imports that do not point down a layer: {up:?}"
    );
}

/// The scanner itself, on snippets whose answers are known.
#[test]
fn the_scanner_reads_paths_and_strips_what_it_should() {
    let here = vec!["conv".to_string(), "backward".to_string()];
    let code = "use super::geom::{Geom, imgs};\nuse crate::engine::{direct, dw::weight_grad};\nlet a = super::super::simd::avx512();";
    let mut got = referenced_paths(code, &here);
    got.sort();
    let p = |s: &str| s.split("::").map(str::to_string).collect::<Vec<_>>();
    assert_eq!(
        got,
        vec![
            p("conv::geom::Geom"),
            p("conv::geom::imgs"),
            p("direct"),
            p("dw::weight_grad"),
            p("simd::avx512")
        ]
    );
    let stripped = code_only("let s = \"{ // }\"; // } {\nlet c = '{'; fn f<'a>() {}\n");
    assert_eq!(stripped.matches('{').count(), 1, "{stripped}");
    let (kept, mods) = strip_test_items(
        "fn a() {}\n#[cfg(test)]\nmod tests;\n#[cfg(test)]\nmod x {\n use super::y;\n}\n",
    );
    assert_eq!(mods, vec!["tests".to_string()]);
    assert!(!kept.contains("super::y"), "{kept}");
}
