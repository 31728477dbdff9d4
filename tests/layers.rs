//! The layering docs/architecture.md draws, held to the code: a module
//! uses only modules of lower layers (and support), never one above it.
//! Read from the source as text, like tests/registry.rs reads the
//! manifests, so a `use` that reaches up fails here, not in review.

use std::collections::BTreeMap;
use std::path::Path;

/// The layers, lowest first. A module may use the modules of earlier
/// layers and of its own module, nothing else.
const LAYERS: &[&[&str]] = &[
    // support: no knowledge of the panel, the database or the engine
    &["clock", "xml", "fsutil", "progress", "host"],
    // asking the panel itself (`sbin/mgrctl`): its answers are XML
    &["mgrctl"],
    // a running operation's states and rules, without I/O
    &["operation"],
    &["config"],
    &["logging"],
    &["storage", "background"],
    &["db"],
    &["engine", "dev"],
    &["runner", "download", "context"],
    // the panel's vocabulary (request, reply, errors, messages, names) and
    // its edge (`handle`, given the registry by the caller)
    &["protocol"],
    &["health", "functions"],
    &["cron"],
    &["install"],
    // the properties the fuzz targets check (`fuzz` feature and tests only)
    &["cli", "fuzzing"],
];

/// The engine's own layers, lowest first, as docs/architecture.md draws
/// them: what a copy is (the format) and tools that know nothing else;
/// reading a database, checking SQL, the archive; then verifying,
/// restoring, single objects, the dump; the settings; the jobs, the
/// engine's door; uploads, which are jobs of their own.
const ENGINE_LAYERS: &[&[&str]] = &[
    &["format", "tsv", "spill", "crypt", "policy"],
    &["ddl", "introspect", "archive"],
    &["verify"],
    &["restore"],
    &["saved"],
    &["dump", "binlog"],
    &["settings"],
    &["jobs"],
    &["upload"],
];

fn layer_of(module: &str) -> Option<usize> {
    LAYERS.iter().position(|l| l.contains(&module))
}

/// The modules directly in `folder` (a directory under src/), and for
/// each the modules of the same folder its files use.
fn folder_graph(folder: &Path) -> BTreeMap<String, Vec<String>> {
    let name = folder.file_name().unwrap().to_string_lossy().to_string();
    let mut files = Vec::new();
    sources(folder, &mut files);
    let mut graph: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for file in files {
        let rel = file.strip_prefix(folder).unwrap();
        let child = rel
            .components()
            .next()
            .unwrap()
            .as_os_str()
            .to_string_lossy()
            .trim_end_matches(".rs")
            .to_string();
        if child == "mod" {
            continue;
        }
        let depth = rel.components().count() - usize::from(rel.ends_with("mod.rs"));
        let used = uses_in(&std::fs::read_to_string(&file).unwrap(), Some(&name), depth);
        let edges = graph.entry(child.clone()).or_default();
        for u in used {
            let exists = folder.join(&u).is_dir() || folder.join(format!("{u}.rs")).is_file();
            if u != child && exists && !edges.contains(&u) {
                edges.push(u);
            }
        }
    }
    graph
}

/// A circle in `graph`, if there is one, as the modules around it.
fn circle(graph: &BTreeMap<String, Vec<String>>) -> Option<Vec<String>> {
    fn visit(
        node: &str,
        graph: &BTreeMap<String, Vec<String>>,
        path: &mut Vec<String>,
        done: &mut std::collections::BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(at) = path.iter().position(|p| p == node) {
            return Some(path[at..].to_vec());
        }
        if done.contains(node) {
            return None;
        }
        path.push(node.to_string());
        for next in graph.get(node).into_iter().flatten() {
            if let Some(c) = visit(next, graph, path, done) {
                return Some(c);
            }
        }
        path.pop();
        done.insert(node.to_string());
        None
    }
    let mut done = std::collections::BTreeSet::new();
    graph
        .keys()
        .find_map(|k| visit(k, graph, &mut Vec::new(), &mut done))
}

