//! DataLoaders: the objects a page's items point at (a listing's host, a
//! booking's listing) read in one query per kind for the whole page, not
//! one per item. Made per request, so nothing is cached across requests.

use std::collections::HashMap;

use actix_web::web;
use async_graphql::dataloader::{DataLoader, Loader};

use super::types::fail;
use crate::db::properties::{self, Property};
use crate::db::users::{self, User};
use crate::error::ApiError;
use crate::state::AppState;

/// Users by id.
pub struct Users(web::Data<AppState>);

/// Listings by id, deleted or not.
pub struct Listings(web::Data<AppState>);

impl Loader<i64> for Users {
    type Value = User;
    type Error = async_graphql::Error;

    async fn load(&self, ids: &[i64]) -> Result<HashMap<i64, User>, Self::Error> {
        let ids = ids.to_vec();
        let found = self
            .0
            .db
            .run(move |mut conn| async move {
                Ok::<_, ApiError>(users::find_many(&mut conn, &ids).await?)
            })
            .await
            .map_err(fail)?;
        Ok(found.into_iter().map(|u| (u.id, u)).collect())
    }
}

impl Loader<i64> for Listings {
    type Value = Property;
    type Error = async_graphql::Error;

    async fn load(&self, ids: &[i64]) -> Result<HashMap<i64, Property>, Self::Error> {
        let ids = ids.to_vec();
        let found = self
            .0
            .db
            .run(move |mut conn| async move {
                Ok::<_, ApiError>(properties::find_many(&mut conn, &ids).await?)
            })
            .await
            .map_err(fail)?;
        Ok(found.into_iter().map(|p| (p.id, p)).collect())
    }
}

/// A request's loaders.
pub fn for_request(state: &web::Data<AppState>) -> (DataLoader<Users>, DataLoader<Listings>) {
    (
        DataLoader::new(Users(state.clone()), tokio::spawn),
        DataLoader::new(Listings(state.clone()), tokio::spawn),
    )
}

/// A websocket connection's loaders: batching only, since a connection
/// lives long enough for a cached user or listing to go stale.
pub fn for_connection(state: &web::Data<AppState>) -> (DataLoader<Users>, DataLoader<Listings>) {
    let (users, listings) = for_request(state);
    users.enable_all_cache(false);
    listings.enable_all_cache(false);
    (users, listings)
}
