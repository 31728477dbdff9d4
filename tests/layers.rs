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
    &["cli"],
];

fn layer_of(module: &str) -> Option<usize> {
    LAYERS.iter().position(|l| l.contains(&module))
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

/// `crate::<module>` names used by the code of `text` (comments and the
/// tests inside it left out).
fn uses(text: &str) -> Vec<String> {
    let code = text.split("#[cfg(test)]").next().unwrap_or("");
    let mut out = Vec::new();
    for line in code.lines() {
        let line = line.trim_start();
        if line.starts_with("//") {
            continue;
        }
        let line = line.split("//").next().unwrap_or("");
        for (i, _) in line.match_indices("crate::") {
            let name: String = line[i + 7..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            if !name.is_empty() {
                out.push(name);
            }
        }
    }
    out
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
        for used in uses(&std::fs::read_to_string(&file).unwrap()) {
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
    assert_eq!(uses(text), ["db", "protocol"]);
}
