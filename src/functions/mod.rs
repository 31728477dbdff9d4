//! The registry of panel functions: name, access level, kind and handler.
//!
//! One table, [`FUNCTIONS`], is the whole list. A test walks it against the
//! manifests in xml/ and fails on a function missing on either side or
//! missing its en or ru texts. Handlers are thin glue: read the request
//! through its typed accessors (all validation before the database is
//! touched), call one db/engine/runner function, build a `Reply`.

mod backup;
mod backupdata;
mod errorhistory;
mod opfilter;
mod runningoperation;

use crate::db::Page;
use crate::protocol::{messages, Lang, Paging};

pub use crate::protocol::registry::{Access, Function, Kind};

/// Every function the plugin implements.
pub const FUNCTIONS: &[Function] = &[
    Function {
        name: "runningoperation",
        access: Access::Admin,
        kind: Kind::List,
        run: runningoperation::list,
    },
    Function {
        name: "runningoperation.edit",
        access: Access::Admin,
        kind: Kind::Form,
        run: runningoperation::edit,
    },
    Function {
        name: "runningoperation.delete",
        access: Access::Admin,
        kind: Kind::Action,
        run: runningoperation::delete,
    },
    Function {
        name: "runningoperation.start",
        access: Access::Admin,
        kind: Kind::Action,
        run: runningoperation::start,
    },
    Function {
        name: "runningoperation.stop",
        access: Access::Admin,
        kind: Kind::Action,
        run: runningoperation::stop,
    },
    Function {
        name: "runningoperation.taskcreate",
        access: Access::Admin,
        kind: Kind::Action,
        run: runningoperation::taskcreate,
    },
    Function {
        name: "runningoperation.errorhistory",
        access: Access::Admin,
        kind: Kind::List,
        run: errorhistory::errorhistory,
    },
    Function {
        name: "errorhistory.showlog",
        access: Access::Admin,
        kind: Kind::Form,
        run: errorhistory::showlog,
    },
    Function {
        name: "runningoperation.filter",
        access: Access::Admin,
        kind: Kind::Form,
        run: opfilter::filter,
    },
    Function {
        name: "runningoperation.setfilter",
        access: Access::Admin,
        kind: Kind::Action,
        run: opfilter::setfilter,
    },
    Function {
        name: "runningoperationgotoserver",
        access: Access::Admin,
        kind: Kind::Action,
        run: runningoperation::gotoserver,
    },
    Function {
        name: "runningoperation.su",
        access: Access::Admin,
        kind: Kind::Action,
        run: runningoperation::su,
    },
    Function {
        name: "runningoperation.setmanual",
        access: Access::Admin,
        kind: Kind::Action,
        run: runningoperation::setmanual,
    },
    Function {
        name: "billmgr.backup",
        access: Access::Admin,
        kind: Kind::List,
        run: backup::list,
    },
    Function {
        name: "billmgr.backup.create",
        access: Access::Admin,
        kind: Kind::Form,
        run: backup::create,
    },
    Function {
        name: "backups.restore",
        access: Access::Admin,
        kind: Kind::Form,
        run: backup::restore,
    },
    Function {
        name: "backups.delete",
        access: Access::Admin,
        kind: Kind::Form,
        run: backup::delete,
    },
    Function {
        name: "backupdata",
        access: Access::Admin,
        kind: Kind::List,
        run: backupdata::list,
    },
    Function {
        name: "backupdata.names",
        access: Access::Admin,
        kind: Kind::List,
        run: backupdata::names,
    },
    Function {
        name: "backupdata.restore",
        access: Access::Admin,
        kind: Kind::Form,
        run: backupdata::restore,
    },
    Function {
        name: "backupdata.files",
        access: Access::Admin,
        kind: Kind::List,
        run: backupdata::files,
    },
    Function {
        name: "backupdata.files.restore",
        access: Access::Admin,
        kind: Kind::Form,
        run: backupdata::files_restore,
    },
    Function {
        name: "backups.download",
        access: Access::Admin,
        kind: Kind::Action,
        run: backup::download,
    },
    Function {
        name: "backups.upload",
        access: Access::Admin,
        kind: Kind::Form,
        run: backup::upload,
    },
    Function {
        name: "billmgr.backup.setup",
        access: Access::Admin,
        kind: Kind::Form,
        run: backup::setup,
    },
    Function {
        name: "billmgr.backup.settings",
        access: Access::Admin,
        kind: Kind::Form,
        run: backup::settings,
    },
];

/// The names of a sort whitelist, for `Request::paging`.
fn sort_keys(sorts: &[(&'static str, &'static str)]) -> Vec<&'static str> {
    sorts.iter().map(|(k, _)| *k).collect()
}

/// The database page for validated protocol paging.
fn db_page(paging: &Paging) -> Page<'_> {
    Page {
        offset: paging.offset(),
        limit: paging.limit(),
        sort: paging.sort.as_deref(),
        descending: paging.descending,
    }
}

/// A message of the manifests in the user's language (English when the
/// language lacks it, the key itself when both do).
fn label(lang: Lang, section: &str, key: &str) -> String {
    messages::message(lang, section, key)
        .or_else(|| messages::message(Lang::En, section, key))
        .unwrap_or(key)
        .to_string()
}
