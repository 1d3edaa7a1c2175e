//! Loading many rows at once (`roost seed`) on PostgreSQL the way
//! `pg_restore --disable-triggers` does: a foreign key is a trigger that
//! looks its parent row up once for every row written (measured: 11 of the
//! 31 seconds one backend spends writing a million bookings, 9 of 14 for
//! 674k reviews), so a bulk write may switch those triggers off for its own
//! transaction, and every foreign key is then checked once over whole
//! tables, as `ALTER TABLE … VALIDATE CONSTRAINT` would. Only the
//! triggers go: exclusion, unique and check constraints are indexes and
//! row checks, and still refuse what they refuse. SQLite is left as it is.

use diesel::QueryableByName;
use diesel::result::QueryResult;
use diesel::sql_types::{Array, Bool, Text};
use diesel_async::RunQueryDsl;

use super::{AsConn, Conn};

/// Whether this role may switch triggers off ([`skip_reference_triggers`]):
/// only a superuser may set `session_replication_role`. Always false on
/// SQLite.
pub async fn may_skip_reference_triggers(conn: &mut impl AsConn) -> QueryResult<bool> {
    #[derive(QueryableByName)]
    struct Super {
        #[diesel(sql_type = Bool)]
        yes: bool,
    }
    match conn.as_conn() {
        Conn::Sqlite(_) => Ok(false),
        Conn::Postgres(c) => {
            let row: Super =
                diesel::sql_query("SELECT current_setting('is_superuser') = 'on' AS yes")
                    .get_result(c)
                    .await?;
            Ok(row.yes)
        }
    }
}

/// Inside a write transaction on PostgreSQL: the rest of this transaction
/// fires no triggers (the foreign keys' per-row checks among them); it
/// ends with the transaction, so a pooled connection goes back as it
/// came. Check the foreign keys with [`is_broken`] once the load is
/// done. Nothing on SQLite.
pub async fn skip_reference_triggers(conn: &mut impl AsConn) -> QueryResult<()> {
    match conn.as_conn() {
        Conn::Sqlite(_) => Ok(()),
        Conn::Postgres(c) => {
            diesel::sql_query("SET LOCAL session_replication_role = replica")
                .execute(c)
                .await?;
            Ok(())
        }
    }
}

/// A foreign key of the schema, as the catalogue states it.
#[derive(QueryableByName, Clone, Debug)]
pub struct ForeignKey {
    #[diesel(sql_type = Text)]
    pub name: String,
    /// The referencing table and its columns, quoted for SQL.
    #[diesel(sql_type = Text)]
    child: String,
    #[diesel(sql_type = Array<Text>)]
    columns: Vec<String>,
    /// The referenced table and its columns, quoted for SQL.
    #[diesel(sql_type = Text)]
    parent: String,
    #[diesel(sql_type = Array<Text>)]
    parent_columns: Vec<String>,
}

/// Every foreign key in the current schema (none on SQLite).
pub async fn foreign_keys(conn: &mut impl AsConn) -> QueryResult<Vec<ForeignKey>> {
    match conn.as_conn() {
        Conn::Sqlite(_) => Ok(Vec::new()),
        Conn::Postgres(c) => {
            diesel::sql_query(
                "SELECT c.conname::text AS name, \
                 c.conrelid::regclass::text AS child, \
                 ARRAY(SELECT quote_ident(a.attname) FROM unnest(c.conkey) WITH ORDINALITY k(n, i) \
                       JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k.n \
                       ORDER BY k.i) AS columns, \
                 c.confrelid::regclass::text AS parent, \
                 ARRAY(SELECT quote_ident(a.attname) FROM unnest(c.confkey) WITH ORDINALITY k(n, i) \
                       JOIN pg_attribute a ON a.attrelid = c.confrelid AND a.attnum = k.n \
                       ORDER BY k.i) AS parent_columns \
                 FROM pg_constraint c \
                 WHERE c.contype = 'f' AND c.connamespace = current_schema()::regnamespace \
                 ORDER BY c.conname",
            )
            .load(c)
            .await
        }
    }
}

/// Whether some row breaks `key`: a row whose columns are all set (a
/// NULL among them satisfies a foreign key, MATCH SIMPLE) with no parent
/// row. One anti-join over the whole table.
pub async fn is_broken(conn: &mut impl AsConn, key: &ForeignKey) -> QueryResult<bool> {
    #[derive(QueryableByName)]
    struct Broken {
        #[diesel(sql_type = Bool)]
        yes: bool,
    }
    let set: Vec<String> = key
        .columns
        .iter()
        .map(|c| format!("x.{c} IS NOT NULL"))
        .collect();
    let joined: Vec<String> = key
        .columns
        .iter()
        .zip(&key.parent_columns)
        .map(|(c, p)| format!("y.{p} = x.{c}"))
        .collect();
    let sql = format!(
        "SELECT EXISTS (SELECT 1 FROM {} x WHERE {} \
         AND NOT EXISTS (SELECT 1 FROM {} y WHERE {})) AS yes",
        key.child,
        set.join(" AND "),
        key.parent,
        joined.join(" AND "),
    );
    let query = diesel::sql_query(sql);
    let row: Broken = crate::with_conn!(conn, |c| query.get_result(c).await)?;
    Ok(row.yes)
}
