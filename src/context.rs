//! The context of one invocation: the configuration and a database
//! connection opened on first use.
//!
//! Opening lazily is what lets a panel function validate its whole request
//! before the database is touched: bad input never costs a connection.

use anyhow::Result;

use crate::config::Config;
use crate::db::{Db, Unavailable};

pub struct Ctx<'a> {
    pub config: &'a Config,
    db: Option<Db>,
}

impl<'a> Ctx<'a> {
    pub fn new(config: &'a Config) -> Self {
        Ctx { config, db: None }
    }

    /// The database, connected and migrated on first use.
    ///
    /// # Errors
    /// [`Unavailable`] when no database is configured or reachable.
    pub fn db(&mut self) -> Result<&mut Db> {
        if self.db.is_none() {
            let source = self.config.db.as_ref().ok_or_else(|| {
                anyhow::Error::new(Unavailable).context(
                    "no database configured: set BILLMGR_OPS_DB, DBUrl in billmgr-ops.conf, \
                     or DBHost/DBName in billmgr.conf",
                )
            })?;
            self.db = Some(Db::open(source, self.config.db_connect_timeout)?);
        }
        Ok(self.db.as_mut().expect("connected above"))
    }
}
