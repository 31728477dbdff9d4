//! The plugin's function names in its two install modes.
//!
//! Every function this plugin implements has a name BILLmanager 6 uses for
//! a function of its own. No source says an addon's `<func>` replaces a
//! built-in one, and a real addon shows that a same-named `<metadata>` is
//! merged into the built-in's (docs/real-panel-checks.md). So by default
//! the plugin installs as a **companion**: every function under its own
//! name, [`PREFIX`] + the BILLmanager name (`billmgrops.runningoperation`),
//! with a menu of its own, and nothing of the built-in modules shadowed or
//! merged. **Replace** installs the BILLmanager names, as the seeds
//! describe them.
//!
//! One source: the manifests in xml/ are written with the BILLmanager
//! names; [`manifests`] derives the companion set from them. The handler
//! answers to both names ([`canonical`]) and points its redirects at the
//! name it was called by ([`redirect_target`]).

use crate::config::InstallMode;
use crate::xml::{Element, Node};

/// The prefix of every function name in companion mode.
pub const PREFIX: &str = "billmgrops.";

/// The BILLmanager name of a function called by either name.
pub fn canonical(func: &str) -> &str {
    func.strip_prefix(PREFIX).unwrap_or(func)
}

/// Whether a call came by the companion name.
pub fn is_companion(func: &str) -> bool {
    func.starts_with(PREFIX)
}

/// A redirect target (`func=NAME&...`) for a call that came by the
/// companion name: a function of the plugin (`ours`) is named by its
/// companion name too; anything else (the panel's own `su`) is left.
pub fn redirect_target(target: &str, ours: impl Fn(&str) -> bool) -> String {
    let Some(rest) = target.strip_prefix("func=") else {
        return target.to_string();
    };
    let name = rest.split('&').next().unwrap_or_default();
    if ours(name) {
        format!("func={PREFIX}{rest}")
    } else {
        target.to_string()
    }
}

/// The manifests to install for `mode`, as (file name, text).
pub fn manifests(mode: InstallMode) -> Vec<(&'static str, String)> {
    let sources = super::messages::MANIFESTS;
    if mode == InstallMode::Replace {
        return sources.iter().map(|(f, t)| (*f, t.to_string())).collect();
    }
    let parsed: Vec<(&str, Element)> = sources
        .iter()
        .map(|(f, t)| (*f, Element::parse(t).expect("the shipped manifests parse")))
        .collect();
    let mut ours = Vec::new();
    for (_, root) in &parsed {
        for handler in root.find_all("handler") {
            ours.extend(
                handler
                    .find_all("func")
                    .filter_map(|f| f.get_attr("name"))
                    .map(str::to_string),
            );
        }
    }
    parsed
        .into_iter()
        .map(|(file, mut root)| {
            companion(&mut root, &ours);
            let text = format!(
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<!-- billmgr-ops, companion mode: \
                 every function under its own name ({PREFIX}<BILLmanager name>); generated \
                 from the replace-mode manifest {file} by `billmgr-ops install`. -->\n{}",
                root.to_document()
                    .split_once('\n')
                    .map_or_else(String::new, |(_, rest)| rest.to_string())
            );
            (file, text)
        })
        .collect()
}

/// Renames the plugin's functions in one manifest and drops what would
/// merge into a built-in function's metadata.
fn companion(e: &mut Element, ours: &[String]) {
    let is_ours = |v: &str| ours.iter().any(|o| o == v);
    // Metadata and texts for a function that is not ours (a button on
    // BILLmanager's client list) would be merged into the built-in's.
    e.children.retain(|n| {
        !matches!(n, Node::Element(c)
            if matches!(c.name.as_str(), "metadata" | "messages")
                && c.get_attr("name").is_some_and(|v| !is_ours(v) && v != "desktop" && v != "msgerror"))
    });
    let renamed_attr = matches!(e.name.as_str(), "func" | "metadata" | "messages" | "node");
    let attrs: Vec<(String, String)> = e.attrs.clone();
    for (name, value) in attrs {
        let rename = (name == "name" && renamed_attr) || name == "func";
        if rename && is_ours(&value) {
            e.set_attr(&name, format!("{PREFIX}{value}"));
        }
        if e.name == "msg" && name == "name" {
            if let Some(f) = value.strip_prefix("menu_").filter(|f| is_ours(f)) {
                e.set_attr("name", format!("menu_{PREFIX}{f}"));
            }
        }
    }
    for child in e.children.iter_mut() {
        if let Node::Element(c) = child {
            companion(c, ours);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_redirects() {
        assert_eq!(
            canonical("billmgrops.runningoperation.edit"),
            "runningoperation.edit"
        );
        assert_eq!(canonical("runningoperation"), "runningoperation");
        let ours = |f: &str| f == "runningoperation";
        assert_eq!(
            redirect_target("func=runningoperation&elid=3", ours),
            "func=billmgrops.runningoperation&elid=3"
        );
        assert_eq!(redirect_target("func=su&elid=x", ours), "func=su&elid=x");
    }

    #[test]
    fn the_companion_manifests_name_only_functions_of_their_own() {
        let companion = manifests(InstallMode::Companion);
        let replace = manifests(InstallMode::Replace);
        assert_eq!(companion.len(), replace.len());
        let mut funcs = 0;
        for (file, text) in &companion {
            let root = Element::parse(text).unwrap_or_else(|e| panic!("{file}: {e}"));
            for h in root.find_all("handler") {
                for f in h.find_all("func") {
                    funcs += 1;
                    assert!(f.get_attr("name").unwrap().starts_with(PREFIX), "{file}");
                }
            }
            for m in root.find_all("metadata") {
                assert!(
                    m.get_attr("name").unwrap().starts_with(PREFIX),
                    "{file}: merged metadata"
                );
            }
            assert!(!text.contains("func=\"runningoperation"), "{file}");
            assert!(!text.contains("level=\"admin\""), "{file}: admin+");
        }
        assert!(funcs >= 26);
        let menu = &companion
            .iter()
            .find(|(f, _)| *f == "billmgr_mod_billmgrops.xml")
            .unwrap()
            .1;
        assert!(menu.contains("<node name=\"billmgrops.runningoperation\"/>"));
        assert!(menu.contains("menu_billmgrops.runningoperation"));
        assert!(
            menu.contains("menu_billmgrops\""),
            "the group keeps its name"
        );
    }
}
