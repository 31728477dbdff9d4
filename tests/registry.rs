//! The registry of functions against the manifests in xml/: nothing
//! registered without its manifest entry and texts, nothing in a manifest
//! without a handler, every text in en and ru.

use std::collections::{BTreeMap, BTreeSet};

use billmgr_ops::test_support::Element;
use billmgr_ops::test_support::ErrorKind;
use billmgr_ops::test_support::MANIFESTS;
use billmgr_ops::test_support::{Access, Kind, FUNCTIONS};

type Messages = BTreeMap<(String, String), BTreeMap<String, String>>;

/// Every manifest in xml/, parsed.
fn manifests() -> Vec<(String, Element)> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("xml");
    let mut out = Vec::new();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "xml") {
            let text = std::fs::read_to_string(&path).unwrap();
            let doc = Element::parse(&text)
                .unwrap_or_else(|e| panic!("{} does not parse: {e}", path.display()));
            assert_eq!(doc.name, "mgrdata", "{}", path.display());
            out.push((
                path.file_name().unwrap().to_string_lossy().into_owned(),
                doc,
            ));
        }
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

/// (lang, section) -> name -> text, over all manifests.
fn messages() -> Messages {
    let mut out = Messages::new();
    for (_, doc) in manifests() {
        for lang in doc.find_all("lang") {
            for section in lang.find_all("messages") {
                let entry = out
                    .entry((
                        lang.get_attr("name").unwrap().to_string(),
                        section.get_attr("name").unwrap().to_string(),
                    ))
                    .or_default();
                for msg in section.find_all("msg") {
                    let text = msg.text_content();
                    assert!(
                        !text.trim().is_empty(),
                        "empty message {:?}",
                        msg.get_attr("name")
                    );
                    entry.insert(msg.get_attr("name").unwrap().to_string(), text);
                }
            }
        }
    }
    out
}

fn has(messages: &Messages, lang: &str, section: &str, name: &str) -> bool {
    messages
        .get(&(lang.to_string(), section.to_string()))
        .is_some_and(|m| m.contains_key(name))
}

#[test]
fn every_manifest_is_compiled_in_unchanged() {
    let on_disk: BTreeSet<String> = manifests().into_iter().map(|(n, _)| n).collect();
    let embedded: BTreeSet<String> = MANIFESTS.iter().map(|(n, _)| n.to_string()).collect();
    assert_eq!(on_disk, embedded);
    for (name, text) in MANIFESTS {
        let file = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("xml")
            .join(name);
        assert_eq!(&std::fs::read_to_string(file).unwrap(), text);
        assert!(name.starts_with("billmgr_mod_billmgrops"), "{name}");
    }
}

#[test]
fn handlers_and_registry_agree() {
    let mut declared = BTreeSet::new();
    for (file, doc) in manifests() {
        for handler in doc.find_all("handler") {
            assert_eq!(handler.get_attr("name"), Some("billmgr-ops"), "{file}");
            assert_eq!(handler.get_attr("type"), Some("xml"), "{file}");
            for func in handler.find_all("func") {
                assert!(
                    declared.insert(func.get_attr("name").unwrap().to_string()),
                    "declared twice"
                );
            }
        }
    }
    let registered: BTreeSet<String> = FUNCTIONS.iter().map(|f| f.name.to_string()).collect();
    assert_eq!(
        declared, registered,
        "xml/ handlers vs functions::FUNCTIONS"
    );
}