fn sources(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The code of `text` without comments and without the tests inside it.
fn code_of(text: &str) -> String {
    let code = text.split("#[cfg(test)]").next().unwrap_or("");
    let code: Vec<&str> = code
        .lines()
        .filter(|l| !l.trim_start().starts_with("//"))
        .map(|l| l.split("//").next().unwrap_or(""))
        .collect();
    code.join("\n")
}

/// The top-level modules the code of `text` uses (comments and the tests
/// inside it left out): `crate::<module>`, the modules of a grouped
/// `crate::{a, b::c}` (over several lines too), and a `super::` run that
/// climbs to the crate's root from a file `depth` modules deep
/// (`engine/dump/worker.rs`: 3; `engine/dump/mod.rs`: 2).
fn uses(text: &str, depth: usize) -> Vec<String> {
    uses_in(text, None, depth)
}

/// The modules of `folder` (the crate's root when `None`) the code of
/// `text` uses, from a file `depth` modules below that folder:
/// `crate::<folder>::<module>` and a `super::` run that climbs exactly to
/// the folder.
fn uses_in(text: &str, folder: Option<&str>, depth: usize) -> Vec<String> {
    let code = code_of(text);
    let prefix = match folder {
        None => "crate::".to_string(),
        Some(f) => format!("crate::{f}::"),
    };
    let mut out = Vec::new();
    for (i, _) in code.match_indices(&prefix) {
        out.extend(names_after(&code[i + prefix.len()..]));
    }
    for (i, _) in code.match_indices("super::") {
        // The first `super` of a run only.
        if code[..i].ends_with("super::") {
            continue;
        }
        let mut rest = &code[i..];
        let mut climbs = 0;
        while let Some(r) = rest.strip_prefix("super::") {
            climbs += 1;
            rest = r;
        }
        let reaches = match folder {
            None => climbs >= depth,
            Some(_) => climbs == depth,
        };
        if reaches {
            out.extend(names_after(rest));
        }
    }
    out
}

/// The first name of a path, or of each item of a `{...}` group.
fn names_after(rest: &str) -> Vec<String> {
    let ident = |s: &str| -> Option<String> {
        let name: String = s
            .trim_start()
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        (!name.is_empty() && name != "self").then_some(name)
    };
    let Some(group) = rest.trim_start().strip_prefix('{') else {
        return ident(rest).into_iter().collect();
    };
    let mut items = vec![String::new()];
    let mut nested = 0;
    for c in group.chars() {
        match c {
            '{' => nested += 1,
            '}' if nested == 0 => break,
            '}' => nested -= 1,
            ',' if nested == 0 => {
                items.push(String::new());
                continue;
            }
            _ => {}
        }
        if nested == 0 {
            items.last_mut().expect("one item at least").push(c);
        }
    }
    items.iter().filter_map(|item| ident(item)).collect()
}

#[test]
fn no_module_uses_a_layer_above_it() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    sources(&src, &mut files);
    let mut wrong: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for file in files {
        let rel = file.strip_prefix(&src).unwrap();
        let module = rel
            .components()
            .next()
            .unwrap()
            .as_os_str()
            .to_string_lossy()
            .trim_end_matches(".rs")
            .to_string();
        if matches!(module.as_str(), "lib" | "main" | "fuzz") {
            continue;
        }
        let own = layer_of(&module).unwrap_or_else(|| {
            panic!("module `{module}` is in no layer of tests/layers.rs: place it")
        });
        let depth = rel.components().count() - usize::from(rel.ends_with("mod.rs"));
        for used in uses(&std::fs::read_to_string(&file).unwrap(), depth) {
            if used == module {
                continue;
            }
            let theirs = layer_of(&used)
                .unwrap_or_else(|| panic!("{}: `crate::{used}` is in no layer", rel.display()));
            if theirs >= own {
                wrong
                    .entry(rel.display().to_string())
                    .or_default()
                    .push(format!("crate::{used}"));
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "modules that use a layer at or above their own: {wrong:#?}"
    );
}

#[test]
fn the_check_sees_a_use_that_reaches_up() {
    let text = "use crate::db::Db;\n// crate::cli in a comment\nfn f() { crate::protocol::x(); }\n#[cfg(test)]\nmod tests { use crate::cli; }\n";
    assert_eq!(uses(text, 1), ["db", "protocol"]);
}

#[test]
fn the_check_sees_grouped_imports_over_several_lines() {
    let text =
        "use crate::{db::Db, cli};\nuse crate::{\n    protocol::{a, b},\n    self,\n    xml,\n};\n";
    assert_eq!(uses(text, 1), ["db", "cli", "protocol", "xml"]);
}

#[test]
fn the_check_sees_super_climbing_to_another_top_level_module() {
    let text = "use super::super::cli::Args;\nuse super::sibling;\nuse super::super::{functions, health::x};\n";
    // From engine/dump/mod.rs (depth 2) the second `super` is the root.
    assert_eq!(uses(text, 2), ["cli", "functions", "health"]);
    // From engine/dump/worker.rs (depth 3) it is only `engine`.
    assert!(uses(text, 3).is_empty());
}

#[test]
fn the_engine_keeps_its_own_layers() {
    let engine = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/engine");
    let layer = |m: &str| {
        ENGINE_LAYERS
            .iter()
            .position(|l| l.contains(&m))
            .unwrap_or_else(|| {
                panic!("engine module `{m}` is in no layer of ENGINE_LAYERS: place it")
            })
    };
    let mut wrong = Vec::new();
    for (module, used) in folder_graph(&engine) {
        for u in used {
            if layer(&u) >= layer(&module) {
                wrong.push(format!("engine::{module} uses engine::{u}"));
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "engine modules that use a layer at or above their own: {wrong:#?}"
    );
}

#[test]
fn no_folder_has_a_circle() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut circles = Vec::new();
    for entry in std::fs::read_dir(&src).unwrap() {
        let dir = entry.unwrap().path();
        if dir.is_dir() {
            if let Some(c) = circle(&folder_graph(&dir)) {
                circles.push(format!(
                    "{}: {}",
                    dir.file_name().unwrap().to_string_lossy(),
                    c.join(" -> ")
                ));
            }
        }
    }
    assert!(
        circles.is_empty(),
        "modules that use each other: {circles:#?}"
    );
}

#[test]
fn the_check_sees_uses_inside_a_folder() {
    let text = "use super::super::archive::Copy;\nuse super::keys;\nuse crate::engine::{format, tsv::Cell};\nuse super::super::super::db::Db;\n";
    // From engine/dump/worker.rs: two climbs reach the engine.
    assert_eq!(
        uses_in(text, Some("engine"), 2),
        ["format", "tsv", "archive"]
    );
    // From engine/verify.rs: one climb does.
    assert_eq!(uses_in(text, Some("engine"), 1), ["format", "tsv", "keys"]);
}

#[test]
fn the_check_finds_a_circle() {
    let graph = |edges: &[(&str, &str)]| {
        let mut g: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for (a, b) in edges {
            g.entry(a.to_string()).or_default().push(b.to_string());
            g.entry(b.to_string()).or_default();
        }
        g
    };
    assert_eq!(circle(&graph(&[("a", "b"), ("b", "c"), ("a", "c")])), None);
    assert_eq!(
        circle(&graph(&[("a", "b"), ("b", "c"), ("c", "b")])),
        Some(vec!["b".to_string(), "c".to_string()])
    );
}
