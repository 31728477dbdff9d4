//! The manifests, compiled into the binary, and the localized texts in them.
//!
//! xml/ is the single source of every user-facing text: the panel reads the
//! installed copies, and this module reads the same files (embedded at build
//! time) when the plugin itself must put a text into a document, as it does
//! for the `<msg>` of a typed error.

use std::collections::HashMap;
use std::sync::OnceLock;

use crate::xml::Element;

/// The manifests shipped in xml/, by file name.
pub const MANIFESTS: &[(&str, &str)] = &[
    (
        "billmgr_mod_billmgrops.xml",
        include_str!("../../xml/billmgr_mod_billmgrops.xml"),
    ),
    (
        "billmgr_mod_billmgrops_backup.xml",
        include_str!("../../xml/billmgr_mod_billmgrops_backup.xml"),
    ),
    (
        "billmgr_mod_billmgrops_runningoperation.xml",
        include_str!("../../xml/billmgr_mod_billmgrops_runningoperation.xml"),
    ),
];

/// The languages the plugin speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Lang {
    En,
    Ru,
}

impl Lang {
    pub const ALL: &'static [Lang] = &[Lang::En, Lang::Ru];

    /// Reads a language code; anything but Russian falls back to English.
    pub fn from_code(code: &str) -> Option<Lang> {
        match code.trim().to_ascii_lowercase().as_str() {
            "en" => Some(Lang::En),
            "ru" => Some(Lang::Ru),
            _ => None,
        }
    }

    pub fn code(self) -> &'static str {
        match self {
            Lang::En => "en",
            Lang::Ru => "ru",
        }
    }
}

type Catalog = HashMap<(Lang, String, String), String>;

fn catalog() -> &'static Catalog {
    static CATALOG: OnceLock<Catalog> = OnceLock::new();
    CATALOG.get_or_init(|| {
        let mut map = Catalog::new();
        for (file, text) in MANIFESTS {
            // The manifests are checked by tests; a broken one must not take
            // the whole handler down, only its texts.
            let Ok(root) = Element::parse(text) else {
                log::error!("embedded manifest {file} does not parse");
                continue;
            };
            for lang_el in root.find_all("lang") {
                let Some(lang) = lang_el.get_attr("name").and_then(Lang::from_code) else {
                    continue;
                };
                for section in lang_el.find_all("messages") {
                    let section_name = section.get_attr("name").unwrap_or_default();
                    for msg in section.find_all("msg") {
                        if let Some(name) = msg.get_attr("name") {
                            map.insert(
                                (lang, section_name.to_string(), name.to_string()),
                                msg.text_content(),
                            );
                        }
                    }
                }
            }
        }
        map
    })
}

/// The text of message `name` in section `section`, in `lang`.
pub fn message(lang: Lang, section: &str, name: &str) -> Option<&'static str> {
    catalog()
        .get(&(lang, section.to_string(), name.to_string()))
        .map(String::as_str)
}

/// The localized text of an error, with `__object__` and `__value__`
/// replaced as BILLmanager's own messages do.
pub fn error_text(lang: Lang, kind: &str, object: &str, value: &str) -> String {
    let key = format!("msg_error_{kind}");
    let template = message(lang, "msgerror", &key)
        .or_else(|| message(Lang::En, "msgerror", &key))
        .or_else(|| message(lang, "msgerror", "msg_error_internal"))
        .unwrap_or("Internal error");
    template
        .replace("__object__", object)
        .replace("__value__", value)
}