#[test]
fn every_function_has_metadata_and_texts_in_both_languages() {
    let messages = messages();
    let metadata: BTreeMap<String, Element> = manifests()
        .into_iter()
        .flat_map(|(_, doc)| doc.find_all("metadata").cloned().collect::<Vec<_>>())
        .map(|m| (m.get_attr("name").unwrap().to_string(), m))
        .collect();
    for f in FUNCTIONS {
        // An action has no page of its own: only its title (for the
        // confirmation) is needed, and metadata would be invented vocabulary.
        if f.kind == Kind::Action {
            assert!(
                !metadata.contains_key(f.name),
                "{} is an action; no metadata",
                f.name
            );
            for lang in ["en", "ru"] {
                assert!(
                    has(&messages, lang, f.name, "title"),
                    "{} title in {lang}",
                    f.name
                );
            }
            continue;
        }
        let meta = metadata
            .get(f.name)
            .unwrap_or_else(|| panic!("{} has no metadata", f.name));
        let kind = match f.kind {
            Kind::List => "list",
            Kind::Form => "form",
            Kind::Action => "action",
        };
        assert_eq!(meta.get_attr("type"), Some(kind), "{}", f.name);
        match f.access {
            Access::Admin => assert_eq!(meta.get_attr("level"), Some("admin+"), "{}", f.name),
        }
        for lang in ["en", "ru"] {
            assert!(
                has(&messages, lang, f.name, "title"),
                "{} title in {lang}",
                f.name
            );
            if let Some(coldata) = meta.find("coldata") {
                for col in coldata.find_all("col") {
                    let name = col.get_attr("name").unwrap();
                    for key in [name.to_string(), format!("hint_{name}")] {
                        assert!(
                            has(&messages, lang, f.name, &key),
                            "{}: {key} in {lang}",
                            f.name
                        );
                    }
                }
            }
            let fields = meta.find("form").into_iter().flat_map(|form| {
                form.find_all("page")
                    .flat_map(|p| p.find_all("field").cloned().collect::<Vec<_>>())
                    .collect::<Vec<_>>()
            });
            for field in fields {
                let name = field.get_attr("name").unwrap();
                for key in [name.to_string(), format!("hint_{name}")] {
                    assert!(
                        has(&messages, lang, f.name, &key),
                        "{}: {key} in {lang}",
                        f.name
                    );
                }
            }
            for btn in meta.find("toolbar").into_iter().flat_map(|t| {
                t.find_all("toolgrp")
                    .flat_map(|g| g.find_all("toolbtn").cloned().collect::<Vec<_>>())
                    .collect::<Vec<_>>()
            }) {
                let name = btn.get_attr("name").unwrap();
                let func = btn.get_attr("func").unwrap();
                assert!(
                    FUNCTIONS.iter().any(|f| f.name == func),
                    "button {name} calls unknown {func}"
                );
                for key in [format!("short_{name}"), format!("hint_{name}")] {
                    assert!(
                        has(&messages, lang, f.name, &key),
                        "{}: {key} in {lang}",
                        f.name
                    );
                }
            }
        }
    }
}

#[test]
fn every_error_type_has_its_message_in_both_languages() {
    let messages = messages();
    for kind in ErrorKind::ALL {
        for lang in ["en", "ru"] {
            let key = format!("msg_error_{}", kind.as_str());
            assert!(has(&messages, lang, "msgerror", &key), "{key} in {lang}");
        }
    }
}

#[test]
fn en_and_ru_have_the_same_messages() {
    let messages = messages();
    for ((lang, section), names) in &messages {
        let other = if lang == "en" { "ru" } else { "en" };
        let theirs = messages
            .get(&(other.to_string(), section.clone()))
            .unwrap_or_else(|| panic!("section {section} missing in {other}"));
        let ours: BTreeSet<_> = names.keys().collect();
        let theirs: BTreeSet<_> = theirs.keys().collect();
        assert_eq!(ours, theirs, "section {section}: {lang} vs {other}");
    }
}

#[test]
fn menu_items_are_registered_functions_with_labels() {
    let messages = messages();
    for (_, doc) in manifests() {
        for menu in doc.find_all("mainmenu") {
            assert_eq!(menu.get_attr("level"), Some("admin+"));
            for group in menu.find_all("node") {
                for lang in ["en", "ru"] {
                    let key = format!("menu_{}", group.get_attr("name").unwrap());
                    assert!(has(&messages, lang, "desktop", &key), "{key} in {lang}");
                }
                for item in group.find_all("node") {
                    let name = item.get_attr("name").unwrap();
                    assert!(FUNCTIONS.iter().any(|f| f.name == name), "menu item {name}");
                    for lang in ["en", "ru"] {
                        assert!(
                            has(&messages, lang, "desktop", &format!("menu_{name}")),
                            "menu_{name} in {lang}"
                        );
                    }
                }
            }
        }
    }
}

#[test]
fn every_config_key_is_documented_in_the_example_and_the_readme() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let example = std::fs::read_to_string(root.join("etc/billmgr-ops.conf.example")).unwrap();
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    for key in billmgr_ops::test_support::KEYS {
        let line = if key.default.is_empty() {
            format!("#{}\n", key.name)
        } else {
            format!("#{} {}\n", key.name, key.default)
        };
        assert!(example.contains(&line), "example lacks `{}`", line.trim());
        assert!(
            readme.contains(&format!("| `{}` |", key.name)),
            "README lacks {}",
            key.name
        );
    }
    // And the example parses to exactly the defaults: nothing is set.
    assert!(billmgr_ops::test_support::parse_lines(&example).is_empty());
}

#[test]
fn the_backup_settings_table_and_the_config_keys_agree() {
    for s in billmgr_ops::test_support::SETTINGS {
        if let Some(key) = billmgr_ops::test_support::KEYS
            .iter()
            .find(|k| k.name == s.key)
        {
            assert_eq!(
                key.default, s.default,
                "{}: config::KEYS vs SETTINGS",
                s.key
            );
        }
        assert!(s.accepts(s.default), "{}", s.key);
    }
}
